"""Single sign-on against a real OpenID provider (tests/oidc: npm oidc-provider over HTTPS).

resortd is the relying party: GET /auth/login sends the browser to the IdP with state, nonce
and a PKCE challenge (kept in the MAC'd rsd_oidc cookie), GET /auth/callback exchanges the
code, checks the id_token and opens a local session. Here the "browser" is the harness's
OidcProvider.login(), which walks the IdP's devInteractions pages and hands back the
redirect to our callback without fetching it; the tests fetch it themselves, with the
rsd_oidc cookie passed as a header (it is Secure, and the server speaks plain HTTP here).

The IdP is started with a placeholder redirect URI; once the server's port is known the
client's redirect_uris are set to http://127.0.0.1:PORT/auth/callback (the server's default
public URL is http://LISTEN). One provider serves the whole module except the outage test,
which stops its own. Every request is sent with requests directly and explicit headers, so
no shared credentials from the conftest leak in.
"""
import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from conftest import BIN

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "oidc"))
from oidc_harness import OidcProvider, idp, make_tls_files  # noqa: E402,F401 (idp: a fixture)

ITER = ["--password-iterations", "1000"]
ROLE_MAP = "resort-staff=staff,resort-managers=manager,group-admins=admin"
PW = "correct horse 1"


# ---------------------------------------------------------------- fixtures and helpers

def oidc_args(op):
    return ["--oidc-issuer", op.issuer, "--oidc-client-id", "resortd-test",
            "--oidc-client-secret", "resortd-test-secret", "--oidc-ca-file", op.ca_file,
            "--oidc-scopes", "openid profile email groups", "--oidc-role-map", ROLE_MAP, *ITER]


def sso_server(make_server, op, data_dir=None, args=None):
    """A resortd that trusts op, with op's client allowed to redirect to its callback (the
    server's default public URL names the port it bound: see
    test_default_redirect_uri_names_the_bound_port)."""
    srv = make_server(args=oidc_args(op) if args is None else args, data_dir=data_dir)
    op.set_redirect_uris([srv.base + "/auth/callback"])
    return srv


def req(srv, method, path, token=None, headers=None, **kw):
    """One request on a new connection, never following redirects; token: sent as Bearer."""
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = "Bearer " + token
    kw.setdefault("timeout", 30)
    kw.setdefault("allow_redirects", False)
    return requests.request(method, srv.url(path), headers=h, **kw)


def problem(r, status):
    assert r.status_code == status, (r.status_code, r.headers, r.text)
    assert r.headers.get("Content-Type") == "application/problem+json", r.headers
    body = r.json()
    assert body["status"] == status and body["detail"], body
    return body


def set_cookies(r):
    """{name: (value, [attributes])} of r's Set-Cookie lines."""
    out = {}
    for line in r.raw.headers.getlist("Set-Cookie"):
        parts = [p.strip() for p in line.split(";")]
        name, _, value = parts[0].partition("=")
        out[name] = (value, parts[1:])
    return out


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwt_claims(token):
    return json.loads(b64d(token.split(".")[1]))


def jwt_header(token):
    return json.loads(b64d(token.split(".")[0]))


def start_login(srv, return_to=None):
    """GET /auth/login; returns (IdP authorization URL, rsd_oidc cookie value)."""
    path = "/auth/login" + ("?" + urlencode({"return_to": return_to}) if return_to else "")
    r = req(srv, "GET", path)
    assert r.status_code == 302, r.text
    cookies = set_cookies(r)
    assert "rsd_oidc" in cookies, r.headers
    value, attrs = cookies["rsd_oidc"]
    assert {"Path=/auth/callback", "Secure", "HttpOnly", "SameSite=Lax"} <= set(attrs), attrs
    return r.headers["Location"], value


def callback(srv, callback_url, cookie):
    """GET our callback with the query the IdP redirected to; cookie: rsd_oidc (or None)."""
    parts = urlsplit(callback_url)
    assert parts.path == "/auth/callback", callback_url
    headers = {"Cookie": f"rsd_oidc={cookie}"} if cookie is not None else {}
    return req(srv, "GET", "/auth/callback?" + parts.query, headers=headers)


def query_of(url):
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def with_query(url, **changes):
    q = query_of(url)
    q.update(changes)
    p = urlsplit(url)
    return f"{p.scheme}://{p.netloc}{p.path}?{urlencode(q)}"


