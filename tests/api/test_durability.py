"""Crash durability: clients write resorts while the server is killed with SIGKILL at random
moments and restarted on the same data directory. Every write the server acknowledged must
survive, whole; nothing that was never sent may appear; and `resortd check` must pass.
"""
import random
import subprocess
import threading
import time

import requests

from apihelp import all_resorts, metric
from conftest import BIN

KILLS = 22
CLIENTS = 4
TIME_BUDGET_S = 90


def test_acknowledged_writes_survive_kill9(server):
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    stop = threading.Event()
    lock = threading.Lock()
    acked = {}      # id -> (fields sent, body of the reply)
    sent = {}       # name -> fields sent (acknowledged or not)
    unknown = [0]
    rejected = []   # answers that were neither 201/202 nor a lost connection

    def client(cid):
        session = server.session()
        n = 0
        while not stop.is_set():
            n += 1
            fields = {"name": f"dur-{seed}-{cid}-{n}", "address": f"{n} Crash Street, {cid}",
                      "stars": 1 + (n + cid) % 5}
            with lock:
                sent[fields["name"]] = fields
            try:
                r = session.post(server.url("/v1/resorts"), json=fields, timeout=10)
            except requests.RequestException:
                unknown[0] += 1
                session.close()
                session = server.session()
                stop.wait(0.02)
                continue
            if r.status_code in (201, 202):
                body = r.json()
                with lock:
                    acked[body["id"]] = (fields, body, r.status_code)
            elif r.status_code == 503:
                unknown[0] += 1  # e.g. shutting down: not acknowledged
            else:
                rejected.append((r.status_code, r.text[:300]))

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    started = time.monotonic()
    kills = 0
    acked_at_kill = []
    try:
        while kills < KILLS and time.monotonic() - started < TIME_BUDGET_S:
            time.sleep(rng.uniform(0.2, 1.0))
            server.kill9()
            kills += 1
            with lock:
                acked_at_kill.append(len(acked))
            server.start()
        time.sleep(0.5)  # some writes after the last restart too
    finally:
        stop.set()
        for t in threads:
            t.join(20)
    assert not any(t.is_alive() for t in threads), "a client thread hung"
    assert kills >= 20, f"only {kills} kills within the time budget"
    assert not rejected, f"writes rejected outright: {rejected[:5]}"
    # Writes were acknowledged between most kills, so the kills hit a busy server.
    grew = sum(1 for a, b in zip(acked_at_kill, acked_at_kill[1:]) if b > a)
    assert grew >= kills // 2, f"writes were acknowledged in only {grew} of {kills} intervals"
    assert len(acked) >= 100, f"only {len(acked)} acknowledged writes (seed {seed})"

    # The read model catches up with the log.
    lag = None
    for _ in range(200):
        lag = metric(server, "resortd_projector_lag_events")
        if lag == 0:
            break
        time.sleep(0.05)
    assert lag == 0, f"projector lag stuck at {lag}"

    # Every acknowledged resort is there, whole, exactly as sent.
    missing, wrong = [], []
    for rid, (fields, body, status) in acked.items():
        r = server.get(f"/v1/resorts/{rid}")
        if r.status_code != 200:
            missing.append((rid, fields["name"], r.status_code))
            continue
        got = r.json()
        if (got["id"] != rid or any(got.get(k) != v for k, v in fields.items())
                or got.get("version") != 1):
            wrong.append((fields, got))
        if status == 201 and any(body.get(k) != got.get(k) for k in ("id", "name", "address", "stars",
                                                                     "version", "created_at")):
            wrong.append((body, got))
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged resorts lost (seed {seed}): {missing[:5]}"
    assert not wrong, f"{len(wrong)} resorts differ from what was sent: {wrong[:3]}"

    # The listing holds at least the acknowledged ones, no duplicates, and nothing never sent.
    items = all_resorts(server)
    ids = [it["id"] for it in items]
    assert len(ids) == len(set(ids)), "the listing repeats a resort"
    assert len(items) >= len(acked)
    assert set(acked) <= set(ids)
    for it in items:
        fields = sent.get(it["name"])
        assert fields is not None, f"a resort nobody sent: {it}"
        assert all(it.get(k) == v for k, v in fields.items()), f"half-applied: {it} vs {fields}"
    # A write whose connection was lost may or may not have happened, but never twice.
    names = [it["name"] for it in items]
    assert len(names) == len(set(names)), "one POST created two resorts"

    head = metric(server, "resortd_log_head_seq")
    assert head >= len(items)

    rc = server.stop()
    assert rc == 0, "".join(server.logs[-60:])
    out = subprocess.run([BIN, "check", "--data-dir", server.data_dir], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "check: ok" in out.stdout, out.stdout
    # Restarting once more still serves every acknowledged resort (fixture stops it cleanly).
    server.start()
    sample = rng.sample(sorted(acked), min(50, len(acked)))
    for rid in sample:
        assert server.get(f"/v1/resorts/{rid}").status_code == 200
    print(f"\ndurability: seed={seed} kills={kills} acked={len(acked)} listed={len(items)} "
          f"unknown={unknown[0]} elapsed={time.monotonic() - started:.1f}s")
