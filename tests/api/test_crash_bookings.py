"""Bookings under kill -9 (issue 4): many guests contend for fewer rooms than there are guests
(hold, then book at the desk, each request with an Idempotency-Key) while the server is
killed with SIGKILL every second or so and restarted on the same data directory. Each kill
comes in a rush (every waiting guest sends at once) just as its first answers arrive, so the
writer's group commit is caught with requests done but not answered and others not done.

A request whose connection broke or timed out has an unknown outcome: its guest sends it
again, with the same key and the same bytes, once the server is back (at most 3 sends in
all). Every send is an operation in a history (history.py). After a last kill and restart
every key is sent once more, which resolves what was unknown and shows that the answers
survived the crash byte for byte; then every booking and hold seen is read, and the
inventory once the expired holds are swept (held == 0). history.check proves from it: no
night sold past its capacity (nor held and sold past it at any instant, by the server's own
stamps), no unknown left unresolved, one answer per key (byte for byte), one booking per
key and per hold, no acknowledged booking lost or left payment_pending, and the counters
equal the bookings. The first tests feed the checker bad histories, so it is known to be
able to fail.
"""
import datetime
import json
import random
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

import history as hist_mod
from apihelp import put_json
from conftest import BIN
from history import History, answer, check, definite, summary

PRODUCT = "pr_jeju_ocean_deluxe"  # priced through 2027 in demo/catalog.json
NIGHTS = ["2027-08-01", "2027-08-02"]
STAYS = [("2027-08-01", "2027-08-03"), ("2027-08-01", "2027-08-03"),
         ("2027-08-01", "2027-08-02"), ("2027-08-02", "2027-08-03")]
CAPACITY = 24
GUESTS = 64         # each wants one room: more guests than rooms
ARRIVAL_S = 16      # guests arrive spread over this long, so bookings land between kills
ABANDON = 0.3       # share of holds a guest walks away from (they expire: --hold-ttl-s)
HOLD_TTL_S = 5
ATTEMPTS = 3        # sends of one request (one Idempotency-Key) during the load
KILLS = 20
TIMEOUT = (2, 6)    # connect, read


# ---- the checker can fail: hand-made histories ----

def _ans(status, doc, location=None):
    ctype = "application/json" if status < 400 else "application/problem+json"
    return {"status": status, "content_type": ctype, "location": location,
            "body": json.dumps(doc, separators=(",", ":")).encode()}


def _booking(bid, hold_id, frm="2027-08-01", to="2027-08-03", key=None):
    return {"id": bid, "state": "confirmed", "hold_id": hold_id, "request_key": key,
            "items": [{"product_id": PRODUCT, "from": frm, "to": to, "qty": 1}]}


def _hold(hid, second, frm="2027-08-01", to="2027-08-03"):
    return {"id": hid, "state": "held", "created_at": f"2026-11-25T10:00:{second:02d}.000Z",
            "expires_at": f"2026-11-25T10:00:{second + HOLD_TTL_S:02d}.000Z",
            "items": [{"product_id": PRODUCT, "from": frm, "to": to, "qty": 1}]}


def _good_history(capacity=1):
    """Capacity 1; guest 1 books (its first book send unknown, the retry answers);
    guest 2 is refused; the final reads agree."""
    h = History()
    op = h.invoke("staff", "set_capacity", {"nights": {n: capacity for n in NIGHTS}})
    h.ok(op, {"status": 200})
    hold = {"key": "h1", "stay": NIGHTS, "qty": 1}
    op = h.invoke(1, "hold", hold)
    h.ok(op, _ans(201, _hold("ho_1", 0), "/v1/holds/ho_1"))
    op = h.invoke(2, "hold", {"key": "h2", "stay": NIGHTS, "qty": 1})
    h.fail(op, _ans(409, {"status": 409, "reason": "sold_out"}))
    op = h.invoke(1, "book", {"key": "b1", "hold_id": "ho_1"})
    h.unknown(op, {"error": "ConnectionError"})
    op = h.invoke(1, "book", {"key": "b1", "hold_id": "ho_1"})
    h.ok(op, _ans(201, _booking("bk_1", "ho_1", key="b1"), "/v1/bookings/bk_1"))
    op = h.invoke("reader", "read_booking", {"id": "bk_1"})
    h.ok(op, {"status": 200, "state": "confirmed", "request_key": "b1",
              "nights": {n: 1 for n in NIGHTS}})
    op = h.invoke("reader", "read_inventory", {})
    h.ok(op, {"nights": {n: {"capacity": capacity, "sold": 1, "held": 0} for n in NIGHTS}})
    return h


