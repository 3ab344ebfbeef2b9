"""The test OpenID provider's refresh tokens and its /__test/account and /__test/revoke routes.

Only the provider (tests/oidc/provider.mjs) runs here, no resortd: the test plays the relying
party by hand with requests -- the authorization request (code, PKCE S256, state, nonce), the
devInteractions login (OidcProvider.login, as tests/api/test_sso.py uses it; it hands back the
redirect to the client's redirect_uri without fetching it), the code exchange and refreshes at
the token endpoint with client_secret_basic. Each test gets a provider of its own
(oidc_provider), so an account changed by one does not leak into another.
"""
import base64
import hashlib
import json
import os
import secrets
import sys
import time
from urllib.parse import parse_qs, urlencode, urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "oidc"))
from oidc_harness import oidc_provider, oidc_provider_factory  # noqa: E402,F401 (fixtures)

SCOPE = "openid profile email groups"


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwt_parts(token):
    header, payload, _ = token.split(".")
    return json.loads(b64d(header)), json.loads(b64d(payload))


def verify_rs256(op, token):
    """Checks token's RS256 signature against the provider's published JWKS; returns its kid."""
    header, _ = jwt_parts(token)
    assert header["alg"] == "RS256", header
    keys = {k["kid"]: k for k in op.jwks()["keys"]}
    assert header["kid"] in keys, (header, list(keys))
    jwk = keys[header["kid"]]
    pub = rsa.RSAPublicNumbers(int.from_bytes(b64d(jwk["e"]), "big"),
                               int.from_bytes(b64d(jwk["n"]), "big")).public_key()
    signing_input, _, sig = token.rpartition(".")
    pub.verify(b64d(sig), signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return header["kid"]


def sign_in(op, user, session=None):
    """The whole code flow for user; returns (token response JSON, nonce)."""
    verifier = b64u(secrets.token_bytes(32))
    challenge = b64u(hashlib.sha256(verifier.encode()).digest())
    state, nonce = b64u(secrets.token_bytes(16)), b64u(secrets.token_bytes(16))
    redirect_uri = op.redirect_uris[0]
    disco = op.discovery()
    auth_url = disco["authorization_endpoint"] + "?" + urlencode({
        "response_type": "code", "client_id": op.client_id, "redirect_uri": redirect_uri,
        "scope": SCOPE, "state": state, "nonce": nonce, "code_challenge": challenge,
        "code_challenge_method": "S256"})
    back = op.login(auth_url, user, session=session)  # not fetched: nothing listens there
    assert back.startswith(redirect_uri + "?"), back
    q = {k: v[0] for k, v in parse_qs(urlsplit(back).query).items()}
    assert q.get("state") == state and q.get("code"), q
    r = op.session().post(disco["token_endpoint"], timeout=10,
                          auth=(op.client_id, op.client_secret),
                          data={"grant_type": "authorization_code", "code": q["code"],
                                "redirect_uri": redirect_uri, "code_verifier": verifier})
    assert r.status_code == 200, r.text
    tokens = r.json()
    assert tokens.get("refresh_token"), tokens
    assert tokens.get("id_token") and tokens.get("access_token"), tokens
    return tokens, nonce


def refresh(op, refresh_token):
    """The refresh_token grant; returns the response (not checked)."""
    return op.session().post(op.discovery()["token_endpoint"], timeout=10,
                             auth=(op.client_id, op.client_secret),
                             data={"grant_type": "refresh_token",
                                   "refresh_token": refresh_token})


def refreshed(op, refresh_token):
    r = refresh(op, refresh_token)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body.get("id_token") and body.get("refresh_token") and body.get("access_token"), body
    return body


def assert_invalid_grant(r):
    assert r.status_code == 400, (r.status_code, r.text)
    assert r.json()["error"] == "invalid_grant", r.text


def test_refresh_gives_a_new_id_token_and_rotates_the_refresh_token(oidc_provider):
    op = oidc_provider
    assert "refresh_token" in op.discovery()["grant_types_supported"]
    first, nonce = sign_in(op, "staff1")
    kid = verify_rs256(op, first["id_token"])
    _, c1 = jwt_parts(first["id_token"])
    assert c1["sub"] == "staff1" and c1["nonce"] == nonce, c1
    assert c1["groups"] == ["resort-staff"] and c1["resort"] == "rs_demo", c1
    assert c1["name"] == "Staff One" and c1["email"] == "staff1@example.test", c1

    # An id_token has no jti and RS256 signatures are deterministic: one refreshed within the
    # same second as the sign-in, with the same claims, is byte for byte the first. A second
    # later it is a new one (iat, exp).
    time.sleep(1.1)
    second = refreshed(op, first["refresh_token"])
    assert second["id_token"] != first["id_token"]
    assert verify_rs256(op, second["id_token"]) == kid  # signed like the first
    _, c2 = jwt_parts(second["id_token"])
    assert c2["iat"] > c1["iat"] and c2["exp"] > c1["exp"], (c1, c2)
    assert c2["sub"] == c1["sub"] and c2["iss"] == op.issuer and c2["aud"] == op.client_id, c2
    # Every claim the scopes grant, as at the sign-in, the original nonce too.
    assert c2["groups"] == ["resort-staff"] and c2["resort"] == "rs_demo", c2
    assert c2["name"] == "Staff One" and c2["email"] == "staff1@example.test", c2
    assert c2["email_verified"] is True, c2
    assert set(c2) == set(c1) and c2["nonce"] == nonce, (c1, c2)
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]

    # The new refresh token works (and rotates again)...
    third = refreshed(op, second["refresh_token"])
    assert third["refresh_token"] not in (first["refresh_token"], second["refresh_token"])
    assert jwt_parts(third["id_token"])[1]["sub"] == "staff1"
    # ...a spent one does not; and presenting a spent one is taken as a stolen token: the
    # whole grant goes (oidc-provider's reuse detection), the newest refresh token with it.
    assert_invalid_grant(refresh(op, first["refresh_token"]))
    assert_invalid_grant(refresh(op, third["refresh_token"]))
    assert_invalid_grant(refresh(op, "not-a-refresh-token"))


