"""A real OpenID provider (npm oidc-provider 9, tests/oidc/provider.mjs) on loopback over HTTPS.

For tests that need an IdP. `OidcProvider` generates, in its own directory, a throwaway CA and a
server certificate for 127.0.0.1 (openssl CLI, ECDSA P-256) and runs `node provider.mjs` on a
free port; at its first start provider.mjs makes the private signing JWKS (RSA 2048, RS256),
DIR/jwks.json.

    from oidc_harness import OidcProvider      # tests/oidc must be on sys.path, see below
    op = OidcProvider(tmp_path / "idp", redirect_uris=["http://127.0.0.1:8080/auth/callback"])
    op.start()
    op.issuer            # "https://127.0.0.1:PORT"; op.discovery_url adds /.well-known/openid-configuration
    op.ca_file           # the CA PEM the relying party must trust
    op.client_id, op.client_secret          # "resortd-test", "resortd-test-secret" (client_secret_basic)
    url = op.login(auth_url, "staff1")       # -> redirect_uri?code=...&state=...&iss=... (not fetched)
    url = op.deny(auth_url)                  # -> the RP's redirect_uri?error=access_denied&state=...
    op.rotate_keys()     # -> new kid; it signs from now on, the JWKS publishes old and new kids
    op.set_redirect_uris([...])              # change the client's redirect_uris while running
    op.stop(); op.start()                    # IdP outage and recovery: same port, issuer and keys
    op.close()           # stop for good (the fixtures do this at teardown)

Users: guest1, guest2 (no groups), staff1 (groups ["resort-staff"], resort "rs_demo"), manager1
(["resort-managers"], resort "rs_demo"), admin1 (["group-admins"]); any password. Another login
name ends in the provider's 500 page, so login() raises. The scopes openid profile email groups
put name, email, email_verified, groups and resort in the id_token itself.

Pytest: the fixtures `oidc_provider` (one provider, redirect_uris http://127.0.0.1:9/cb; change
them with set_redirect_uris once the RP's port is known) and `oidc_provider_factory` (call it
with redirect_uris=... for as many providers as needed) are function-scoped and kill the node
processes at teardown. To use them from tests/api, in tests/api/conftest.py:

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "oidc"))
    from oidc_harness import oidc_provider, oidc_provider_factory  # noqa: E402,F401 (fixtures)

Needs node (>= 18) with tests/oidc/node_modules installed (scripts/install-deps.sh test runs
npm ci) and openssl. OIDC_NODE names another node binary.
"""
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
import requests

HERE = os.path.dirname(os.path.abspath(__file__))
PROVIDER_JS = os.path.join(HERE, "provider.mjs")
READY_RE = re.compile(r"oidc-provider listening on (https://127\.0\.0\.1:(\d+))")
CLIENT_ID = "resortd-test"
CLIENT_SECRET = "resortd-test-secret"
USERS = ("guest1", "guest2", "staff1", "manager1", "admin1")


def node_binary():
    node = os.environ.get("OIDC_NODE") or shutil.which("node") or shutil.which("nodejs")
    if not node:
        raise RuntimeError("node is not installed (scripts/install-deps.sh test)")
    if not os.path.isdir(os.path.join(HERE, "node_modules", "oidc-provider")):
        raise RuntimeError(f"{HERE}/node_modules is missing: run `npm ci` there "
                           "(scripts/install-deps.sh test does)")
    return node


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def make_tls_files(directory):
    """Writes ca.pem (+ ca.key), cert.pem and key.pem (server, SAN IP:127.0.0.1 and DNS:localhost).

    ECDSA P-256 keys: generated at once, where RSA 2048 takes a random 0.05-0.5 s per key.
    """
    d = str(directory)
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-sha256", "-days", "2",
             "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=resortd test CA (throwaway)",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-addext", "subjectKeyIdentifier=hash", cwd=d)
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-sha256",
             "-keyout", "key.pem",
             "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "subjectKeyIdentifier=hash\n"
                "authorityKeyIdentifier=keyid:always\n")
    _openssl("x509", "-req", "-sha256", "-days", "2", "-in", "server.csr", "-CA", "ca.pem",
             "-CAkey", "ca.key", "-set_serial", str(int.from_bytes(os.urandom(8), "big")),
             "-extfile", "server.ext", "-out", "cert.pem", cwd=d)