def test_checker_accepts_a_good_history():
    assert check(_good_history()) == []


def test_checker_reports_an_oversold_night():
    h = _good_history(capacity=1)
    # A second guest's booking of another hold was acknowledged too: two rooms sold of one.
    op = h.invoke(3, "hold", {"key": "h3", "stay": NIGHTS, "qty": 1})
    h.ok(op, _ans(201, _hold("ho_3", 30), "/v1/holds/ho_3"))
    op = h.invoke(3, "book", {"key": "b3", "hold_id": "ho_3"})
    h.ok(op, _ans(201, _booking("bk_3", "ho_3", key="b3"), "/v1/bookings/bk_3"))
    op = h.invoke("reader", "read_booking", {"id": "bk_3"})
    h.ok(op, {"status": 200, "state": "confirmed", "request_key": "b3",
              "nights": {n: 1 for n in NIGHTS}})
    problems = check(h)
    assert any(p.startswith("oversold: night 2027-08-01 has 2") for p in problems), problems
    assert any(p.startswith("oversold: night 2027-08-02 has 2") for p in problems), problems
    # The counters were read as 1 sold: they do not match the two bookings either.
    assert any(p.startswith("counters != bookings") for p in problems), problems


def test_checker_reports_holds_past_capacity():
    h = _good_history(capacity=1)
    # ho_1 (booked) has the only room from second 0; ho_9 was granted it too at second 3.
    op = h.invoke(9, "hold", {"key": "h9", "stay": ["2027-08-02"], "qty": 1})
    h.ok(op, _ans(201, _hold("ho_9", 3, frm="2027-08-02"), "/v1/holds/ho_9"))
    problems = check(h)
    assert problems == ["overcommitted: night 2027-08-02 had 2 units held or sold > "
                        "capacity 1 at 2026-11-25T10:00:03.000Z (hold ho_9)"], problems
    # A hold granted once the other's expired is fine: ho_1 unbooked, ho_9 after expiry.
    h = History()
    op = h.invoke("staff", "set_capacity", {"nights": {n: 1 for n in NIGHTS}})
    h.ok(op, {"status": 200})
    for hid, second in (("ho_1", 0), ("ho_9", HOLD_TTL_S)):
        op = h.invoke(1, "hold", {"key": hid, "stay": NIGHTS, "qty": 1})
        h.ok(op, _ans(201, _hold(hid, second), f"/v1/holds/{hid}"))
    assert check(h) == []


def test_checker_reports_an_unresolved_unknown():
    h = _good_history()
    # A hold whose every send broke, and a booking whose every send broke: never resolved.
    for _ in range(3):
        op = h.invoke(4, "hold", {"key": "h4", "stay": NIGHTS, "qty": 1})
        h.unknown(op, {"error": "ReadTimeout"})
    op = h.invoke(5, "book", {"key": "b5", "hold_id": "ho_5"})
    h.unknown(op, {"status": 503, "content_type": "application/problem+json",
                   "location": None, "body": b"{}"})
    op = h.invoke(6, "book", {"key": "b6", "hold_id": "ho_6"})  # never completed
    problems = check(h)
    assert any(p.startswith("unresolved: hold h4") for p in problems), problems
    assert any(p.startswith("unresolved: book b5") for p in problems), problems
    assert any(p.startswith("unresolved: book b6") for p in problems), problems
    # Once a retry with the same key answers, the unknown is resolved.
    for key, hold_id in (("b5", "ho_5"), ("b6", "ho_6")):
        op = h.invoke("resolver", "book", {"key": key, "hold_id": hold_id})
        h.fail(op, _ans(409, {"status": 409, "detail": "the hold has expired"}))
    op = h.invoke("resolver", "hold", {"key": "h4", "stay": NIGHTS, "qty": 1})
    h.fail(op, _ans(409, {"status": 409, "reason": "sold_out"}))
    assert check(h) == []