def test_refresh_reflects_the_accounts_current_claims(oidc_provider):
    op = oidc_provider
    tokens, _ = sign_in(op, "staff1")
    other, _ = sign_in(op, "manager1")
    s = op.session()

    r = s.post(op.url("/__test/account"), timeout=10,
               json={"account": "staff1", "groups": ["resort-managers"]})
    assert r.status_code == 200, r.text
    assert r.json()["groups"] == ["resort-managers"] and r.json()["sub"] == "staff1", r.json()
    assert r.json()["resort"] == "rs_demo" and r.json()["name"] == "Staff One", r.json()

    tokens = refreshed(op, tokens["refresh_token"])
    c = jwt_parts(tokens["id_token"])[1]
    assert c["sub"] == "staff1" and c["groups"] == ["resort-managers"], c
    assert c["resort"] == "rs_demo" and c["name"] == "Staff One", c

    # resort and name too; null drops resort; other accounts keep theirs.
    r = s.post(op.url("/__test/account"), timeout=10,
               json={"account": "staff1", "resort": "rs_x", "name": "Staff Renamed"})
    assert r.status_code == 200 and r.json()["resort"] == "rs_x", r.text
    tokens = refreshed(op, tokens["refresh_token"])
    c = jwt_parts(tokens["id_token"])[1]
    assert c["groups"] == ["resort-managers"], c
    assert c["resort"] == "rs_x" and c["name"] == "Staff Renamed", c
    r = s.post(op.url("/__test/account"), timeout=10,
               json={"account": "staff1", "groups": [], "resort": None})
    assert r.status_code == 200 and "resort" not in r.json(), r.text
    c = jwt_parts(refreshed(op, tokens["refresh_token"])["id_token"])[1]
    assert c["groups"] == [] and "resort" not in c, c
    m = jwt_parts(refreshed(op, other["refresh_token"])["id_token"])[1]
    assert m["sub"] == "manager1" and m["groups"] == ["resort-managers"], m
    assert m["resort"] == "rs_demo", m

    # An unknown account is a 404, a malformed change a 400; neither changes anything.
    r = s.post(op.url("/__test/account"), timeout=10, json={"account": "nobody", "groups": []})
    assert r.status_code == 404, r.text
    for bad in ({"account": "staff1", "groups": "resort-staff"},
                {"account": "staff1", "groups": [1]},
                {"account": "staff1", "resort": 5},
                {"account": "staff1", "name": None}):
        r = s.post(op.url("/__test/account"), timeout=10, json=bad)
        assert r.status_code == 400, (bad, r.text)
    r = s.post(op.url("/__test/account"), timeout=10, json={"account": "staff1"})
    assert r.status_code == 200, r.text
    assert r.json()["groups"] == [] and r.json()["name"] == "Staff Renamed", r.json()


def test_revoke_ends_every_refresh_token_of_the_account(oidc_provider):
    op = oidc_provider
    s = op.session()
    a, _ = sign_in(op, "staff1")
    a = refreshed(op, a["refresh_token"])  # a spent refresh token in the store as well
    b, _ = sign_in(op, "staff1")  # a second login (another browser): a grant of its own
    guest, _ = sign_in(op, "guest1")

    r = s.post(op.url("/__test/revoke"), timeout=10, json={"account": "staff1"})
    assert r.status_code == 200, r.text
    # 2 grants, 3 refresh tokens (one spent), 3 access tokens, and the 2 codes (spent, but
    # oidc-provider keeps them until they expire, to catch a replay).
    assert r.json() == {"revoked": 10}, r.json()

    assert_invalid_grant(refresh(op, a["refresh_token"]))
    assert_invalid_grant(refresh(op, b["refresh_token"]))
    # Another account's tokens live on.
    g = jwt_parts(refreshed(op, guest["refresh_token"])["id_token"])[1]
    assert g["sub"] == "guest1", g

    r = s.post(op.url("/__test/revoke"), timeout=10, json={"account": "staff1"})
    assert r.status_code == 200 and r.json() == {"revoked": 0}, r.text
    r = s.post(op.url("/__test/revoke"), timeout=10, json={"account": "nobody"})
    assert r.status_code == 404, r.text

    # staff1 can sign in again afterwards, and gets a working refresh token.
    again, _ = sign_in(op, "staff1")
    assert jwt_parts(refreshed(op, again["refresh_token"])["id_token"])[1]["sub"] == "staff1"
