"""Graceful shutdown: SIGTERM and SIGINT with requests in flight and on an idle server. The
process must exit 0 (no sanitizer report) within 10 s, keep every write it acknowledged, and
stop accepting connections.
"""
import signal
import socket
import subprocess
import threading
import time

import pytest
import requests

import rawhttp
from apihelp import wait_until

EXIT_WITHIN_S = 10.0
ROUNDS = 3


def terminate(server, sig):
    """Sends sig and waits for the exit; returns (exit status, seconds taken)."""
    proc = server.proc
    t0 = time.monotonic()
    proc.send_signal(sig)
    try:
        rc = proc.wait(EXIT_WITHIN_S + 5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        rc = "hung"
    elapsed = time.monotonic() - t0
    server._reader.join(5)
    server.proc = None
    return rc, elapsed


class Load:
    """Client threads on keep-alive sessions: writers POST resorts, readers GET everything."""

    READ_PATHS = ("/v1/resorts?limit=100", "/metrics", "/readyz", "/healthz")

    def __init__(self, server, tag, writers=3):
        self.server = server
        self.tag = tag
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acked = {}      # id -> fields
        self.answers = []    # (kind, status) of every answer
        self.errors = 0
        self.threads = [threading.Thread(target=self.writer, args=(i,), daemon=True)
                        for i in range(writers)]
        self.threads += [threading.Thread(target=self.reader, args=(p,), daemon=True)
                         for p in self.READ_PATHS]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(20)
        assert not any(t.is_alive() for t in self.threads), "a client thread hung"

    def writer(self, wid):
        session = self.server.session()
        n = 0
        while not self.stop.is_set():
            n += 1
            fields = {"name": f"{self.tag}-{wid}-{n}", "address": f"{n} Signal Road", "stars": 1 + n % 5}
            try:
                r = session.post(self.server.url("/v1/resorts"), json=fields, timeout=15)
            except requests.RequestException:
                self.errors += 1
                session = self.server.session()
                self.stop.wait(0.02)
                continue
            with self.lock:
                self.answers.append(("POST", r.status_code))
                if r.status_code in (201, 202):
                    self.acked[r.json()["id"]] = fields

    def reader(self, path):
        session = self.server.session()
        while not self.stop.is_set():
            try:
                r = session.get(self.server.url(path), timeout=15)
            except requests.RequestException:
                self.errors += 1
                session = self.server.session()
                self.stop.wait(0.02)
                continue
            with self.lock:
                self.answers.append((path, r.status_code))

    def count(self, kind, status):
        with self.lock:
            return sum(1 for a in self.answers if a == (kind, status))


def assert_all_present(server, acked):
    for rid, fields in acked.items():
        r = server.get(f"/v1/resorts/{rid}")
        assert r.status_code == 200, f"acknowledged resort {rid} {fields} lost: {r.status_code}"
        got = r.json()
        assert {k: got.get(k) for k in fields} == fields, (fields, got)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_with_requests_in_flight(make_server, sig):
    server = make_server()
    acked = {}
    for rnd in range(ROUNDS):
        load = Load(server, f"{sig.name}-{rnd}").start()
        try:
            assert wait_until(lambda: load.count("POST", 201) >= 10 and
                              all(load.count(p, 200) >= 3 for p in Load.READ_PATHS), 20), load.answers[-10:]
            time.sleep(0.3 * rnd)  # vary the moment
            rc, elapsed = terminate(server, sig)
        finally:
            load.finish()
        logs = "".join(server.logs[-60:])
        assert rc == 0, f"round {rnd}: {sig.name} exit status {rc}:\n{logs}"
        assert elapsed < EXIT_WITHIN_S, f"round {rnd}: took {elapsed:.1f}s to exit"
        assert not server.sanitizer_reports(), logs
        odd = {a for a in load.answers if a[1] not in (200, 201, 202, 503)}
        assert not odd, f"unexpected answers during shutdown: {odd}"
        acked.update(load.acked)
        server.start()
        assert_all_present(server, acked)
    assert len(acked) >= 30 * ROUNDS


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_idle_server_exits_promptly(make_server, sig):
    server = make_server()
    assert server.get("/healthz").status_code == 200
    rc, elapsed = terminate(server, sig)
    assert rc == 0, "".join(server.logs[-40:])
    assert elapsed < EXIT_WITHIN_S, elapsed
    assert any("stopped" in line for line in server.logs), "".join(server.logs[-20:])


def test_idle_connections_do_not_hold_shutdown(make_server):
    """Open keep-alive connections and a half-sent request must not delay the exit."""
    server = make_server(args=["--header-deadline-s", "60", "--idle-timeout-s", "60"])
    keepalive = rawhttp.connect(server.port)
    keepalive.sendall(rawhttp.request_bytes("GET", "/healthz"))
    first = keepalive.recv(4096)
    assert first.startswith(b"HTTP/1.1 200"), first
    partial = rawhttp.connect(server.port)
    partial.sendall(b"POST /v1/resorts HTTP/1.1\r\nHost: x\r\n" + rawhttp.header_block(server.auth_lines())
                    + b"Content-Length: 100\r\n\r\n{\"na")
    time.sleep(0.2)
    try:
        rc, elapsed = terminate(server, signal.SIGTERM)
        assert rc == 0, "".join(server.logs[-40:])
        assert elapsed < EXIT_WITHIN_S, elapsed
    finally:
        keepalive.close()
        partial.close()


def probe_after_signal(server, sig):
    """Sends sig, then connects in a tight loop until the process is gone.

    Returns (exit status, [(outcome, process alive before and after the attempt)]).
    """
    proc, port = server.proc, server.port
    proc.send_signal(sig)
    attempts = []
    deadline = time.monotonic() + EXIT_WITHIN_S + 5
    while time.monotonic() < deadline:
        alive_before = proc.poll() is None
        s = socket.socket()
        s.settimeout(1)
        try:
            s.connect(("127.0.0.1", port))
            outcome = "connected"
        except ConnectionRefusedError:
            outcome = "refused"
        except OSError as e:
            outcome = type(e).__name__
        finally:
            s.close()
        alive_after = proc.poll() is None
        attempts.append((outcome, alive_before and alive_after))
        if not alive_after:
            break
    try:
        rc = proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        rc = "hung"
    server._reader.join(5)
    server.proc = None
    return rc, attempts


def test_port_refuses_connections_after_sigterm(make_server):
    server = make_server()
    port = server.port
    seen_refusing_alive = 0
    for trial in range(3):
        # Busy until just before the signal; the load stops first so the probe loop is not
        # starved of the interpreter while the short window between close and exit lasts.
        load = Load(server, f"refuse-{trial}", writers=2).start()
        try:
            assert wait_until(lambda: load.count("POST", 201) >= 5, 20)
        finally:
            load.finish()
        rc, attempts = probe_after_signal(server, signal.SIGTERM)
        assert rc == 0, "".join(server.logs[-60:])
        outcomes = [o for o, _ in attempts]
        assert "refused" in outcomes, outcomes[-5:]
        first_refused = outcomes.index("refused")
        assert all(o == "refused" for o in outcomes[first_refused:]), \
            f"the port accepted again after refusing: {outcomes[first_refused:][:20]}"
        seen_refusing_alive += any(o == "refused" and alive for o, alive in attempts)
        # Once the process is gone the port stays closed.
        s = socket.socket()
        s.settimeout(1)
        with pytest.raises(ConnectionRefusedError):
            s.connect(("127.0.0.1", port))
        s.close()
        if seen_refusing_alive:
            break
        server.start()
    assert seen_refusing_alive, \
        "in 3 trials the port was never seen refusing while the process was still shutting down"