def sso_login(srv, op, user):
    """The whole flow for user; returns the callback's 200 JSON and its Set-Cookie map."""
    auth_url, cookie = start_login(srv)
    r = callback(srv, op.login(auth_url, user), cookie)
    assert r.status_code == 200, r.text
    return r.json(), set_cookies(r)


def whoami(srv, token):
    r = req(srv, "GET", "/auth/session", token)
    assert r.status_code == 200, r.text
    return r.json()


def no_session_cookies(r):
    c = set_cookies(r)
    return "rsd_session" not in c or c["rsd_session"][0] == ""


# ---------------------------------------------------------------- the flow

def test_sso_login_maps_roles_and_gives_stable_subjects(make_server, idp):
    srv = sso_server(make_server, idp)

    guest, guest_cookies = sso_login(srv, idp, "guest1")
    assert guest["token_type"].lower() == "bearer"
    assert guest["expires_in"] > 0 and guest["refresh_token"] and guest["csrf_token"]
    assert {"rsd_session", "rsd_csrf"} <= set(guest_cookies)
    assert guest_cookies["rsd_oidc"][0] == "" and "Max-Age=0" in guest_cookies["rsd_oidc"][1]
    me = whoami(srv, guest["access_token"])
    assert me["sub"].startswith("u_") and me["role"] == "guest", me
    assert not me.get("resort"), me
    assert jwt_claims(guest["access_token"])["sub"] == me["sub"]

    staff, _ = sso_login(srv, idp, "staff1")
    st = whoami(srv, staff["access_token"])
    assert st["role"] == "staff" and st["resort"] == "rs_demo", st
    assert st["name"], st

    manager, _ = sso_login(srv, idp, "manager1")
    mg = whoami(srv, manager["access_token"])
    assert mg["role"] == "manager" and mg["resort"] == "rs_demo", mg

    admin, _ = sso_login(srv, idp, "admin1")
    ad = whoami(srv, admin["access_token"])
    assert ad["role"] == "admin", ad

    # The same IdP user is the same local subject in a new session; others differ.
    again, _ = sso_login(srv, idp, "guest1")
    me2 = whoami(srv, again["access_token"])
    assert me2["sub"] == me["sub"] and me2["sid"] != me["sid"], (me, me2)
    guest2, _ = sso_login(srv, idp, "guest2")
    subs = {me["sub"], whoami(srv, guest2["access_token"])["sub"], st["sub"], mg["sub"],
            ad["sub"]}
    assert len(subs) == 5, subs

    # The tokens work on guest routes, and the router's role limits apply to them.
    r = req(srv, "GET", "/v1/bookings", guest["access_token"])
    assert r.status_code == 200, r.text
    body = {"name": "SSO Lodge"}
    h = {"Content-Type": "application/json"}
    problem(req(srv, "POST", "/v1/resorts", guest["access_token"], h, data=json.dumps(body)),
            403)
    problem(req(srv, "POST", "/v1/resorts", staff["access_token"], h, data=json.dumps(body)),
            403)
    r = req(srv, "POST", "/v1/resorts", admin["access_token"], h, data=json.dumps(body))
    assert r.status_code == 201, r.text
    # Without a token a guest route asks for one.
    problem(req(srv, "GET", "/v1/bookings"), 401)


def test_default_redirect_uri_names_the_bound_port(make_server, idp):
    """--listen 127.0.0.1:0 binds a free port; the default public URL (http://LISTEN), so
    the redirect_uri sent to the IdP, must name that port, not ":0" (no IdP accepts that
    redirect, and nothing could ever reach it)."""
    srv = make_server(args=oidc_args(idp))
    r = req(srv, "GET", "/auth/login")
    assert r.status_code == 302, r.text
    assert query_of(r.headers["Location"])["redirect_uri"] == srv.base + "/auth/callback"


# ---------------------------------------------------------------- state, PKCE, nonce

