"""Sign-in over HTTP against the real server: the token endpoint (password and refresh
grants), throttling, logout, an admin's revocation, role checks in the router, attacks on
the access tokens, cookie sessions with CSRF, and the `user`/`keys` commands used beside a
running server.

Every server here gets its users from the CLI before it starts (a fresh data dir per
server), and both the CLI and the server hash with 1000 PBKDF2 iterations. Requests go
through `requests` directly with explicit headers (never a shared session), so each one is
a new connection and the two workers both see the tokens.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import threading
import time
from datetime import date, timedelta
from urllib.parse import urlencode

import pytest
import requests

from apihelp import head_seq, problem
from conftest import BIN

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (decode_dss_signature,
                                                             encode_dss_signature)

# ---------------------------------------------------------------- shared helpers

ITER = ["--password-iterations", "1000"]
PW = "correct horse 1"
PW2 = "battery staple 2"
CHALLENGE = 'Bearer realm="resortd"'
B64URL = re.compile(r"^[A-Za-z0-9_-]+$")


def cli_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESORTD_")}
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    return env


def cli(data_dir, *args, password=None):
    """Runs `resortd ARGS --data-dir DIR --password-iterations 1000` with password (and a
    line end) on standard input."""
    return subprocess.run([BIN, *args, "--data-dir", str(data_dir), *ITER],
                          input="" if password is None else password + "\n",
                          capture_output=True, text=True, env=cli_env(), timeout=60)


def add_user(data_dir, name, role, password=PW, resort=None):
    args = ["user", "add", name, "--role", role, "--password-stdin"]
    if resort:
        args += ["--resort", resort]
    p = cli(data_dir, *args, password=password)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"user {name}: added ({role}"), p.stdout


STAFF = [("alice", "staff"), ("bob", "staff"), ("mia", "manager"), ("root", "admin")]


@pytest.fixture
def auth_server(make_server, tmp_path):
    """Factory: auth_server(users=[(name, role[, password[, resort]])], args=[...]) adds the
    users with the CLI to a fresh data dir, then starts a server on it. The server gets
    .data_dir (the directory) for later CLI calls."""
    count = [0]

    def factory(users=STAFF, args=()):
        d = tmp_path / f"auth{count[0]}"
        count[0] += 1
        d.mkdir()
        for u in users:
            add_user(d, *u)
        # The suite's default is a 1 h token; these tests check the real default, 5 min.
        return make_server(args=[*ITER, "--access-ttl-s", "300", *args], data_dir=d)

    return factory


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64e(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt_parts(token):
    h, p, s = token.split(".")
    return json.loads(b64d(h)), json.loads(b64d(p)), s


def jwt_make(header, payload, sig=b""):
    h = b64e(json.dumps(header, separators=(",", ":")).encode())
    p = b64e(json.dumps(payload, separators=(",", ":")).encode())
    return f"{h}.{p}.{b64e(sig)}"


def req(srv, method, path, token=None, headers=None, **kw):
    """One request on a new connection; token: sent as Bearer."""
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = "Bearer " + token
    kw.setdefault("timeout", 20)
    return requests.request(method, srv.url(path), headers=h, **kw)


def get(srv, path, token=None, headers=None, **kw):
    return req(srv, "GET", path, token, headers, **kw)


def post_json(srv, path, body, token=None, headers=None):
    h = {"Content-Type": "application/json", **(headers or {})}
    return req(srv, "POST", path, token, h, data=json.dumps(body))


def token_req(srv, headers=None, **form):
    """POST /auth/token with a form body (always typed, even when empty)."""
    h = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
    return req(srv, "POST", "/auth/token", headers=h, data=urlencode(form))


def login_resp(srv, user, password=PW, **extra):
    return token_req(srv, grant_type="password", username=user, password=password, **extra)


def login(srv, user, password=PW, **extra):
    r = login_resp(srv, user, password, **extra)
    assert r.status_code == 200, r.text
    return r.json()


def refresh(srv, refresh_token):
    return token_req(srv, grant_type="refresh_token", refresh_token=refresh_token)


def oauth_error(r, status, error):
    """Asserts r is a problem document that also carries OAuth's error."""
    body = problem(r, status)
    assert body["error"] == error, body
    assert body["error_description"], body
    assert r.headers.get("Cache-Control") == "no-store"
    return body


def invalid_token(r):
    """Asserts a 401 for bad credentials, with the RFC 6750 challenge naming the error."""
    body = problem(r, 401)
    assert r.headers.get("WWW-Authenticate") == CHALLENGE + ', error="invalid_token"', \
        r.headers
    return body


def whoami(srv, token):
    return get(srv, "/auth/session", token)


def works(srv, token, times=3):
    """True when token is accepted on GET /auth/session on times new connections (so that
    both workers, and their caches of verified tokens, are asked)."""
    return all(whoami(srv, token).status_code == 200 for _ in range(times))


def assert_rejected(srv, token, times=3):
    for _ in range(times):
        invalid_token(whoami(srv, token))


def jwks(srv):
    r = get(srv, "/.well-known/jwks.json")
    assert r.status_code == 200, r.text
    return r.json()


def jwk_public_key(jwk):
    x = int.from_bytes(b64d(jwk["x"]), "big")
    y = int.from_bytes(b64d(jwk["y"]), "big")
    return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()


def es256_verify(token, jwk):
    """Checks token's ES256 signature with jwk client-side; raises InvalidSignature."""
    h, p, s = token.split(".")
    raw = b64d(s)
    assert len(raw) == 64
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    jwk_public_key(jwk).verify(der, f"{h}.{p}".encode(), ec.ECDSA(hashes.SHA256()))