class _Form(HTMLParser):
    """The first <form> of a devInteractions page: its action and its hidden prompt value."""

    def __init__(self):
        super().__init__()
        self.action = None
        self.prompt = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = a.get("action")
        elif tag == "input" and a.get("name") == "prompt" and self.prompt is None:
            self.prompt = a.get("value")


class OidcProvider:
    def __init__(self, workdir, redirect_uris=("http://127.0.0.1:9/cb",), client_id=CLIENT_ID,
                 client_secret=CLIENT_SECRET, id_token_ttl=None):
        self.dir = str(workdir)
        os.makedirs(self.dir, exist_ok=True)
        self.redirect_uris = list(redirect_uris)
        self.client_id = client_id
        self.client_secret = client_secret
        self.id_token_ttl = id_token_ttl
        self.ca_file = os.path.join(self.dir, "ca.pem")
        self.port = None
        self.issuer = None
        self.proc = None
        self.logs = []  # stdout + stderr lines of every run
        self._reader = None
        if not os.path.exists(os.path.join(self.dir, "cert.pem")):
            make_tls_files(self.dir)
        # jwks.json (private, RSA 2048) is made by node at the first start (--init-jwks).

    # -- process ---------------------------------------------------------------------------

    def start(self, timeout=120):
        """Starts the provider (again): the first start picks a free port, later ones reuse it.

        The timeout is only a deadline, so it is generous: a start takes 0.5 s here, but one took
        over 20 s on CI (the 13th start of a run; cause not found, it printed nothing)."""
        if self.running:
            return self
        cmd = [node_binary(), PROVIDER_JS, "--dir", self.dir, "--port", str(self.port or 0),
               "--client-id", self.client_id, "--client-secret", self.client_secret,
               "--init-jwks", "--exit-on-stdin-eof"]
        for uri in self.redirect_uris:
            cmd += ["--redirect-uri", uri]
        if self.id_token_ttl is not None:
            cmd += ["--id-token-ttl", str(self.id_token_ttl)]
        for attempt in range(50):
            # stdin is a pipe that only closes when this process ends (or stop() kills node):
            # provider.mjs exits on its EOF, so a killed pytest leaves no node behind.
            proc = subprocess.Popen(cmd, cwd=HERE, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, errors="replace",
                                    start_new_session=True)
            found = threading.Event()
            result = {}

            def drain(proc=proc, found=found, result=result):
                for line in proc.stdout:
                    self.logs.append(line)
                    m = READY_RE.search(line)
                    if m and not found.is_set():
                        result["issuer"], result["port"] = m.group(1), int(m.group(2))
                        found.set()
                found.set()  # EOF: the process ended

            reader = threading.Thread(target=drain, daemon=True)
            reader.start()
            found.wait(timeout)
            if "port" in result:
                break
            self._kill(proc)
            reader.join(5)
            proc.stdout.close()
            tail = "".join(self.logs[-20:])
            # A restart on the same port can race with the old socket or another program.
            if self.port and "EADDRINUSE" in tail and attempt < 49:
                time.sleep(0.1)
                continue
            raise RuntimeError(f"oidc-provider did not start in {timeout} s "
                               f"(load average {os.getloadavg()}):\n" + tail)
        self.proc, self._reader = proc, reader
        self.port, self.issuer = result["port"], result["issuer"]
        return self

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @staticmethod
    def _kill(proc):
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        if proc.stdin:
            proc.stdin.close()

    def stop(self):
        """Stops the provider (an outage): connections to the issuer are refused until start()."""
        if self.proc is not None:
            self._kill(self.proc)
            if self._reader is not None:
                self._reader.join(5)
            self.proc.stdout.close()
            self.proc = None
        return self

    close = stop

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- HTTP helpers ------------------------------------------------------------------------

    def session(self):
        """A requests.Session that trusts the test CA and ignores proxy settings."""
        s = requests.Session()
        s.verify = self.ca_file
        s.trust_env = False
        return s

    def url(self, path):
        return self.issuer + path

    @property
    def discovery_url(self):
        return self.issuer + "/.well-known/openid-configuration"

    def discovery(self):
        r = self.session().get(self.discovery_url, timeout=10)
        r.raise_for_status()
        return r.json()

    def jwks(self):
        """The public JWKS the provider publishes."""
        r = self.session().get(self.discovery()["jwks_uri"], timeout=10)
        r.raise_for_status()
        return r.json()

    def rotate_keys(self):
        """Signs with a new RSA key from now on; returns its kid. Old keys stay published."""
        r = self.session().post(self.url("/__test/rotate"), timeout=30)
        r.raise_for_status()
        return r.json()["kid"]

    def set_redirect_uris(self, uris):
        """Replaces the client's redirect_uris (kept across stop/start)."""
        r = self.session().post(self.url("/__test/redirect_uris"),
                                json={"redirect_uris": list(uris)}, timeout=10)
        if r.status_code != 200:
            raise RuntimeError(f"redirect_uris refused: {r.status_code} {r.text}")
        self.redirect_uris = list(uris)

    def set_client_auth(self, method, jwks_uri=None):
        """The client's token endpoint authentication: "client_secret_basic" (the default), or
        "private_key_jwt" with its public keys at jwks_uri. Lost on a restart."""
        body = {"method": method} if jwks_uri is None else {"method": method, "jwks_uri": jwks_uri}
        r = self.session().post(self.url("/__test/client_auth"), json=body, timeout=10)
        if r.status_code != 200:
            raise RuntimeError(f"client auth refused: {r.status_code} {r.text}")

    # -- browserless login -------------------------------------------------------------------

    def login(self, auth_url, user, session=None, password="x", max_steps=20, _deny=False):
        """Logs `user` in through devInteractions, starting at an authorization URL the RP built.

        Follows the provider's redirects (only those on the issuer), posts the login form
        (prompt=login&login=USER&password=x) and the consent form (prompt=consent) whenever the
        provider shows them, and returns the first redirect that leaves the provider: the RP's
        redirect_uri with code and state (or error), WITHOUT requesting it. Pass the same
        `session` again to reuse the provider's SSO session (cookies); by default a fresh one.
        """
        s = session if session is not None else self.session()
        issuer = urlsplit(self.issuer)
        url, method, data = auth_url, "GET", None
        for _ in range(max_steps):
            r = s.request(method, url, data=data, allow_redirects=False, timeout=10,
                          verify=self.ca_file)
            if r.is_redirect or r.status_code in (301, 302, 303, 307, 308):
                nxt = urljoin(r.url, r.headers["Location"])
                target = urlsplit(nxt)
                if (target.scheme, target.netloc) != (issuer.scheme, issuer.netloc):
                    return nxt
                url, method, data = nxt, "GET", None
                continue
            if r.status_code != 200:
                hint = " (a user the provider does not know?)" if r.status_code == 500 else ""
                raise RuntimeError(f"login: {method} {url} -> {r.status_code}{hint}: {r.text[:2000]}")
            form = _Form()
            form.feed(r.text)
            if _deny and form.prompt in ("login", "consent"):
                # devInteractions' "Cancel" link: the provider answers access_denied.
                url, method, data = urljoin(r.url, form.action.rstrip("/") + "/abort"), "GET", None
                continue
            if form.prompt == "login":
                data = {"prompt": "login", "login": user, "password": password}
            elif form.prompt == "consent":
                data = {"prompt": "consent"}
            else:
                raise RuntimeError(f"login: unexpected page at {url}: {r.text[:2000]}")
            url, method = urljoin(r.url, form.action), "POST"
        raise RuntimeError(f"login: no redirect to the RP after {max_steps} steps")

    def deny(self, auth_url, session=None):
        """Like login(), but the user cancels: returns the redirect_uri URL with error=access_denied."""
        return self.login(auth_url, None, session=session, _deny=True)


@pytest.fixture
def oidc_provider_factory(tmp_path_factory):
    """Function-scoped factory: make(redirect_uris=..., **kw) -> a started OidcProvider."""
    made = []

    def make(redirect_uris=("http://127.0.0.1:9/cb",), **kw):
        op = OidcProvider(tmp_path_factory.mktemp("oidc"), redirect_uris=redirect_uris, **kw)
        made.append(op)
        return op.start()

    yield make
    for op in made:
        op.stop()


@pytest.fixture(scope="module")
def idp(tmp_path_factory):
    """One provider for a test module (its redirect_uris follow each test's server)."""
    op = OidcProvider(tmp_path_factory.mktemp("idp"))
    op.start()
    yield op
    op.close()


@pytest.fixture
def oidc_provider(oidc_provider_factory):
    """One started OidcProvider (redirect_uris http://127.0.0.1:9/cb until set_redirect_uris)."""
    return oidc_provider_factory()
