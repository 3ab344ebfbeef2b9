"""Tests of the test OpenID provider (provider.mjs) and its harness (oidc_harness.py), without resortd.

The tests act as a minimal relying party in Python: discovery over HTTPS trusting the throwaway
CA, an authorization URL with S256 PKCE, state and nonce, a browserless login, the code exchange
with client_secret_basic, and checks of the id_token (its RS256 signature is verified with node
against the published JWKS). Also: the provider refuses what an RP must not get away with, key
rotation publishes a new kid, and stop()/start() simulates an IdP outage.
Run: /usr/bin/python3 -m pytest -q tests/oidc
"""
import base64
import hashlib
import json
import os
import signal
import subprocess
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from oidc_harness import CLIENT_ID, USERS, OidcProvider, node_binary
from oidc_harness import oidc_provider, oidc_provider_factory  # noqa: F401 (pytest fixtures)

REDIRECT_URI = "http://127.0.0.1:9/cb"
SCOPE = "openid profile email groups"
EXPECTED = {
    "guest1": {"name": "Guest One", "email": "guest1@example.test", "groups": []},
    "guest2": {"name": "Guest Two", "email": "guest2@example.test", "groups": []},
    "staff1": {"name": "Staff One", "groups": ["resort-staff"], "resort": "rs_demo"},
    "manager1": {"name": "Manager One", "groups": ["resort-managers"], "resort": "rs_demo"},
    "admin1": {"name": "Admin One", "groups": ["group-admins"]},
}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Flow:
    """One authorization request of a minimal RP: PKCE verifier, state, nonce and the URL."""

    def __init__(self, op, redirect_uri=REDIRECT_URI, **overrides):
        self.op = op
        self.meta = op.discovery()
        self.verifier = b64url(os.urandom(32))
        self.state = b64url(os.urandom(16))
        self.nonce = b64url(os.urandom(16))
        self.redirect_uri = redirect_uri
        params = {
            "response_type": "code",
            "client_id": op.client_id,
            "redirect_uri": redirect_uri,
            "scope": SCOPE,
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": b64url(hashlib.sha256(self.verifier.encode()).digest()),
            "code_challenge_method": "S256",
        }
        params.update(overrides)
        self.auth_url = self.meta["authorization_endpoint"] + "?" + urlencode(
            {k: v for k, v in params.items() if v is not None})

    def login(self, user, **kw):
        """login() and the query of the redirect it returns (one value per name)."""
        url = self.op.login(self.auth_url, user, **kw)
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == self.redirect_uri
        return {k: v[0] for k, v in parse_qs(parts.query).items()}

    def exchange(self, code, verifier=None, auth=None):
        return self.op.session().post(
            self.meta["token_endpoint"], timeout=10,
            auth=auth or (self.op.client_id, self.op.client_secret),
            data={"grant_type": "authorization_code", "code": code,
                  "redirect_uri": self.redirect_uri,
                  "code_verifier": verifier or self.verifier})

    def id_token(self, user):
        """Logs user in, exchanges the code; returns (header, payload, raw id_token)."""
        q = self.login(user)
        assert q["state"] == self.state and "code" in q, q
        r = self.exchange(q["code"])
        assert r.status_code == 200, r.text
        raw = r.json()["id_token"]
        header, payload = (json.loads(b64url_decode(p)) for p in raw.split(".")[:2])
        return header, payload, raw


VERIFY_JS = """
const crypto = require('node:crypto');
const [jwt, jwk] = [process.argv[1], JSON.parse(process.argv[2])];
const [h, p, s] = jwt.split('.');
const ok = crypto.verify('sha256', Buffer.from(h + '.' + p),
  crypto.createPublicKey({ key: jwk, format: 'jwk' }), Buffer.from(s, 'base64url'));
process.stdout.write(ok ? 'valid' : 'invalid');
"""


