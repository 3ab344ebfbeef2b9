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
from requests.structures import CaseInsensitiveDict

BIN = os.environ.get("TEST_RESORTD_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "resortd"))
LISTEN_RE = re.compile(r"listening on (\S+) port (\d+)")
# Every server gets a local admin (added with the CLI before its first start) and sends its
# token by default; tests that need another identity use add_user/login, tests that need
# none pass auth=False. Cheap hashes and long tokens keep the suite fast and steady.
ADMIN = "admin"
PASSWORD = "a test password"
AUTH_ARGS = ["--password-iterations", "1000", "--access-ttl-s", "3600"]


class Server:
    """One resortd process over a data directory; can be stopped, killed and restarted."""

    def __init__(self, data_dir, args=(), env=None, provision=True):
        self.data_dir = str(data_dir)
        self.provision = provision
        self.args = list(args)
        self.env = dict(os.environ, **(env or {}))
        self.env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        self.proc = None
        self.port = None
        self.logs = []
        self._reader = None
        self.headers = {}  # sent with every request to this server (see request())

    def start(self, timeout=20, port=0):
        listen = f"127.0.0.1:{self.port if self.port and port == 0 else port}"
        if self.provision and not self.__dict__.get("_provisioned"):
            p = self.cli("user", "add", ADMIN, "--role", "admin", "--password-stdin",
                         stdin=PASSWORD + "\n")
            assert p.returncode == 0 or "exists" in p.stderr, p.stderr
            self._provisioned = True
        cmd = [BIN, "serve", "--listen", listen, "--data-dir", self.data_dir, "--workers", "2",
               *AUTH_ARGS, *self.args]
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
        if self.provision and "Authorization" not in self.headers:
            self.headers.update(self.login(ADMIN))
        return self

    def cli(self, *args, stdin=None):
        """Runs `resortd ARGS --data-dir D` (works while the server runs)."""
        return subprocess.run([BIN, *args, "--data-dir", self.data_dir, *AUTH_ARGS[:2]],
                              input=stdin, capture_output=True, text=True, timeout=60,
                              env=self.env)

    def add_user(self, name, role, resort=None, password=PASSWORD):
        """A local staff user, through the CLI."""
        extra = ["--resort", resort] if resort else []
        p = self.cli("user", "add", name, "--role", role, *extra, "--password-stdin",
                     stdin=password + "\n")
        assert p.returncode == 0, p.stderr

    def login(self, name, password=PASSWORD):
        """Signs name in with the password grant; returns its Authorization header."""
        r = requests.post(self.url("/auth/token"), timeout=30,
                          data={"grant_type": "password", "username": name,
                                "password": password})
        assert r.status_code == 200, r.text
        return {"Authorization": "Bearer " + r.json()["access_token"]}

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"

    def url(self, path):
        return self.base + path

    def request(self, method, path, auth=True, **kw):
        """One request to path. self.headers (unless auth is false) go under the headers
        passed, which win name by name (a None value drops a header); timeout 10 unless given."""
        headers = CaseInsensitiveDict(self.headers if auth else {})
        headers.update(kw.pop("headers", None) or {})
        kw.setdefault("timeout", 10)
        return requests.request(method, self.url(path), headers=headers, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def head(self, path, **kw):
        """HEAD; like requests.head, does not follow redirects unless told."""
        kw.setdefault("allow_redirects", False)
        return self.request("HEAD", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def send_json(self, method, path, body, **kw):
        """method with a JSON body (a str or bytes body is sent as given)."""
        headers = {"Content-Type": "application/json", **(kw.pop("headers", None) or {})}
        data = body if isinstance(body, (str, bytes)) else json.dumps(body)
        return self.request(method, path, data=data, headers=headers, **kw)

    def post_json(self, path, body, **kw):
        return self.send_json("POST", path, body, **kw)

    def put_json(self, path, body, **kw):
        return self.send_json("PUT", path, body, **kw)

    def patch_json(self, path, body, **kw):
        return self.send_json("PATCH", path, body, **kw)

    def session(self):
        """A requests.Session that sends self.headers (as they are now), for keep-alive
        clients and thread pools."""
        s = requests.Session()
        s.headers.update(self.headers)
        return s

    def auth_lines(self):
        """self.headers as "Name: value" lines, for raw-socket requests (see rawhttp)."""
        return [f"{k}: {v}" for k, v in self.headers.items()]

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

    def factory(args=(), env=None, data_dir=None, provision=True):
        s = Server(data_dir or tmp_path / f"data{len(servers)}", args, env, provision)
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