def test_checker_reports_replays_that_differ_lost_bookings_and_double_bookings():
    h = _good_history(capacity=5)
    # The same key answered with other bytes.
    op = h.invoke(1, "book", {"key": "b1", "hold_id": "ho_1"})
    h.ok(op, _ans(201, _booking("bk_1", "ho_1", key="b1") | {"version": 2},
                  "/v1/bookings/bk_1"))
    # A second key booked the same hold; its booking is gone and pending at the end.
    op = h.invoke(7, "book", {"key": "b7", "hold_id": "ho_1"})
    h.ok(op, _ans(201, _booking("bk_7", "ho_1", key="b7"), "/v1/bookings/bk_7"))
    op = h.invoke("reader", "read_booking", {"id": "bk_7"})
    h.ok(op, {"status": 404})
    op = h.invoke("reader", "read_booking", {"id": "bk_8"})
    h.ok(op, {"status": 200, "state": "payment_pending", "nights": {}})
    op = h.invoke("reader", "read_hold", {"id": "ho_1"})
    h.ok(op, {"status": 200, "state": "expired", "booking_id": None})
    problems = check(h)
    assert any(p.startswith("hold ho_1 was booked by") for p in problems), problems
    assert any(p.startswith("replay differs: book b1") for p in problems), problems
    assert any(p.startswith("hold ho_1 booked twice") for p in problems), problems
    assert any(p.startswith("lost: booking bk_7") for p in problems), problems
    assert any(p.startswith("saga unfinished: booking bk_8") for p in problems), problems


# ---- the crash test ----

class Guests:
    """The guests' threads, the history they write and the server's up/down state."""

    def __init__(self, server, seed):
        self.server = server
        self.seed = seed
        self.history = History()
        self.stop = threading.Event()
        self.up = threading.Event()
        self.up.set()
        self.generation = 0      # bumps on every restart: sessions from before are stale
        self.sent = {}           # (f, key) -> (path, body bytes, invoke value)
        self.lock = threading.Lock()
        self.unexpected = []     # answers no guest should get
        self.rush = threading.Event()  # set: the waiting guests all send at once
        self.answers = 0               # definite answers so far

    def post(self, session, proc, f, key, path, body, value):
        """Sends one request up to ATTEMPTS times with its key; returns the definite answer,
        or None when every send was unknown."""
        with self.lock:
            self.sent[(f, key)] = (path, body, value)
        for attempt in range(ATTEMPTS):
            self.up.wait()  # an unknown is retried once the server is back
            session.refresh(self.generation)
            op = self.history.invoke(proc, f, value)
            try:
                r = session.s.post(self.server.url(path), data=body, timeout=TIMEOUT,
                                   headers={"Content-Type": "application/json",
                                            "Idempotency-Key": key})
            except requests.RequestException as e:
                self.history.unknown(op, {"error": type(e).__name__, "attempt": attempt})
                session.reset()
                continue
            a = answer(r)
            if not definite(r.status_code):
                self.history.unknown(op, a | {"attempt": attempt})
                continue
            (self.history.ok if r.status_code < 400 else self.history.fail)(op, a)
            with self.lock:
                self.answers += 1
            return a
        return None

    def pause(self, seconds):
        """Waits seconds, or less when a rush begins (or the test stops)."""
        rush, until = self.rush, time.monotonic() + seconds
        while not self.stop.is_set() and time.monotonic() < until:
            if rush.wait(min(0.05, max(0, until - time.monotonic()))):
                return

    def start_rush(self):
        """Releases every pausing guest at once (a flash sale), so that the writer has a
        queue to work through when the kill comes."""
        rush, self.rush = self.rush, threading.Event()
        rush.set()

    def guest(self, gid):
        rng = random.Random(self.seed * 1000 + gid)
        session = _Session(self.server)
        self.stop.wait(rng.uniform(0, ARRIVAL_S))
        n = 0
        while not self.stop.is_set():
            n += 1
            frm, to = rng.choice(STAYS)
            stay = [d for d in NIGHTS if frm <= d < to]
            hold_key = f"{self.seed}-g{gid}-{n}-hold"
            body = json.dumps({"items": [{"product_id": PRODUCT, "from": frm, "to": to,
                                          "qty": 1}],
                               "guest": {"name": f"Guest {gid}",
                                         "email": f"guest{gid}@example.com"}}).encode()
            a = self.post(session, gid, "hold", hold_key, "/v1/holds", body,
                          {"key": hold_key, "stay": stay, "qty": 1})
            if a is None:
                continue  # unknown after every send: the final replay resolves it
            if a["status"] == 409:
                self.pause(rng.uniform(0.2, 0.8))  # sold out: look again later
                continue
            if a["status"] != 201:
                self.unexpected.append(("hold", hold_key, a["status"], a["body"][:300]))
                return
            hold_id = json.loads(a["body"])["id"]
            if rng.random() < ABANDON:
                self.stop.wait(rng.uniform(0.2, 1.0))  # walks away; the hold expires
                continue
            self.pause(rng.uniform(0, 2.5))  # books at the next rush, most likely
            book_key = f"{self.seed}-g{gid}-{n}-book"
            body = json.dumps({"hold_id": hold_id, "payment": {"method": "desk"}}).encode()
            a = self.post(session, gid, "book", book_key, "/v1/bookings", body,
                          {"key": book_key, "hold_id": hold_id})
            if a is None:
                continue
            if a["status"] == 201:
                return  # the guest has a room
            if a["status"] != 409:  # 409: the hold expired meanwhile (a kill took long)
                self.unexpected.append(("book", book_key, a["status"], a["body"][:300]))
                return