def signature_valid(raw, jwk):
    out = subprocess.run([node_binary(), "-e", VERIFY_JS, raw, json.dumps(jwk)], check=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    return out.stdout == "valid"


def published_key(op, kid):
    keys = [k for k in op.jwks()["keys"] if k["kid"] == kid]
    assert len(keys) == 1, (kid, op.jwks())
    assert not {"d", "p", "q"} & set(keys[0]), "the JWKS must publish public keys only"
    return keys[0]


def test_discovery_over_https_with_the_test_ca(oidc_provider):
    op = oidc_provider
    assert op.issuer == f"https://127.0.0.1:{op.port}"
    meta = op.session().get(op.discovery_url, timeout=10).json()
    assert meta == op.discovery()
    assert meta["issuer"] == op.issuer
    for endpoint in ("authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"):
        assert meta[endpoint].startswith(op.issuer + "/")
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert "RS256" in meta["id_token_signing_alg_values_supported"]
    assert {"openid", "profile", "email", "groups"} <= set(meta["scopes_supported"])
    assert {"sub", "email", "email_verified", "name", "groups", "resort"} <= set(meta["claims_supported"])
    # Real TLS: without the test CA the certificate is not trusted.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(op.issuer + "/.well-known/openid-configuration", timeout=10)


def test_login_and_code_exchange_give_a_signed_id_token_with_the_claims(oidc_provider):
    op = oidc_provider
    flow = Flow(op)
    q = flow.login("guest1")
    assert q["state"] == flow.state
    assert q["code"]
    assert q["iss"] == op.issuer  # RFC 9207 iss in the authorization response
    r = flow.exchange(q["code"])
    assert r.status_code == 200, r.text
    assert r.headers["Cache-Control"] == "no-store"
    body = r.json()
    assert body["token_type"].lower() == "bearer"
    raw = body["id_token"]
    header, payload = (json.loads(b64url_decode(p)) for p in raw.split(".")[:2])
    assert header["alg"] == "RS256"
    assert payload["iss"] == op.issuer
    assert payload["aud"] == CLIENT_ID
    assert payload["nonce"] == flow.nonce
    assert payload["sub"] == "guest1"
    assert payload["name"] == "Guest One"
    assert payload["email"] == "guest1@example.test"
    assert payload["email_verified"] is True
    assert payload["groups"] == []
    assert "resort" not in payload
    assert payload["iat"] <= time.time() + 5 < payload["exp"]
    assert signature_valid(raw, published_key(op, header["kid"]))
    # The access token works at the userinfo endpoint (claims by scope, like the id_token).
    me = op.session().get(flow.meta["userinfo_endpoint"], timeout=10,
                          headers={"Authorization": "Bearer " + body["access_token"]})
    assert me.status_code == 200, me.text
    assert me.json()["sub"] == "guest1" and me.json()["groups"] == []
    # Replaying the code fails.
    again = flow.exchange(q["code"])
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_every_user_has_its_groups_in_the_id_token(oidc_provider):
    assert set(USERS) == set(EXPECTED)
    for user, want in EXPECTED.items():
        _, payload, _ = Flow(oidc_provider).id_token(user)
        assert payload["sub"] == user
        for claim, value in want.items():
            assert payload[claim] == value, (user, claim, payload)
        if "resort" not in want:
            assert "resort" not in payload


def test_the_provider_refuses_what_a_relying_party_must_not_get_away_with(oidc_provider):
    op = oidc_provider
    flow = Flow(op)
    q = flow.login("guest2")
    # Wrong PKCE verifier: refused (the code is not consumed by the failed attempt).
    r = flow.exchange(q["code"], verifier=b64url(os.urandom(32)))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    assert flow.exchange(q["code"]).status_code == 200
    # Wrong client secret.
    flow = Flow(op)
    q = flow.login("guest2")
    r = flow.exchange(q["code"], auth=(CLIENT_ID, "wrong-secret"))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client", r.text
    # PKCE is required, and only S256.
    for overrides in ({"code_challenge": None, "code_challenge_method": None},
                      {"code_challenge_method": "plain"}):
        flow = Flow(op, **overrides)
        q = flow.login("guest2")
        assert q["error"] == "invalid_request" and q["state"] == flow.state and "code" not in q, q
    # An unregistered redirect_uri gets an error page, never a redirect.
    with pytest.raises(RuntimeError, match="redirect_uri"):
        Flow(op, redirect_uri="http://127.0.0.1:9/elsewhere").login("guest2")
    # The user cancels.
    flow = Flow(op)
    url = op.deny(flow.auth_url)
    q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert q["error"] == "access_denied" and q["state"] == flow.state


def test_sso_session_and_redirect_uri_change(oidc_provider):
    op = oidc_provider
    session = op.session()
    Flow(op).login("staff1", session=session)
    # Same cookie jar: the provider's session is reused, whatever login name is passed.
    flow = Flow(op)
    q = flow.login("guest1", session=session)
    r = flow.exchange(q["code"])
    payload = json.loads(b64url_decode(r.json()["id_token"].split(".")[1]))
    assert payload["sub"] == "staff1"
    # The RP's real port is known late: change the client's redirect_uris while running.
    op.set_redirect_uris(["http://127.0.0.1:8/auth/callback"])
    flow = Flow(op, redirect_uri="http://127.0.0.1:8/auth/callback")
    _, payload, _ = flow.id_token("manager1")
    assert payload["groups"] == ["resort-managers"]
    with pytest.raises(RuntimeError, match="redirect_uri"):
        Flow(op).login("guest1")


def test_key_rotation_signs_with_a_new_kid_and_publishes_both(oidc_provider):
    op = oidc_provider
    header1, _, _ = Flow(op).id_token("guest1")
    old_kid = header1["kid"]
    # A code issued before the rotation is redeemed after it: the swap keeps the provider's state.
    pending = Flow(op)
    q = pending.login("admin1")
    new_kid = op.rotate_keys()
    assert new_kid != old_kid
    kids = [k["kid"] for k in op.jwks()["keys"]]
    assert kids == [new_kid, old_kid]
    r = pending.exchange(q["code"])
    assert r.status_code == 200, r.text
    raw = r.json()["id_token"]
    header = json.loads(b64url_decode(raw.split(".")[0]))
    assert header["kid"] == new_kid
    assert signature_valid(raw, published_key(op, new_kid))
    assert not signature_valid(raw, published_key(op, old_kid))
    header2, payload2, _ = Flow(op).id_token("admin1")
    assert header2["kid"] == new_kid and payload2["groups"] == ["group-admins"]
    # SIGHUP rotates too.
    op.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 15
    while len(op.jwks()["keys"]) < 3:
        assert time.monotonic() < deadline, "SIGHUP did not rotate"
        time.sleep(0.05)
    header3, _, _ = Flow(op).id_token("guest1")
    assert header3["kid"] not in (old_kid, new_kid)
    assert [k["kid"] for k in op.jwks()["keys"]] == [header3["kid"], new_kid, old_kid]


def test_stop_refuses_connections_and_start_brings_the_same_issuer_back(oidc_provider):
    op = oidc_provider
    issuer = op.issuer
    new_kid = op.rotate_keys()
    kids = [k["kid"] for k in op.jwks()["keys"]]
    pid = op.proc.pid
    op.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        op.session().get(issuer + "/.well-known/openid-configuration", timeout=5)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    op.start()
    assert op.issuer == issuer
    assert op.discovery()["issuer"] == issuer
    assert [k["kid"] for k in op.jwks()["keys"]] == kids  # the rotated keys were kept
    header, payload, _ = Flow(op).id_token("staff1")
    assert header["kid"] == new_kid and payload["iss"] == issuer


def test_a_killed_test_run_leaves_no_provider_behind(tmp_path):
    """provider.mjs exits when the harness's stdin pipe closes (pytest killed with SIGKILL)."""
    op = OidcProvider(tmp_path / "idp")
    op.start()
    try:
        op.proc.stdin.close()  # what the kernel does when the harness process dies
        op.proc.wait(10)
    finally:
        op.stop()