def test_callback_state_cookie_and_code_checks(make_server, idp):
    srv = sso_server(make_server, idp)

    auth_url, cookie = start_login(srv)
    q = query_of(auth_url)
    assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43, q
    assert q["state"] and q["nonce"] and q["redirect_uri"] == srv.base + "/auth/callback", q
    assert q["response_type"] == "code" and q["client_id"] == "resortd-test", q
    assert "openid" in q["scope"].split(), q
    assert q["state"] not in cookie and q["nonce"] not in cookie  # the cookie is opaque...
    back = idp.login(auth_url, "guest1")
    assert query_of(back)["state"] == q["state"]

    # A wrong state, no login cookie, a tampered one: 400 and no session.
    other_state = q["state"][:-1] + ("A" if q["state"][-1] != "A" else "B")
    for url, c in ((with_query(back, state=other_state), cookie),
                   (with_query(back, state="short"), cookie),
                   (back, None),
                   (back, ""),
                   (back, cookie[:5] + ("x" if cookie[5] != "x" else "y") + cookie[6:]),
                   (back, cookie[:-1] + ("A" if cookie[-1] != "A" else "B")),
                   (back, cookie.split(".")[0])):
        r = callback(srv, url, c)
        problem(r, 400)
        assert no_session_cookies(r), r.headers
    r = callback(srv, with_query(back, code=""), cookie)
    assert r.status_code == 400 or r.status_code == 401, r.text

    # The refusals did not spend the code: the real pair still signs in, once.
    r = callback(srv, back, cookie)
    assert r.status_code == 200, r.text
    replay = callback(srv, back, cookie)
    body = problem(replay, 401)
    assert no_session_cookies(replay), replay.headers
    assert "code" in body["detail"] or "grant" in body["detail"], body

    # Two logins in the same browser session: A's code with B's state and cookie (so the
    # state matches) fails on B's PKCE verifier (and nonce); with A's state it fails on
    # the state.
    auth_a, cookie_a = start_login(srv)
    auth_b, cookie_b = start_login(srv)
    back_a = idp.login(auth_a, "guest2")
    state_b = query_of(auth_b)["state"]
    problem(callback(srv, back_a, cookie_b), 400)
    r = callback(srv, with_query(back_a, state=state_b), cookie_b)
    assert 400 <= r.status_code < 500, r.text
    assert no_session_cookies(r), r.headers


def test_callback_refuses_another_issuers_iss(make_server, idp):
    """RFC 9207: the IdP advertises authorization_response_iss_parameter_supported and puts
    iss in its redirect; a client MUST reject a response whose iss is not its issuer (the
    defence against mix-up attacks). The server accepts the parameter, so it must check it."""
    assert idp.discovery().get("authorization_response_iss_parameter_supported") is True
    srv = sso_server(make_server, idp)
    auth_url, cookie = start_login(srv)
    back = idp.login(auth_url, "guest1")
    assert query_of(back)["iss"] == idp.issuer, back
    r = callback(srv, with_query(back, iss="https://evil.example"), cookie)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert no_session_cookies(r), r.headers
    # The refusal happened before the code was spent.
    r = callback(srv, back, cookie)
    assert r.status_code == 200, r.text


def test_a_login_started_before_a_restart_finishes_after_it(make_server, idp):
    """The login state is in the MAC'd cookie (key from the auth secret in the data dir),
    so a restarted server finishes a login it started; a login cookie another server made
    (another secret) is refused."""
    srv = sso_server(make_server, idp)
    auth_url, cookie = start_login(srv)
    rc = srv.stop()
    assert rc == 0, "".join(srv.logs[-80:])
    srv.start(timeout=60)
    back = idp.login(auth_url, "staff1")
    r = callback(srv, back, cookie)
    assert r.status_code == 200, r.text
    assert r.headers.get("Cache-Control") == "no-store", r.headers
    assert whoami(srv, r.json()["access_token"])["role"] == "staff"

    other = sso_server(make_server, idp)
    idp.set_redirect_uris([srv.base + "/auth/callback", other.base + "/auth/callback"])
    auth_url, cookie = start_login(srv)
    back = idp.login(auth_url, "guest1")
    problem(callback(other, back, cookie), 400)


