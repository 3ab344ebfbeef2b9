"""Shared fixtures for the API tests: the real resortd binary on a free port.

TEST_RESORTD_BIN names the binary (the Makefile passes the ASan/UBSan build). Each test that
asks for `server` gets a fresh data directory and a server started on port 0; the port is
read from the server's "listening on" log line. Stopping checks the exit status, so a leak
or sanitizer report (non-zero exit) fails the test that caused it.
"""
import json
import os
import re
import signal
import subprocess
import threading

import pytest
import requests

BIN = os.environ.get("TEST_RESORTD_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "resortd"))
LISTEN_RE = re.compile(r"listening on (\S+) port (\d+)")


class Server:
    """One resortd process over a data directory; can be stopped, killed and restarted."""

    def __init__(self, data_dir, args=(), env=None):
        self.data_dir = str(data_dir)
        self.args = list(args)
        self.env = dict(os.environ, **(env or {}))
        self.env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        self.proc = None
        self.port = None
        self.logs = []
        self._reader = None

    def start(self, timeout=20, port=0):
        listen = f"127.0.0.1:{self.port if self.port and port == 0 else port}"
        cmd = [BIN, "serve", "--listen", listen, "--data-dir", self.data_dir, "--workers", "2",
               *self.args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     env=self.env, text=True, errors="replace")
        found = threading.Event()

        def drain(proc=self.proc):
            for line in proc.stderr:
                self.logs.append(line)
                m = LISTEN_RE.search(line)
                if m:
                    self.port = int(m.group(2))
                    found.set()

        self._reader = threading.Thread(target=drain, daemon=True)
        self._reader.start()
        if not found.wait(timeout):
            self.proc.kill()
            raise RuntimeError("resortd did not start:\n" + "".join(self.logs[-50:]))
        return self

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"

    def url(self, path):
        return self.base + path

    def get(self, path, **kw):
        return requests.get(self.url(path), timeout=kw.pop("timeout", 10), **kw)

    def post_json(self, path, body, **kw):
        headers = {"Content-Type": "application/json", **kw.pop("headers", {})}
        data = body if isinstance(body, (str, bytes)) else json.dumps(body)
        return requests.post(self.url(path), data=data, headers=headers, timeout=10, **kw)

    def patch_json(self, path, body, **kw):
        headers = {"Content-Type": "application/json", **kw.pop("headers", {})}
        data = body if isinstance(body, (str, bytes)) else json.dumps(body)
        return requests.patch(self.url(path), data=data, headers=headers, timeout=10, **kw)

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Stops the server with sig and returns its exit status."""
        if self.proc is None:
            return None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self._reader.join(5)
        self.proc = None
        return rc

    def kill9(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self._reader.join(5)
            self.proc = None

    def restart(self, timeout=20):
        self.stop()
        return self.start(timeout)

    def sanitizer_reports(self):
        text = "".join(self.logs)
        return [m for m in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
                if m in text]


@pytest.fixture
def make_server(tmp_path):
    """Factory: make_server(args=[...], env={...}) starts a server on its own data dir."""
    servers = []

    def factory(args=(), env=None, data_dir=None):
        s = Server(data_dir or tmp_path / f"data{len(servers)}", args, env)
        servers.append(s)
        return s.start()

    yield factory
    for s in servers:
        if s.proc is not None:
            rc = s.stop()
            assert rc == 0, f"resortd exited {rc}:\n" + "".join(s.logs[-80:])
        assert not s.sanitizer_reports(), "".join(s.logs[-80:])


@pytest.fixture
def server(make_server):
    return make_server()


@pytest.fixture
def demo_server(make_server):
    return make_server(args=["--demo"])