class _Session:
    """A keep-alive session that is dropped after an error or a restart (its pooled
    connections are dead then)."""

    def __init__(self, server):
        self.server = server
        self.s = server.session()
        self.generation = 0

    def reset(self):
        self.s.close()
        self.s = self.server.session()

    def refresh(self, generation):
        if generation != self.generation:
            self.reset()
            self.generation = generation


def _inventory(server):
    r = server.get(f"/v1/inventory/{PRODUCT}?from={NIGHTS[0]}&to=2027-08-03")
    assert r.status_code == 200, r.text
    return {d["date"]: {k: d[k] for k in ("capacity", "sold", "held")} for d in r.json()["days"]}


def _committed_unknowns(h):
    """Keys whose send was cut off after the server had acted: a later send replayed a
    hold or booking created before that later send began. Returns {f: count}."""
    ops, _ = hist_mod.pair(h.events)
    out, seen = {"hold": 0, "book": 0}, set()
    for i, o in enumerate(ops):
        if o.f not in out or o.type != "unknown" or (o.f, o.key) in seen:
            continue
        later = [x for x in ops[i + 1:] if x.f == o.f and x.key == o.key and x.type == "ok"]
        if not later:
            continue
        created = json.loads(later[0].result["body"]).get("created_at")
        stamp = datetime.datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
        if stamp < h.wall0 + later[0].invoke.time:
            out[o.f] += 1
            seen.add((o.f, o.key))
    return out