def test_concurrent_sso_logins(make_server, idp):
    srv = sso_server(make_server, idp)
    users = ["guest1", "guest2", "staff1", "manager1", "admin1", "guest1", "staff1", "guest2"]
    starts = [start_login(srv) for _ in users]
    backs = [idp.login(a, u) for (a, _), u in zip(starts, users)]
    results = [None] * len(users)

    def finish(i):
        results[i] = callback(srv, backs[i], starts[i][1])

    threads = [threading.Thread(target=finish, args=(i,)) for i in range(len(users))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(r is not None and r.status_code == 200 for r in results), \
        [(r.status_code, r.text) if r is not None else None for r in results]
    mine = [whoami(srv, r.json()["access_token"]) for r in results]
    assert len({m["sid"] for m in mine}) == len(users)
    by_user = {}
    for u, m in zip(users, mine):
        by_user.setdefault(u, set()).add(m["sub"])
    assert all(len(subs) == 1 for subs in by_user.values()), by_user
    assert len(set().union(*by_user.values())) == 5, by_user


def test_idp_error_redirect_is_a_401_naming_the_error(make_server, idp):
    srv = sso_server(make_server, idp)
    auth_url, cookie = start_login(srv)
    back = idp.deny(auth_url)
    assert query_of(back)["error"] == "access_denied", back
    r = callback(srv, back, cookie)
    body = problem(r, 401)
    assert "access_denied" in body["detail"], body
    assert no_session_cookies(r), r.headers


def test_return_to_stays_on_this_site(make_server, idp):
    srv = sso_server(make_server, idp)
    for bad in ("//evil.example", "//evil.example/x", "https://evil.example/x", "/\\evil",
                "/\\/evil.example", "\\\\evil.example", "http:evil.example",
                "javascript:alert(1)", "/\t/evil.example", " //evil.example",
                srv.base + "@evil.example/", srv.base + ".evil.example/",
                "https" + srv.base[4:] + "/x"):
        r = req(srv, "GET", "/auth/login?" + urlencode({"return_to": bad}))
        problem(r, 400)
        assert "Location" not in r.headers, (bad, r.headers)
        assert "rsd_oidc" not in set_cookies(r), (bad, r.headers)

    for good in ("/v1/resorts", srv.base + "/v1/resorts?limit=1"):
        auth_url, cookie = start_login(srv, return_to=good)
        r = callback(srv, idp.login(auth_url, "guest1"), cookie)
        assert r.status_code == 303, r.text
        assert r.headers["Location"] == good, r.headers
        c = set_cookies(r)
        assert c["rsd_session"][0] and c["rsd_csrf"][0], r.headers
        me = req(srv, "GET", "/auth/session",
                 headers={"Cookie": f"rsd_session={c['rsd_session'][0]}"})
        assert me.status_code == 200 and me.json()["role"] == "guest", me.text


# ---------------------------------------------------------------- cookie session

def test_sso_cookie_session_needs_csrf_for_unsafe_methods(make_server, idp):
    srv = sso_server(make_server, idp)
    body, cookies = sso_login(srv, idp, "guest1")
    value, attrs = cookies["rsd_session"]
    csrf = cookies["rsd_csrf"][0]
    assert {"HttpOnly", "Secure", "Path=/"} <= set(attrs), attrs
    assert csrf == body["csrf_token"]
    jar = {"Cookie": f"rsd_session={value}"}

    r = req(srv, "GET", "/auth/session", headers=jar)
    assert r.status_code == 200, r.text
    assert r.json()["sub"] == whoami(srv, body["access_token"])["sub"]

    problem(req(srv, "POST", "/auth/logout", headers=jar), 403)
    problem(req(srv, "POST", "/auth/logout", headers={**jar, "X-CSRF-Token": csrf[:-1] + "x"}),
            403)
    assert req(srv, "GET", "/auth/session", headers=jar).status_code == 200
    r = req(srv, "POST", "/auth/logout", headers={**jar, "X-CSRF-Token": csrf})
    assert r.status_code == 204, r.text
    problem(req(srv, "GET", "/auth/session", headers=jar), 401)
    problem(req(srv, "GET", "/auth/session", body["access_token"]), 401)


# ---------------------------------------------------------------- the IdP's keys and outages

def test_sso_survives_an_idp_key_rotation(make_server, idp):
    srv = sso_server(make_server, idp)

    def fetches():
        return sum("IdP keys fetched" in line for line in list(srv.logs))

    first, _ = sso_login(srv, idp, "staff1")
    assert fetches() == 1, srv.logs[-20:]
    sso_login(srv, idp, "guest1")  # a known kid: the cached keys do
    assert fetches() == 1, srv.logs[-20:]

    old = {k["kid"] for k in idp.jwks()["keys"]}
    kid = idp.rotate_keys()
    assert kid not in old
    body, _ = sso_login(srv, idp, "staff1")
    assert whoami(srv, body["access_token"])["sub"] == whoami(srv, first["access_token"])["sub"]
    assert fetches() == 2, srv.logs[-20:]
    # A second rotation right away: an unknown kid refetches at most every
    # OIDC_JWKS_REFETCH_S (2 s); the login waits for its turn and then finds the new key.
    idp.rotate_keys()
    sso_login(srv, idp, "admin1")
    assert fetches() == 3, srv.logs[-20:]


def test_idp_outage_keeps_local_sessions_and_fails_sso_clearly(make_server, tmp_path):
    op = OidcProvider(tmp_path / "idp-outage")
    op.start()
    try:
        data = tmp_path / "outage-data"
        data.mkdir()
        p = subprocess.run([BIN, "user", "add", "alice", "--role", "staff", "--password-stdin",
                            "--data-dir", str(data), *ITER], input=PW + "\n",
                           capture_output=True, text=True, timeout=60,
                           env={k: v for k, v in os.environ.items()
                                if not k.startswith("RESORTD_")})
        assert p.returncode == 0, p.stderr
        srv = sso_server(make_server, op, data_dir=data)

        tokens, _ = sso_login(srv, op, "staff1")
        # A login that reached the IdP but comes back only once it is down.
        pending_auth, pending_cookie = start_login(srv)
        pending_back = op.login(pending_auth, "guest1")

        op.stop()
        # Local sessions carry on: the access token, its refresh, a password sign-in.
        assert whoami(srv, tokens["access_token"])["role"] == "staff"
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        r = req(srv, "POST", "/auth/token", headers=form,
                data=urlencode({"grant_type": "refresh_token",
                                "refresh_token": tokens["refresh_token"]}))
        assert r.status_code == 200, r.text
        refreshed = r.json()
        assert whoami(srv, refreshed["access_token"])["sub"] == \
            whoami(srv, tokens["access_token"])["sub"]
        r = req(srv, "POST", "/auth/token", headers=form,
                data=urlencode({"grant_type": "password", "username": "alice",
                                "password": PW}))
        assert r.status_code == 200, r.text
        assert whoami(srv, r.json()["access_token"])["sub"] == "staff:alice"

        # A new SSO sign-in fails, and says why: /auth/login may still redirect from the
        # cached discovery, but the code exchange cannot reach the IdP.
        r = req(srv, "GET", "/auth/login")
        if r.status_code == 302:
            r = callback(srv, pending_back, pending_cookie)
        body = problem(r, 502)
        assert "identity provider" in body["detail"], body
        assert no_session_cookies(r), r.headers

        # A server that has never seen the IdP cannot even build the login URL.
        cold = make_server(args=oidc_args(op))
        body = problem(req(cold, "GET", "/auth/login"), 502)
        assert "identity provider" in body["detail"], body

        op.start()
        after, _ = sso_login(srv, op, "guest1")
        assert whoami(srv, after["access_token"])["role"] == "guest"
    finally:
        op.close()


def test_idp_certificate_is_verified(make_server, idp, tmp_path):
    """An IdP whose certificate the configured CA did not sign is not talked to."""
    other_ca = tmp_path / "other-ca"
    other_ca.mkdir()
    make_tls_files(other_ca)
    args = oidc_args(idp)
    args[args.index("--oidc-ca-file") + 1] = str(other_ca / "ca.pem")
    srv = make_server(args=args)
    r = req(srv, "GET", "/auth/login")
    body = problem(r, 502)
    assert "identity provider" in body["detail"], body
    assert "Location" not in r.headers and "rsd_oidc" not in set_cookies(r), r.headers


def test_a_hung_idp_times_out_and_does_not_stall_the_server(make_server, idp):
    """The IdP accepts connections but never answers (its process is stopped): the sign-in
    fails with a 502 within the call timeout (5 s), other requests are served meanwhile,
    and sign-in works once the IdP answers again. No probe: /auth/login must be the first
    call to the IdP, so that it is the one that hangs."""
    srv = sso_server(make_server, idp, args=[*oidc_args(idp), "--oidc-probe-s", "0"])
    pid = idp.proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        out = {}

        def login_attempt():
            t0 = time.monotonic()
            try:
                out["r"] = req(srv, "GET", "/auth/login", timeout=60)
            except Exception as e:  # reported below
                out["error"] = e
            out["s"] = time.monotonic() - t0

        t = threading.Thread(target=login_attempt)
        t.start()
        time.sleep(0.5)
        t0 = time.monotonic()
        r = req(srv, "GET", "/healthz", timeout=10)
        assert r.status_code == 200 and time.monotonic() - t0 < 3, r.text
        t.join(60)
        assert "r" in out, out
        body = problem(out["r"], 502)
        assert "identity provider" in body["detail"], body
        assert out["s"] < 20, out
    finally:
        os.kill(pid, signal.SIGCONT)
    body, _ = sso_login(srv, idp, "guest1")
    assert whoami(srv, body["access_token"])["role"] == "guest"


def test_sso_not_configured_is_a_clear_404(make_server):
    srv = make_server(args=ITER)
    for path in ("/auth/login", "/auth/login?return_to=/v1/resorts",
                 "/auth/callback?code=x&state=y"):
        r = req(srv, "GET", path)
        body = problem(r, 404)
        assert "single sign-on is not configured" in body["detail"], body
        assert "Location" not in r.headers and not set_cookies(r), r.headers


# ---------------------------------------------------------------- the IdP's status

def idp_status(srv):
    """(/readyz's status code, its checks as an admin sees them, /metrics' resortd_idp_*
    lines as a dict)."""
    r = req(srv, "GET", "/readyz", headers=srv.headers)
    text = req(srv, "GET", "/metrics").text
    metrics = {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
               if line.startswith("resortd_idp_")}
    return r.status_code, r.json()["checks"], metrics


def wait_idp(srv, want, deadline_s=30):
    """Polls until /readyz's checks.idp is want; returns idp_status()."""
    end = time.time() + deadline_s
    while True:
        status = idp_status(srv)
        if status[1].get("idp") == want or time.time() > end:
            assert status[1].get("idp") == want, status
            return status
        time.sleep(0.2)


def test_readyz_and_metrics_follow_the_idp_probe(make_server, tmp_path):
    op = OidcProvider(tmp_path / "idp-probe")
    op.start()
    try:
        srv = make_server(args=[*oidc_args(op), "--oidc-probe-s", "1"])
        code, checks, metrics = wait_idp(srv, "reachable")  # the first probe runs at start
        assert code == 200 and "idp_error" not in checks, checks
        assert checks["idp_checked_at"].endswith("Z"), checks
        assert metrics["resortd_idp_up"] == 1 and metrics["resortd_idp_failures_total"] == 0
        assert metrics["resortd_idp_last_check_seconds"] >= time.time() - 60, metrics

        op.stop()  # no sign-in is attempted: only the probe notices
        code, checks, metrics = wait_idp(srv, "unreachable")
        assert code == 200, checks  # the IdP being down leaves the server ready
        assert "cannot be reached" in checks["idp_error"], checks
        anonymous = req(srv, "GET", "/readyz").json()["checks"]
        assert anonymous["idp"] == "unreachable" and "idp_error" not in anonymous, anonymous
        assert metrics["resortd_idp_up"] == 0 and metrics["resortd_idp_failures_total"] >= 1

        op.start()
        code, checks, metrics = wait_idp(srv, "reachable")
        assert code == 200 and "idp_error" not in checks, checks
        assert metrics["resortd_idp_up"] == 1, metrics
    finally:
        op.close()


def test_without_probes_a_sign_in_tells_the_idp_status(make_server, idp):
    srv = make_server(args=[*oidc_args(idp), "--oidc-probe-s", "0"])
    time.sleep(1.5)  # a probe (were there one) would have run at start
    code, checks, metrics = idp_status(srv)
    assert code == 200 and checks["idp"] == "unknown", checks
    assert "idp_checked_at" not in checks, checks
    assert "resortd_idp_up" not in metrics, metrics
    assert metrics["resortd_idp_last_check_seconds"] == 0, metrics
    assert req(srv, "GET", "/auth/login").status_code == 302  # fetches the discovery document
    code, checks, metrics = idp_status(srv)
    assert checks["idp"] == "reachable" and metrics["resortd_idp_up"] == 1, (checks, metrics)


def test_no_idp_no_idp_status(make_server):
    srv = make_server(args=ITER)
    code, checks, metrics = idp_status(srv)
    assert code == 200 and "idp" not in checks and metrics == {}, (checks, metrics)


# ---------------------------------------------------------------- private_key_jwt

def test_private_key_jwt_signs_in_without_a_secret(make_server, idp):
    args = oidc_args(idp)
    i = args.index("--oidc-client-secret")
    del args[i:i + 2]
    srv = sso_server(make_server, idp, args=[*args, "--oidc-client-auth", "private_key_jwt"])
    # The IdP knows resortd's keys only through resortd's own JWKS.
    idp.set_client_auth("private_key_jwt", srv.base + "/.well-known/jwks.json")
    try:
        tokens, _ = sso_login(srv, idp, "staff1")
        assert whoami(srv, tokens["access_token"])["role"] == "staff"
        assert any("client auth: private_key_jwt" in line for line in idp.logs), idp.logs[-5:]

        # Right after a rotation (the IdP has our old JWKS cached for 60 s and refetches no
        # sooner, even for an unknown kid) sign-in still works: the assertion is signed with
        # the previous key, while access tokens already carry the new one.
        old_kid = jwt_header(tokens["access_token"])["kid"]
        p = srv.cli("keys", "rotate")
        assert p.returncode == 0, p.stderr
        time.sleep(1.5)  # the server looks for a new current key every second
        tokens, _ = sso_login(srv, idp, "guest1")
        assert whoami(srv, tokens["access_token"])["role"] == "guest"
        new_kid = jwt_header(tokens["access_token"])["kid"]
        assert new_kid != old_kid
        published = [k["kid"] for k in req(srv, "GET", "/.well-known/jwks.json").json()["keys"]]
        assert {old_kid, new_kid} <= set(published), published

        # A server that sends the client secret instead is refused by this IdP, and says why.
        basic = sso_server(make_server, idp)
        auth_url, cookie = start_login(basic)
        r = callback(basic, idp.login(auth_url, "guest1"), cookie)
        body = problem(r, 502)
        assert "client credentials" in body["detail"], body
        assert no_session_cookies(r), r.headers
    finally:
        idp.set_client_auth("client_secret_basic")


def test_client_auth_settings_are_checked(make_server, idp, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESORTD_")}
    p = subprocess.run([BIN, "check", "--oidc-client-auth", "client_secret_jwt"],
                       capture_output=True, text=True, timeout=30, cwd=tmp_path, env=env)
    assert p.returncode == 2, p.stderr
    assert "oidc_client_auth" in p.stderr and "private_key_jwt" in p.stderr, p.stderr
    args = oidc_args(idp)
    i = args.index("--oidc-client-secret")
    del args[i:i + 2]
    p = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir",
                        str(tmp_path / "data"), *args],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert p.returncode == 2, p.stderr
    assert "needs oidc_client_secret" in p.stderr, p.stderr


# ---------------------------------------------------------------- the IdP checked again

def wait_for(fetch, done, deadline_s=20):
    """fetch() until done(value) or the deadline; returns the last value."""
    end = time.time() + deadline_s
    while True:
        value = fetch()
        if done(value) or time.time() > end:
            return value
        time.sleep(0.2)


def test_sso_sessions_follow_the_idp(make_server, tmp_path):
    """With oidc_recheck_s each SSO session's sign-in is asked about again with the IdP's
    refresh token: group changes reach the live session (its refresh answers with the new
    role, no new login), a grant the IdP ended revokes a staff session and only stops the
    checks of a guest's, and an IdP that is down changes nothing.
    A provider of its own: the test changes its accounts."""
    op = OidcProvider(tmp_path / "idp-recheck")
    op.start()
    try:
        srv = sso_server(make_server, op, args=[*oidc_args(op), "--oidc-recheck-s", "1"])
        staff, _ = sso_login(srv, op, "staff1")
        guest, _ = sso_login(srv, op, "guest1")
        manager, _ = sso_login(srv, op, "manager1")
        assert whoami(srv, staff["access_token"])["role"] == "staff"
        s = op.session()

        def account(**claims):
            r = s.post(op.url("/__test/account"), json={"account": "staff1", **claims},
                       timeout=10)
            assert r.status_code == 200, r.text

        def me(tokens):
            return req(srv, "GET", "/auth/session", tokens["access_token"])

        form = {"Content-Type": "application/x-www-form-urlencoded"}

        def refresh(tokens):
            r = req(srv, "POST", "/auth/token", headers=form,
                    data=urlencode({"grant_type": "refresh_token",
                                    "refresh_token": tokens["refresh_token"]}))
            assert r.status_code == 200, r.text
            return r.json()

        # Promoted at the IdP, to another resort: the session follows. An access token made
        # before says "staff" of rs_demo, so it is refused until refreshed; the refresh
        # answers with the new role, without signing in again.
        account(groups=["resort-managers"], resort="rs_other")
        r = wait_for(lambda: me(staff), lambda r: r.status_code == 401)
        assert "refresh" in problem(r, 401)["detail"], r.text
        staff = refresh(staff)
        assert jwt_claims(staff["access_token"])["roles"] == ["manager"]
        got = whoami(srv, staff["access_token"])
        assert got["role"] == "manager" and got["resort"] == "rs_other", got
        body = {"name": "Managed Lodge"}
        h = {"Content-Type": "application/json"}
        problem(req(srv, "POST", "/v1/resorts", staff["access_token"], h,
                    data=json.dumps(body)), 403)  # a manager still is no admin
        # Renamed only: the access token still speaks for the session.
        account(name="Staff One Renamed")
        time.sleep(2.5)
        assert whoami(srv, staff["access_token"])["role"] == "manager"
        # Out of every group: a guest, without signing in again.
        account(groups=[])
        r = wait_for(lambda: me(staff), lambda r: r.status_code == 401)
        problem(r, 401)
        staff = refresh(staff)
        got = whoami(srv, staff["access_token"])
        assert got["role"] == "guest" and not got.get("resort"), got
        assert got["name"] == "Staff One Renamed", got
        problem(req(srv, "GET", "/v1/inventory/pr_x?from=2030-01-01&to=2030-01-02",
                    staff["access_token"]), 403)
        assert whoami(srv, guest["access_token"])["role"] == "guest"  # untouched

        # The IdP ends manager1's grants: staff sessions end with them (the user disabled or
        # signed out there); its refresh token is refused; other sessions are untouched.
        r = s.post(op.url("/__test/revoke"), json={"account": "manager1"}, timeout=10)
        assert r.status_code == 200 and r.json()["revoked"] > 0, r.text
        r = wait_for(lambda: me(manager), lambda r: r.status_code == 401)
        problem(r, 401)
        r = req(srv, "POST", "/auth/token", headers=form,
                data=urlencode({"grant_type": "refresh_token",
                                "refresh_token": manager["refresh_token"]}))
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
        assert any("revoked" in line and "idp recheck" in line for line in srv.logs), \
            srv.logs[-5:]
        assert whoami(srv, guest["access_token"])["role"] == "guest"

        # The IdP ends staff1's grant, now a guest's: a guest's session is not ended for it
        # (a guest's sign-in running out at the IdP is no reason to sign the booking app
        # out), it is only no longer asked about.
        r = s.post(op.url("/__test/revoke"), json={"account": "staff1"}, timeout=10)
        assert r.status_code == 200 and r.json()["revoked"] > 0, r.text
        wait_for(lambda: sum("no longer checked" in line for line in srv.logs),
                 lambda n: n >= 1)
        assert any("no longer checked" in line for line in srv.logs), srv.logs[-5:]
        time.sleep(1.5)
        assert whoami(srv, staff["access_token"])["role"] == "guest"

        # The IdP down: rounds come and go, guest1's session (still checked) keeps working.
        op.stop()
        wait_for(lambda: sum("not checked" in line for line in srv.logs), lambda n: n >= 2)
        assert sum("not checked" in line for line in srv.logs) >= 2, srv.logs[-5:]
        assert whoami(srv, guest["access_token"])["role"] == "guest"
        assert whoami(srv, staff["access_token"])["role"] == "guest"

        # /metrics counts what the checks came to.
        text = req(srv, "GET", "/metrics").text
        counts = {o: float(line.split()[-1]) for o in ("confirmed", "revoked", "dropped", "failed")
                  for line in text.splitlines()
                  if line.startswith(f'resortd_idp_rechecks_total{{outcome="{o}"}}')}
        assert counts["confirmed"] >= 3 and counts["revoked"] == 1, counts
        assert counts["dropped"] == 1 and counts["failed"] >= 2, counts
        assert "resortd_idp_recheck_bad_id_tokens_total 0" in text.splitlines(), text
    finally:
        op.close()