def es256_sign(private_key, header, payload):
    h = b64e(json.dumps(header, separators=(",", ":")).encode())
    p = b64e(json.dumps(payload, separators=(",", ":")).encode())
    der = private_key.sign(f"{h}.{p}".encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return f"{h}.{p}.{b64e(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def set_cookies(r):
    """{name: (value, [attributes])} of r's Set-Cookie lines."""
    out = {}
    for line in r.raw.headers.getlist("Set-Cookie"):
        parts = [p.strip() for p in line.split(";")]
        name, _, value = parts[0].partition("=")
        out[name] = (value, parts[1:])
    return out


def cookie_login(srv, user, password=PW):
    """A password grant with session=cookie; returns (body, cookie value, csrf)."""
    r = login_resp(srv, user, password, session="cookie")
    assert r.status_code == 200, r.text
    cookies = set_cookies(r)
    return r.json(), cookies["rsd_session"][0], cookies["rsd_csrf"][0]


def with_cookie(value, csrf=None):
    h = {"Cookie": f"rsd_session={value}"}
    if csrf is not None:
        h["X-CSRF-Token"] = csrf
    return h


def revoke(srv, admin_token, body):
    return post_json(srv, "/auth/revoke", body, admin_token)


# ---------------------------------------------------------------- password grant


def test_password_grant_issues_an_es256_token_the_jwks_verifies(auth_server):
    srv = auth_server(users=STAFF + [("kim", "manager", PW, "r_lake")],
                      args=["--public-url", "https://desk.example.test"])
    before = time.time()
    r = login_resp(srv, "alice")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in r.headers  # cookies only when asked for
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert len(body["refresh_token"]) == 43 and B64URL.match(body["refresh_token"])

    header, claims, sig = jwt_parts(body["access_token"])
    assert header["alg"] == "ES256"
    keys = {k["kid"]: k for k in jwks(srv)["keys"]}
    assert header["kid"] in keys
    key = keys[header["kid"]]
    assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("EC", "P-256", "ES256", "sig")
    assert "d" not in key  # never the private part
    es256_verify(body["access_token"], key)  # the published key really verifies it

    assert claims["iss"] == "https://desk.example.test"
    assert claims["aud"] == "resortd"
    assert claims["sub"] == "staff:alice"
    assert claims["roles"] == ["staff"]
    assert claims["name"] == "alice"
    assert "resort" not in claims
    assert len(claims["sid"]) == 22 and B64URL.match(claims["sid"])
    assert claims["exp"] - claims["iat"] == body["expires_in"]
    assert before - 2 <= claims["iat"] <= time.time() + 2

    r = whoami(srv, body["access_token"])
    assert r.status_code == 200, r.text
    assert r.headers["Cache-Control"] == "no-store"
    assert r.json() == {"sub": "staff:alice", "sid": claims["sid"], "role": "staff",
                        "name": "alice"}

    # A resort-bound manager: the resort is in the token and in the session.
    kim = login(srv, "kim")
    _, kc, _ = jwt_parts(kim["access_token"])
    assert kc["roles"] == ["manager"] and kc["resort"] == "r_lake"
    assert kc["sid"] != claims["sid"]
    assert whoami(srv, kim["access_token"]).json() == {
        "sub": "staff:kim", "sid": kc["sid"], "role": "manager", "resort": "r_lake",
        "name": "kim"}

    # The key document itself: cacheable briefly, only public EC keys.
    r = get(srv, "/.well-known/jwks.json")
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["Cache-Control"] == "public, max-age=60"


def test_default_issuer_is_the_listen_address(auth_server):
    srv = auth_server(users=[("alice", "staff")])
    _, claims, _ = jwt_parts(login(srv, "alice")["access_token"])
    assert claims["iss"].startswith("http://127.0.0.1:")
    assert claims["aud"] == "resortd"


def test_password_with_form_special_characters(auth_server):
    pw = "pä ss+&=wörd %20"
    srv = auth_server(users=[("carol", "staff", pw)])
    assert login(srv, "carol", pw)["token_type"] == "Bearer"
    oauth_error(login_resp(srv, "carol", "pä ss &=wörd %20"), 400, "invalid_grant")


def test_wrong_password_unknown_and_disabled_users_get_one_answer(auth_server):
    srv = auth_server(users=[("alice", "staff"), ("dora", "staff")])
    p = cli(srv.data_dir, "user", "disable", "dora")
    assert p.returncode == 0, p.stderr
    answers = [login_resp(srv, "alice", "wrong password"),
               login_resp(srv, "nobody", PW),
               login_resp(srv, "dora", PW),
               login_resp(srv, "alice", ""),
               login_resp(srv, "Alice", PW)]  # names are not case-folded
    bodies = [oauth_error(r, 400, "invalid_grant") for r in answers]
    assert all(b == bodies[0] for b in bodies), bodies
    assert bodies[0]["detail"] == bodies[0]["error_description"]
    shapes = [(r.status_code, r.headers["Content-Type"], r.headers["Cache-Control"],
               "WWW-Authenticate" in r.headers, "Retry-After" in r.headers) for r in answers]
    assert len(set(shapes)) == 1, shapes


MALFORMED = [
    ({}, "invalid_request"),
    ({"username": "alice", "password": PW}, "invalid_request"),  # no grant_type
    ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
    ({"grant_type": "authorization_code", "code": "x"}, "unsupported_grant_type"),
    ({"grant_type": "PASSWORD", "username": "alice", "password": PW},
     "unsupported_grant_type"),
    ({"grant_type": "password", "password": PW}, "invalid_request"),
    ({"grant_type": "password", "username": "", "password": PW}, "invalid_request"),
    ({"grant_type": "password", "username": "alice"}, "invalid_request"),
    ({"grant_type": "password", "username": "a" * 33, "password": PW}, "invalid_request"),
    ({"grant_type": "password", "username": "alice", "password": "p" * 1025},
     "invalid_request"),
    ({"grant_type": "password", "username": "alice", "password": PW, "session": "jwt"},
     "invalid_request"),
    ({"grant_type": "refresh_token"}, "invalid_request"),
]


def test_malformed_token_requests(auth_server):
    srv = auth_server(users=[("alice", "staff")])
    seq = head_seq(srv)
    for form, error in MALFORMED:
        oauth_error(token_req(srv, **form), 400, error)
    for form, error in MALFORMED:  # twice: more than the 5 failures that would throttle
        oauth_error(token_req(srv, **form), 400, error)
    assert head_seq(srv) == seq  # not even an audit event: nothing was tried
    assert login(srv, "alice")["token_type"] == "Bearer"  # and nothing was throttled


def test_repeated_parameter_is_invalid_request(auth_server):
    """RFC 6749 3.1 and 5.2: parameters must not repeat; a repeat is invalid_request
    (otherwise a proxy and the server may read different values)."""
    srv = auth_server(users=[("alice", "staff"), ("root", "admin")])
    r = req(srv, "POST", "/auth/token",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            data=f"grant_type=password&username=alice&username=root&password={PW}")
    if r.status_code == 200:
        sub = jwt_parts(r.json()["access_token"])[1]["sub"]
        pytest.fail(f"a repeated username was accepted: signed in as {sub}")
    oauth_error(r, 400, "invalid_request")


def test_token_endpoint_content_types(auth_server):
    srv = auth_server(users=[("alice", "staff")])
    form = f"grant_type=password&username=alice&password={PW.replace(' ', '+')}"
    for ct in ("application/json", "text/plain", "multipart/form-data; boundary=x",
               "application/x-www-form-urlencodedX"):
        r = req(srv, "POST", "/auth/token", headers={"Content-Type": ct}, data=form)
        problem(r, 415)
    r = req(srv, "POST", "/auth/token", data=form.encode())  # no Content-Type at all
    assert "Content-Type" not in r.request.headers
    problem(r, 415)
    # The same credentials as JSON, with the JSON type and with the form type.
    doc = json.dumps({"grant_type": "password", "username": "alice", "password": PW})
    problem(req(srv, "POST", "/auth/token", headers={"Content-Type": "application/json"},
                data=doc), 415)
    oauth_error(req(srv, "POST", "/auth/token",
                    headers={"Content-Type": "application/x-www-form-urlencoded"}, data=doc),
                400, "invalid_request")
    # Credentials in the query string are not read.
    r = req(srv, "POST", "/auth/token?" + form,
            headers={"Content-Type": "application/x-www-form-urlencoded"}, data="")
    oauth_error(r, 400, "invalid_request")
    # A charset parameter is fine; GET is not allowed.
    r = req(srv, "POST", "/auth/token",
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"},
            data=form)
    assert r.status_code == 200, r.text
    r = get(srv, "/auth/token")
    problem(r, 405)
    assert "POST" in r.headers["Allow"]


def test_failed_logins_leave_only_an_audit_trail(auth_server):
    srv = auth_server(users=[("alice", "staff"), ("root", "admin")])
    seq = head_seq(srv)
    for user, pw in (("alice", "wrong password"), ("alice", PW2), ("ghost", PW)):
        oauth_error(login_resp(srv, user, pw), 400, "invalid_grant")
    # One audit event per failed attempt, nothing else.
    assert head_seq(srv) == seq + 3
    # No session came of them: a made-up token is refused, and alice has no sessions.
    fake = jwt_make({"alg": "ES256", "typ": "JWT", "kid": "nope"},
                    {"sub": "staff:alice", "sid": "A" * 22, "roles": ["staff"]}, b"\0" * 64)
    invalid_token(whoami(srv, fake))
    admin = login(srv, "root")["access_token"]
    r = revoke(srv, admin, {"sub": "staff:alice"})
    assert r.status_code == 200, r.text
    assert r.json() == {"revoked": 0}
    r = revoke(srv, admin, {"sub": "staff:ghost"})
    assert r.json() == {"revoked": 0}


# ---------------------------------------------------------------- throttling


def test_throttling_per_user_then_per_address(auth_server):
    srv = auth_server(users=[("alice", "staff"), ("bob", "staff")])
    for _ in range(5):
        oauth_error(login_resp(srv, "alice", "wrong password"), 400, "invalid_grant")
    seq = head_seq(srv)
    # The sixth attempt is refused before the password is looked at, even the right one.
    for pw in (PW, "wrong password"):
        r = login_resp(srv, "alice", pw)
        oauth_error(r, 429, "slow_down")
        assert 0 < int(r.headers["Retry-After"]) <= 900
    assert head_seq(srv) == seq  # a refused attempt is not a failed login
    # Another user from the same address is not locked out with alice...
    bob = login(srv, "bob")
    # ...until the address has failed 20 times in all (5 so far).
    for i in range(14):  # a forwarding header does not make another address
        r = token_req(srv, headers={"X-Forwarded-For": f"203.0.113.{i}",
                                    "Forwarded": f"for=203.0.113.{i}"},
                      grant_type="password", username=f"guess{i}", password=PW)
        oauth_error(r, 400, "invalid_grant")
    assert login(srv, "bob")["token_type"] == "Bearer"  # 19 failures: still allowed
    oauth_error(login_resp(srv, "guess14", PW), 400, "invalid_grant")  # the 20th
    for user in ("bob", "someone"):
        r = login_resp(srv, user, PW)
        oauth_error(r, 429, "slow_down")
        assert 0 < int(r.headers["Retry-After"]) <= 900
    # Refreshing is not signing in: the session bob already has goes on.
    assert refresh(srv, bob["refresh_token"]).status_code == 200


# ---------------------------------------------------------------- refresh


def test_refresh_rotates_and_replays_within_the_grace(auth_server):
    srv = auth_server(users=[("alice", "staff")])
    first = login(srv, "alice")
    _, c0, _ = jwt_parts(first["access_token"])
    r = refresh(srv, first["refresh_token"])
    assert r.status_code == 200, r.text
    assert r.headers["Cache-Control"] == "no-store"
    second = r.json()
    assert set(second) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert second["token_type"] == "Bearer" and second["expires_in"] == 300
    assert second["refresh_token"] != first["refresh_token"]
    assert len(second["refresh_token"]) == 43
    _, c1, _ = jwt_parts(second["access_token"])
    assert (c1["sid"], c1["sub"], c1["roles"]) == (c0["sid"], c0["sub"], c0["roles"])
    assert works(srv, second["access_token"])
    assert works(srv, first["access_token"])  # the old access token lives until its exp

    # The same refresh token again within 30 s: the very same pair (a lost answer).
    for _ in range(2):
        r = refresh(srv, first["refresh_token"])
        assert r.status_code == 200, r.text
        again = r.json()
        assert again["access_token"] == second["access_token"]
        assert again["refresh_token"] == second["refresh_token"]

    # The successor rotates on; then the first token is stale: the family is revoked.
    third = refresh(srv, second["refresh_token"]).json()
    assert third["refresh_token"] not in (first["refresh_token"], second["refresh_token"])
    assert works(srv, third["access_token"])
    body = oauth_error(refresh(srv, first["refresh_token"]), 400, "invalid_grant")
    assert "revoked" in body["detail"]
    assert_rejected(srv, third["access_token"])
    oauth_error(refresh(srv, third["refresh_token"]), 400, "invalid_grant")


def test_refresh_reuse_after_the_grace_revokes_the_session(auth_server):
    srv = auth_server(users=[("alice", "staff")], args=["--refresh-grace-s", "1"])
    other = login(srv, "alice")  # another session of the same user
    first = login(srv, "alice")
    second = refresh(srv, first["refresh_token"]).json()
    assert works(srv, second["access_token"])
    time.sleep(1.5)
    seq = head_seq(srv)
    body = oauth_error(refresh(srv, first["refresh_token"]), 400, "invalid_grant")
    assert "revoked" in body["detail"]
    assert head_seq(srv) > seq  # the reuse is in the audit trail
    assert_rejected(srv, second["access_token"])
    assert_rejected(srv, first["access_token"])
    oauth_error(refresh(srv, second["refresh_token"]), 400, "invalid_grant")
    oauth_error(refresh(srv, first["refresh_token"]), 400, "invalid_grant")
    # Only that family: the user's other session goes on.
    assert works(srv, other["access_token"])
    assert refresh(srv, other["refresh_token"]).status_code == 200


def test_concurrent_refreshes_get_the_same_pair(auth_server):
    srv = auth_server(users=[("alice", "staff")])
    for _ in range(3):
        t = login(srv, "alice")
        n = 4
        barrier = threading.Barrier(n)
        results = [None] * n

        def go(i, token=t["refresh_token"]):
            barrier.wait()
            results[i] = refresh(srv, token)

        threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(30)
        assert all(r is not None and r.status_code == 200 for r in results), \
            [r.text if r is not None else None for r in results]
        pairs = {(r.json()["access_token"], r.json()["refresh_token"]) for r in results}
        assert len(pairs) == 1, pairs
        access, nxt = pairs.pop()
        assert works(srv, access)
        assert refresh(srv, nxt).status_code == 200  # the one successor is current


def test_bad_refresh_tokens(auth_server):
    srv = auth_server(users=[("alice", "staff")])
    t = login(srv, "alice")
    for bad in ("", "short", t["refresh_token"][:-1], t["refresh_token"] + "A",
                "A" * 43, t["access_token"]):
        oauth_error(refresh(srv, bad), 400, "invalid_grant")
    # None of that hurt the real one.
    assert refresh(srv, t["refresh_token"]).status_code == 200
    # A refresh token is not an access token.
    invalid_token(whoami(srv, t["refresh_token"]))


# ---------------------------------------------------------------- logout and revocation


def test_logout_this_session_then_everywhere(auth_server):
    srv = auth_server(users=[("alice", "staff"), ("bob", "staff")])
    s1, s2, s3, s4 = (login(srv, "alice") for _ in range(4))
    b = login(srv, "bob")
    r = req(srv, "POST", "/auth/logout?all=false", s4["access_token"])
    assert r.status_code == 204, r.text
    assert_rejected(srv, s4["access_token"])
    r = req(srv, "POST", "/auth/logout", s1["access_token"])
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert_rejected(srv, s1["access_token"])
    oauth_error(refresh(srv, s1["refresh_token"]), 400, "invalid_grant")
    assert works(srv, s2["access_token"]) and works(srv, s3["access_token"])
    invalid_token(req(srv, "POST", "/auth/logout", s1["access_token"]))  # once only

    problem(req(srv, "POST", "/auth/logout?all=maybe", s2["access_token"]), 400)
    problem(req(srv, "POST", "/auth/logout?everything=true", s2["access_token"]), 400)
    problem(req(srv, "POST", "/auth/logout", s2["access_token"], data="x"), 400)
    assert works(srv, s2["access_token"])  # the refused logouts did nothing

    r = req(srv, "POST", "/auth/logout?all=true", s2["access_token"])
    assert r.status_code == 204, r.text
    for s in (s2, s3):
        assert_rejected(srv, s["access_token"])
        oauth_error(refresh(srv, s["refresh_token"]), 400, "invalid_grant")
    assert works(srv, b["access_token"])  # another user's session is untouched
    invalid_token(get(srv, "/v1/resorts", s3["access_token"]))  # a public route too

    problem(req(srv, "POST", "/auth/logout"), 401)  # no credentials at all


def test_admin_revokes_by_sid_and_by_sub(auth_server):
    srv = auth_server()
    admin = login(srv, "root")["access_token"]
    a1, a2 = login(srv, "alice"), login(srv, "alice")
    m = login(srv, "mia")
    sid1 = jwt_parts(a1["access_token"])[1]["sid"]
    sid2 = jwt_parts(a2["access_token"])[1]["sid"]

    # Not for staff or managers: 403, and nothing is revoked.
    for t in (a1["access_token"], m["access_token"]):
        r = revoke(srv, t, {"sid": sid2})
        problem(r, 403)
        assert r.headers["WWW-Authenticate"] == CHALLENGE + ', error="insufficient_scope"'
    problem(post_json(srv, "/auth/revoke", {"sid": sid2}), 401)
    assert works(srv, a2["access_token"])

    r = revoke(srv, admin, {"sid": sid1})
    assert r.status_code == 200, r.text
    assert r.json() == {"revoked": 1}
    assert_rejected(srv, a1["access_token"])
    oauth_error(refresh(srv, a1["refresh_token"]), 400, "invalid_grant")
    assert works(srv, a2["access_token"])
    assert revoke(srv, admin, {"sid": sid1}).json() == {"revoked": 0}  # already
    assert revoke(srv, admin, {"sid": "B" * 22}).json() == {"revoked": 0}  # unknown

    r = revoke(srv, admin, {"sub": "staff:alice"})
    assert r.status_code == 200, r.text
    assert r.json() == {"revoked": 1}
    assert_rejected(srv, a2["access_token"])
    assert works(srv, m["access_token"])
    assert works(srv, admin)

    for body in ({}, {"sid": sid1, "sub": "staff:alice"}, {"sid": 5}, {"sid": ""},
                 {"sid": "C" * 23}, {"who": "alice"}, ["sid"]):
        problem(revoke(srv, admin, body), 400)
    problem(req(srv, "POST", "/auth/revoke", admin, data="{\"sid\":\"x\"}"), 415)
    assert works(srv, m["access_token"])


# ---------------------------------------------------------------- roles in the router


def test_roles_and_challenges(auth_server):
    srv = auth_server()
    staff = login(srv, "alice")["access_token"]
    manager = login(srv, "mia")["access_token"]
    admin = login(srv, "root")["access_token"]

    # No token on a route that needs one: 401 with the bare challenge.
    for method, path, body in (("POST", "/v1/resorts", {"name": "x"}),
                               ("GET", "/v1/reports/occupancy", None),
                               ("GET", "/auth/session", None)):
        r = req(srv, method, path, json=body)
        problem(r, 401)
        assert r.headers["WWW-Authenticate"] == CHALLENGE

    # Too low a role: 403 with insufficient_scope, and nothing happens.
    for t in (staff, manager):
        r = post_json(srv, "/v1/resorts", {"name": "금지"}, t)
        problem(r, 403)
        assert r.headers["WWW-Authenticate"] == CHALLENGE + ', error="insufficient_scope"'
        assert "admin" in r.json()["detail"]
    assert get(srv, "/v1/resorts").json()["items"] == []

    r = post_json(srv, "/v1/resorts", {"name": "허용"}, admin)
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    assert len(get(srv, "/v1/resorts").json()["items"]) == 1

    patch = {"Content-Type": "application/merge-patch+json"}
    r = req(srv, "PATCH", f"/v1/resorts/{rid}", staff, patch, data=json.dumps({"stars": 3}))
    problem(r, 403)
    assert "manager" in r.json()["detail"]
    r = req(srv, "PATCH", f"/v1/resorts/{rid}", manager, patch, data=json.dumps({"stars": 3}))
    assert r.status_code == 200, r.text
    assert r.json()["stars"] == 3

    d = date.today()
    occ = f"/v1/reports/occupancy?from={d}&to={d + timedelta(days=1)}"
    assert get(srv, occ, staff).status_code == 200
    problem(get(srv, occ), 401)

    # A public route with and without a token.
    assert get(srv, "/v1/resorts").status_code == 200
    assert get(srv, "/v1/resorts", staff).status_code == 200
    # The scheme name is case-insensitive (RFC 9110 11.1).
    assert get(srv, "/auth/session", headers={"Authorization": "bearer " + staff}).json()[
        "role"] == "staff"


def test_bad_credentials_are_refused_even_on_public_routes(auth_server):
    srv = auth_server(users=[("root", "admin")])
    for authz in ("Bearer garbage", "Bearer ", "Bearer a.b.c", "Basic xyz",
                  "Basic " + base64.b64encode(f"root:{PW}".encode()).decode(), "Token abc"):
        for path in ("/v1/resorts", "/auth/session", "/.well-known/jwks.json"):
            invalid_token(get(srv, path, headers={"Authorization": authz}))
        invalid_token(post_json(srv, "/v1/resorts", {"name": "x"},
                                headers={"Authorization": authz}))
    assert get(srv, "/v1/resorts").json()["items"] == []


def test_access_token_in_the_query_is_not_read(auth_server):
    srv = auth_server(users=[("alice", "staff")])
    t = login(srv, "alice")["access_token"]
    r = get(srv, f"/auth/session?access_token={t}")
    problem(r, 401)
    assert r.headers["WWW-Authenticate"] == CHALLENGE


# ---------------------------------------------------------------- attacks on the token


def spki_der_by_hand(jwk):
    prefix = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200")
    return prefix + b"\x04" + b64d(jwk["x"]) + b64d(jwk["y"])


def test_forged_tokens_are_refused(auth_server):
    srv = auth_server(users=[("alice", "staff"), ("root", "admin")])
    real = login(srv, "alice")["access_token"]
    header, claims, sig = jwt_parts(real)
    kid = header["kid"]
    jwk = {k["kid"]: k for k in jwks(srv)["keys"]}[kid]
    h64, p64, _ = real.split(".")
    admin_claims = dict(claims, roles=["admin"], sub="staff:root")

    # The server's public key as an attacker would have it.
    pub = jwk_public_key(jwk)
    der = pub.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    assert der == spki_der_by_hand(jwk)
    pem = pub.public_bytes(serialization.Encoding.PEM,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----\n")

    def hs256(payload, key, hdr=None):
        h = b64e(json.dumps(hdr or {"alg": "HS256", "typ": "JWT", "kid": kid},
                            separators=(",", ":")).encode())
        p = b64e(json.dumps(payload, separators=(",", ":")).encode())
        mac = hmac.new(key, f"{h}.{p}".encode(), hashlib.sha256).digest()
        return f"{h}.{p}.{b64e(mac)}"

    attacker = ec.generate_private_key(ec.SECP256R1())
    attacker_jwk = {"kty": "EC", "crv": "P-256", "kid": kid,
                    "x": b64e(attacker.public_key().public_numbers().x.to_bytes(32, "big")),
                    "y": b64e(attacker.public_key().public_numbers().y.to_bytes(32, "big"))}
    forged = {
        "alg none": jwt_make({"alg": "none", "typ": "JWT", "kid": kid}, claims),
        "alg none, admin": jwt_make({"alg": "none", "typ": "JWT", "kid": kid}, admin_claims),
        "alg None": jwt_make({"alg": "None", "kid": kid}, admin_claims),
        "alg none, no kid": jwt_make({"alg": "none", "typ": "JWT"}, admin_claims),
        "alg none, real sig kept": f"{b64e(json.dumps({'alg': 'none', 'kid': kid}).encode())}"
                                   f".{p64}.{sig}",
        "HS256 with the PEM": hs256(admin_claims, pem),
        "HS256 with the PEM, no final newline": hs256(admin_claims, pem.rstrip(b"\n")),
        "HS256 with the DER": hs256(admin_claims, der),
        "HS256 with the JWK": hs256(admin_claims, json.dumps(jwk).encode()),
        "HS256 with the PEM, own claims": hs256(claims, pem),
        "tampered payload": f"{h64}.{b64e(json.dumps(admin_claims).encode())}.{sig}",
        "tampered exp": f"{h64}.{b64e(json.dumps(dict(claims, exp=claims['exp'] + 9999)).encode())}"
                        f".{sig}",
        "unknown kid": es256_sign(attacker, {"alg": "ES256", "typ": "JWT", "kid": "evil"},
                                  admin_claims),
        "attacker key, real kid": es256_sign(attacker, {"alg": "ES256", "typ": "JWT",
                                                        "kid": kid}, admin_claims),
        "embedded jwk": es256_sign(attacker, {"alg": "ES256", "typ": "JWT", "kid": kid,
                                              "jwk": attacker_jwk}, admin_claims),
        "jku": es256_sign(attacker, {"alg": "ES256", "kid": kid,
                                     "jku": "http://127.0.0.1:1/jwks.json"}, admin_claims),
        "ES384 label": f"{b64e(json.dumps({'alg': 'ES384', 'kid': kid}).encode())}.{p64}.{sig}",
        "zero signature": f"{h64}.{p64}.{b64e(bytes(64))}",
        "signature stripped": f"{h64}.{p64}.",
        "two segments": f"{h64}.{p64}",
        "four segments": f"{real}.{sig}",
        "signature altered": f"{h64}.{p64}.{sig[:-4]}AAAA",
    }
    for name, token in forged.items():
        for path in ("/auth/session", "/v1/resorts"):
            r = get(srv, path, token)
            assert r.status_code == 401, f"{name}: {r.status_code} {r.text}"
            invalid_token(r)
        r = post_json(srv, "/v1/resorts", {"name": name}, token)
        assert r.status_code == 401, f"{name}: {r.status_code} {r.text}"
        r = post_json(srv, "/auth/revoke", {"sub": "staff:alice"}, token)
        assert r.status_code == 401, f"{name}: {r.status_code} {r.text}"
    assert get(srv, "/v1/resorts").json()["items"] == []
    # The real token is still fine, and still only staff.
    assert whoami(srv, real).json()["role"] == "staff"
    problem(post_json(srv, "/v1/resorts", {"name": "x"}, real), 403)


def test_an_access_token_expires(auth_server):
    """The one slow test: --access-ttl-s 30 (the least allowed)."""
    srv = auth_server(users=[("alice", "staff")], args=["--access-ttl-s", "30"])
    t = login(srv, "alice")
    assert t["expires_in"] == 30
    exp = jwt_parts(t["access_token"])[1]["exp"]
    assert works(srv, t["access_token"], times=6)  # verified and cached by both workers
    # RFC 7519 4.1.4: "on or after" exp it must not be accepted.
    time.sleep(max(0.0, exp + 0.3 - time.time()))
    at_exp = [whoami(srv, t["access_token"]).status_code for _ in range(4)]
    time.sleep(max(0.0, exp + 1.3 - time.time()))
    after = [whoami(srv, t["access_token"]) for _ in range(4)]
    for r in after:
        invalid_token(r)
    # The session outlives the access token: a refresh gets a new one.
    r = refresh(srv, t["refresh_token"])
    assert r.status_code == 200, r.text
    assert works(srv, r.json()["access_token"])
    assert at_exp == [401] * 4, f"accepted during the second of its exp: {at_exp}"


# ---------------------------------------------------------------- cookie sessions


def test_cookie_session_and_csrf(auth_server):
    srv = auth_server(users=[("alice", "staff"), ("root", "admin")])
    r = login_resp(srv, "alice", session="cookie")
    assert r.status_code == 200, r.text
    body = r.json()
    cookies = set_cookies(r)
    value, attrs = cookies["rsd_session"]
    csrf, csrf_attrs = cookies["rsd_csrf"]
    sid = jwt_parts(body["access_token"])[1]["sid"]
    assert value.startswith(sid + ".") and len(value) == 22 + 1 + 43
    assert body["refresh_token"] not in value
    assert {"HttpOnly", "Secure", "SameSite=Strict", "Path=/"} <= set(attrs)
    assert {"Secure", "SameSite=Strict", "Path=/"} <= set(csrf_attrs)
    assert "HttpOnly" not in csrf_attrs  # the page's script must read it
    assert body["csrf_token"] == csrf and len(csrf) == 43

    r = get(srv, "/auth/session", headers=with_cookie(value))
    assert r.status_code == 200, r.text
    assert r.json()["sid"] == sid and r.json()["sub"] == "staff:alice"
    assert req(srv, "HEAD", "/v1/resorts", headers=with_cookie(value)).status_code == 200

    # Unsafe methods need the CSRF token; a refusal changes nothing.
    for h in (with_cookie(value), with_cookie(value, ""), with_cookie(value, csrf[:-1] + "x"),
              with_cookie(value, body["access_token"])):
        r = req(srv, "POST", "/auth/logout", headers=h)
        problem(r, 403)
    other_body, other_value, other_csrf = cookie_login(srv, "alice")
    problem(req(srv, "POST", "/auth/logout", headers=with_cookie(value, other_csrf)), 403)
    assert get(srv, "/auth/session", headers=with_cookie(value)).status_code == 200

    # A cookie whose secret is wrong, or that is malformed, is refused.
    for bad in (value[:-1] + ("A" if value[-1] != "A" else "B"), sid, sid + ".", "x.y",
                other_value.split(".")[0] + "." + value.split(".")[1]):
        invalid_token(get(srv, "/auth/session", headers=with_cookie(bad)))

    # With the right token: 204, the cookies are cleared, and the session is over for the
    # cookie and for that login's bearer token alike.
    r = req(srv, "POST", "/auth/logout", headers=with_cookie(value, csrf))
    assert r.status_code == 204, r.text
    cleared = set_cookies(r)
    assert cleared["rsd_session"][0] == "" and "Max-Age=0" in cleared["rsd_session"][1]
    assert cleared["rsd_csrf"][0] == "" and "Max-Age=0" in cleared["rsd_csrf"][1]
    invalid_token(get(srv, "/auth/session", headers=with_cookie(value)))
    assert_rejected(srv, body["access_token"])
    # The other cookie session is a session of its own.
    assert get(srv, "/auth/session", headers=with_cookie(other_value)).status_code == 200


def test_cookie_session_csrf_on_an_admin_route(auth_server):
    srv = auth_server(users=[("root", "admin")])
    _, value, csrf = cookie_login(srv, "root")
    h = {**with_cookie(value), "Content-Type": "application/json"}
    r = req(srv, "POST", "/v1/resorts", headers=h, data=json.dumps({"name": "쿠키"}))
    problem(r, 403)
    assert get(srv, "/v1/resorts").json()["items"] == []
    r = req(srv, "POST", "/v1/resorts", headers={**h, "X-CSRF-Token": csrf},
            data=json.dumps({"name": "쿠키"}))
    assert r.status_code == 201, r.text
    assert len(get(srv, "/v1/resorts").json()["items"]) == 1


def test_a_dead_session_cookie_does_not_lock_the_browser_out(auth_server):
    """The session cookie is HttpOnly, so the page cannot delete it; when its session ends
    other than by logout (an admin's revocation, a new password, expiry), the browser must
    still be able to sign in again: either the token endpoint ignores the dead cookie, or
    the refusal clears it."""
    srv = auth_server(users=[("alice", "staff"), ("root", "admin")])
    _, value, csrf = cookie_login(srv, "alice")
    admin = login(srv, "root")["access_token"]
    assert revoke(srv, admin, {"sub": "staff:alice"}).json() == {"revoked": 1}
    invalid_token(get(srv, "/auth/session", headers=with_cookie(value)))
    r = req(srv, "POST", "/auth/token", headers=with_cookie(value, csrf),
            data={"grant_type": "password", "username": "alice", "password": PW,
                  "session": "cookie"})
    recovered = r.status_code == 200 or (
        "rsd_session" in set_cookies(r) and "Max-Age=0" in set_cookies(r)["rsd_session"][1])
    assert recovered, (f"a browser holding a revoked rsd_session cookie gets "
                       f"{r.status_code} {r.text} from POST /auth/token, with no Set-Cookie "
                       f"clearing it")


# ---------------------------------------------------------------- CLI beside the server


def test_cli_disable_and_passwd_while_running(auth_server):
    srv = auth_server(users=[("alice", "staff"), ("bob", "staff")])
    a1, a2 = login(srv, "alice"), login(srv, "alice")
    b = login(srv, "bob")
    assert works(srv, a1["access_token"])  # cached by the workers

    p = cli(srv.data_dir, "user", "disable", "alice")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "user alice: disabled (staff), sessions revoked"
    for t in (a1, a2):
        assert_rejected(srv, t["access_token"])  # at once, cache or not
        oauth_error(refresh(srv, t["refresh_token"]), 400, "invalid_grant")
    oauth_error(login_resp(srv, "alice"), 400, "invalid_grant")
    assert works(srv, b["access_token"])

    # A new password re-enables: old sessions stay dead, the old password fails.
    p = cli(srv.data_dir, "user", "passwd", "alice", "--password-stdin", password=PW2)
    assert p.returncode == 0, p.stderr
    a3 = login(srv, "alice", PW2)
    assert works(srv, a3["access_token"])
    assert_rejected(srv, a1["access_token"])

    # passwd while signed in: that session ends, the new password works, the old fails.
    p = cli(srv.data_dir, "user", "passwd", "alice", "--password-stdin", password=PW)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "user alice: password set (staff), sessions revoked"
    assert_rejected(srv, a3["access_token"])
    oauth_error(refresh(srv, a3["refresh_token"]), 400, "invalid_grant")
    oauth_error(login_resp(srv, "alice", PW2), 400, "invalid_grant")
    assert works(srv, login(srv, "alice", PW)["access_token"])
    assert works(srv, b["access_token"])


def test_cli_user_add_while_running(auth_server):
    srv = auth_server(users=[("alice", "staff")])
    oauth_error(login_resp(srv, "newbie"), 400, "invalid_grant")
    add_user(srv.data_dir, "newbie", "manager")
    t = login(srv, "newbie")
    assert whoami(srv, t["access_token"]).json()["role"] == "manager"


def test_cli_user_role_while_running(auth_server):
    srv = auth_server(users=[("alice", "staff"), ("bob", "staff")])
    a, b = login(srv, "alice"), login(srv, "bob")
    assert whoami(srv, a["access_token"]).json()["role"] == "staff"
    p = cli(srv.data_dir, "user", "role", "alice", "--role", "manager", "--resort", "rs_south")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == \
        "user alice: role set (manager, resort rs_south), sessions revoked"
    # The old session ends at once; the same password signs in with the new role.
    assert_rejected(srv, a["access_token"])
    oauth_error(refresh(srv, a["refresh_token"]), 400, "invalid_grant")
    me = whoami(srv, login(srv, "alice")["access_token"]).json()
    assert (me["role"], me["resort"]) == ("manager", "rs_south"), me
    # Without --resort the user keeps its resort; --all-resorts makes it the group's.
    p = cli(srv.data_dir, "user", "role", "alice", "--role", "staff")
    assert p.returncode == 0, p.stderr
    me = whoami(srv, login(srv, "alice")["access_token"]).json()
    assert (me["role"], me["resort"]) == ("staff", "rs_south"), me
    p = cli(srv.data_dir, "user", "role", "alice", "--role", "admin", "--all-resorts")
    assert p.returncode == 0, p.stderr
    me = whoami(srv, login(srv, "alice")["access_token"]).json()
    assert me["role"] == "admin" and "resort" not in me, me
    assert works(srv, b["access_token"])


def test_keys_rotate_while_running(auth_server):
    srv = auth_server(users=[("alice", "staff")])
    old = login(srv, "alice")
    k0 = jwt_parts(old["access_token"])[0]["kid"]
    assert works(srv, old["access_token"])
    p = cli(srv.data_dir, "keys", "rotate")
    assert p.returncode == 0, p.stderr
    m = re.match(r"keys: new signing key (\S+);", p.stdout)
    assert m, p.stdout
    k1 = m.group(1)
    assert k1 != k0

    deadline = time.monotonic() + 3
    while True:
        new = login(srv, "alice")
        if jwt_parts(new["access_token"])[0]["kid"] == k1 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert jwt_parts(new["access_token"])[0]["kid"] == k1, "new tokens still use the old key"
    keys = {k["kid"]: k for k in jwks(srv)["keys"]}
    assert {k0, k1} <= set(keys)
    es256_verify(new["access_token"], keys[k1])
    es256_verify(old["access_token"], keys[k0])
    with pytest.raises(InvalidSignature):
        es256_verify(new["access_token"], keys[k0])
    # Tokens of both keys work, and refresh signs with the new key.
    assert works(srv, new["access_token"], times=4)
    assert works(srv, old["access_token"], times=4)
    r = refresh(srv, old["refresh_token"])
    assert r.status_code == 200, r.text
    assert jwt_parts(r.json()["access_token"])[0]["kid"] == k1


def test_jwks_publishes_a_rotated_key_without_waiting_for_a_sign_in(auth_server):
    """Verifiers fetch the JWKS (cached up to 60 s) to check tokens; a key rotated in by
    the CLI must be published within the server's key-check interval, not only once the
    server first signs with it."""
    srv = auth_server(users=[("alice", "staff")])
    k0 = {k["kid"] for k in jwks(srv)["keys"]}
    p = cli(srv.data_dir, "keys", "rotate")
    assert p.returncode == 0, p.stderr
    k1 = re.match(r"keys: new signing key (\S+);", p.stdout).group(1)
    deadline = time.monotonic() + 3
    while k1 not in {k["kid"] for k in jwks(srv)["keys"]} and time.monotonic() < deadline:
        time.sleep(0.2)
    kids = {k["kid"] for k in jwks(srv)["keys"]}
    assert kids >= k0 | {k1}, f"3 s after `keys rotate` the JWKS lists {kids}, not {k1}"


# ---------------------------------------------------------------- CLI errors


def test_cli_errors(tmp_path):
    d = tmp_path / "cli"
    d.mkdir()
    add_user(d, "alice", "staff")
    cases = [
        (["user", "add", "bob", "--role", "owner", "--password-stdin"], PW, 2),
        (["user", "add", "bob", "--role", "guest", "--password-stdin"], PW, 2),
        (["user", "add", "bob", "--role", "staff", "--password-stdin"], "short", 2),
        (["user", "add", "bob", "--role", "staff", "--password-stdin"], None, 2),  # no line
        (["user", "add", "bob", "--role", "staff"], PW, 2),  # no --password-stdin
        (["user", "add", "Bob", "--role", "staff", "--password-stdin"], PW, 2),
        (["user", "add", "alice", "--role", "admin", "--password-stdin"], PW, 1),
        (["user", "passwd", "nobody", "--password-stdin"], PW, 1),
        (["user", "disable", "nobody"], None, 1),
        (["user", "role", "nobody", "--role", "staff"], None, 1),
        (["user", "role", "alice", "--role", "guest"], None, 2),
        (["user", "role", "alice"], None, 2),  # no --role
        (["user", "role", "alice", "--role", "admin", "--resort", ""], None, 2),
        (["user", "role", "alice", "--role", "admin", "--resort", "rs_x", "--all-resorts"],
         None, 2),
        (["user", "add", "bob", "--role", "staff", "--all-resorts", "--password-stdin"], PW, 2),
        (["user", "disable", "alice", "--all-resorts"], None, 2),
        (["user", "rename", "alice"], None, 2),
        (["keys", "burn"], None, 2),
    ]
    for args, pw, code in cases:
        p = cli(d, *args, password=pw)
        assert p.returncode == code, (args, p.returncode, p.stderr)
        lines = p.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("resortd"), (args, p.stderr)
        assert p.stdout == "", (args, p.stdout)
    # None of that changed alice, nor added bob.
    p = cli(d, "user", "add", "bob", "--role", "staff", "--password-stdin", password=PW)
    assert p.returncode == 0, p.stderr
    p = cli(d, "user", "add", "alice", "--role", "staff", "--password-stdin", password=PW)
    assert p.returncode == 1