def test_bookings_survive_kill9(make_server):
    server = make_server(args=["--demo", "--hold-ttl-s", str(HOLD_TTL_S)])
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    g = Guests(server, seed)
    h = g.history
    started = time.monotonic()

    op = h.invoke("staff", "set_capacity", {"nights": {n: CAPACITY for n in NIGHTS}})
    r = put_json(server, f"/v1/inventory/{PRODUCT}",
                 {"from": NIGHTS[0], "to": "2027-08-03", "capacity": CAPACITY})
    assert r.status_code == 200, r.text
    h.ok(op, {"status": r.status_code})

    threads = [threading.Thread(target=g.guest, args=(i,), daemon=True) for i in range(GUESTS)]
    for t in threads:
        t.start()
    kills, between = 0, []  # bookings acknowledged between one kill and the next
    try:
        last = 0
        while kills < KILLS and time.monotonic() - started < 60:
            time.sleep(rng.uniform(0.5, 1.5))
            # Kill in the middle of a rush, just as its first answers arrive: the writer
            # commits in groups, so others of the group are done and not yet answered,
            # and more are not done at all.
            answers = g.answers + rng.randint(1, 4)
            g.start_rush()
            until = time.monotonic() + 0.5
            while g.answers < answers and time.monotonic() < until:
                time.sleep(0.0002)
            g.up.clear()
            died = server.proc.poll()
            assert died is None, f"resortd exited {died} by itself (seed {seed}):\n" + \
                "".join(server.logs[-60:])
            server.kill9()
            kills += 1
            acked = sum(1 for e in h.events if e.f == "book" and e.type == "ok")
            between.append(acked - last)
            last = acked
            server.start()
            g.generation += 1
            g.up.set()
        time.sleep(1.0)
    finally:
        g.stop.set()
        g.up.set()
        for t in threads:
            t.join(30)
    assert not any(t.is_alive() for t in threads), "a guest thread hung"
    load_s = time.monotonic() - started
    assert kills >= 10, f"only {kills} kills"
    assert not g.unexpected, f"answers no guest should get (seed {seed}): {g.unexpected[:5]}"

    # The final crash and restart; then every key once more: unknowns get their answer, and
    # known answers must come back byte for byte from the restarted server.
    died = server.proc.poll()
    assert died is None, f"resortd exited {died} by itself:\n" + "".join(server.logs[-60:])
    server.kill9()
    server.start()
    g.generation += 1
    sent = sorted(g.sent.items(), key=lambda kv: (kv[0][0] != "hold", kv[0][1]))

    def resolve(item):
        (f, key), (path, body, value) = item
        session = server.session()
        for _ in range(ATTEMPTS):
            op = h.invoke("resolver", f, value)
            try:
                r = session.post(server.url(path), data=body, timeout=TIMEOUT,
                                 headers={"Content-Type": "application/json",
                                          "Idempotency-Key": key})
            except requests.RequestException as e:
                h.unknown(op, {"error": type(e).__name__})
                continue
            a = answer(r)
            if definite(r.status_code):
                (h.ok if r.status_code < 400 else h.fail)(op, a)
                return
            h.unknown(op, a)
        session.close()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(resolve, [kv for kv in sent if kv[0][0] == "hold"]))
        list(pool.map(resolve, [kv for kv in sent if kv[0][0] == "book"]))

    # Every booking any answer named, read back; then the counters once the holds are gone.
    ids = set()
    for e in h.events:
        if e.f == "book" and e.type == "ok":
            doc = json.loads(e.value["body"])
            ids.add(doc["id"])
    for bid in sorted(ids):
        op = h.invoke("reader", "read_booking", {"id": bid})
        r = server.get(f"/v1/bookings/{bid}")
        doc = r.json() if r.status_code == 200 else {}
        h.ok(op, {"status": r.status_code, "state": doc.get("state"),
                  "request_key": doc.get("request_key"),
                  "nights": hist_mod.booking_nights(doc)})
    deadline = time.monotonic() + HOLD_TTL_S + 15
    while True:
        op = h.invoke("reader", "read_inventory", {})
        days = _inventory(server)
        h.ok(op, {"nights": days})
        if all(d["held"] == 0 for d in days.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    holds = {json.loads(e.value["body"])["id"] for e in h.events
             if e.f == "hold" and e.type == "ok"}
    for hid in sorted(holds):
        op = h.invoke("reader", "read_hold", {"id": hid})
        r = server.get(f"/v1/holds/{hid}")
        doc = r.json() if r.status_code == 200 else {}
        h.ok(op, {"status": r.status_code, "state": doc.get("state"),
                  "booking_id": doc.get("booking_id")})

    problems = check(h)
    stats = summary(h)
    report = (f"seed={seed} kills={kills} bookings={len(ids)} holds={len(holds)} "
              f"cut-off-after-commit={_committed_unknowns(h)} "
              f"capacity={CAPACITY} "
              f"final={days} per-interval={between} ops={stats} "
              f"load={load_s:.1f}s total={time.monotonic() - started:.1f}s")
    print("\ncrash bookings: " + report)
    assert not problems, f"{len(problems)} problems ({report}):\n" + "\n".join(problems[:30])
    assert all(d["held"] == 0 for d in days.values()), f"holds never expired: {days}"

    # The load was real: rooms ran out, guests were refused, bookings landed between kills,
    # and kills cut requests off.
    assert stats.get("hold:fail", 0) > 0, "no guest was ever refused"
    assert len(ids) >= CAPACITY // 2, f"only {len(ids)} bookings"
    assert sum(1 for b in between if b > 0) >= 3, f"bookings between kills: {between}"
    assert stats.get("hold:unknown", 0) + stats.get("book:unknown", 0) > 0, \
        "no request was ever cut off by a kill"

    rc = server.stop()
    assert rc == 0, "".join(server.logs[-60:])
    out = subprocess.run([BIN, "check", "--data-dir", server.data_dir], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    server.start()  # the fixture stops it and looks for sanitizer reports
