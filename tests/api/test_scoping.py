"""Authorization below the route's role: staff and managers tied to a resort reach only that
resort's data, guests only their own holds and bookings.

The demo catalog gives two resorts, A (rs_jeju) and B (rs_seorak). Local users play the
staff: a manager and a staff member of each resort, and a group-wide manager and staff
member (no resort); the conftest's admin is there too. For every write a resort's manager
may make, a manager of A succeeds on A's data, gets 403 on B's and leaves B's data (its GET
and the event log's head) as it was; the group-wide manager and the admin succeed on both.
Staff-only reads of another resort's data answer 404, word for word what an id that does
not exist gets, so they reveal nothing. Guests come through a real OpenID provider
(tests/oidc), since local users cannot be guests.
"""
import datetime
import os
import sys
from types import SimpleNamespace
from urllib.parse import urlencode, urlsplit

import pytest
import requests

import openapi_contract
from apihelp import head_seq, hold_body, problem, search_all, wait_until

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "oidc"))
from oidc_harness import idp  # noqa: E402,F401 (a fixture)

A, B = "rs_jeju", "rs_seorak"
PA, PB = "pr_jeju_ocean_deluxe", "pr_seorak_mountain_std"  # room types of A and B
RPA, RPB = "rp_jeju_ocean_std", "rp_seorak_std"  # their rate plans
RULES = [{"from": "2027-01-01", "to": "2027-01-31", "amount": 100000}]


# ---- helpers ----

def add_staff(server):
    """The staff of the tests, signed in: {name: Authorization header}."""
    users = {"mgr_a": ("jeju-mgr", "manager", A), "mgr_b": ("seorak-mgr", "manager", B),
             "staff_a": ("jeju-staff", "staff", A), "staff_b": ("seorak-staff", "staff", B),
             "group_mgr": ("group-mgr", "manager", None),
             "group_staff": ("group-staff", "staff", None)}
    out = {}
    for key, (name, role, resort) in users.items():
        server.add_user(name, role, resort=resort)
        out[key] = server.login(name)
    out["admin"] = dict(server.headers)
    return SimpleNamespace(**out)


@pytest.fixture
def demo(demo_server, monkeypatch):
    """The demo server with its staff signed in, every response checked against the
    OpenAPI document."""
    demo_server.u = add_staff(demo_server)
    openapi_contract.install(monkeypatch)
    return demo_server


def refused(r, field=None):
    """A 403 problem naming B as the owner and A as whom the caller acts for."""
    body = problem(r, 403, field)
    assert f"belongs to resort {B}" in body["detail"] and A in body["detail"], body
    return body


def state(server, path):
    """What a refused write must leave alone: path's body and ETag, read by the admin."""
    r = server.get(path)
    assert r.status_code == 200, r.text
    return r.json(), r.headers.get("ETag")


def ok(r, status=200):
    assert r.status_code == status, r.text
    return r.json() if r.content else None


def day(n):
    return (datetime.date.today() + datetime.timedelta(days=n)).isoformat()


# ---- writes: a resort's manager writes only that resort's data ----

def test_product_writes_follow_the_resort(demo):
    s, u = demo, demo.u
    before_b, before_a = state(s, f"/v1/products/{PB}"), state(s, f"/v1/products/{PA}")
    b_products = sorted(p["id"] for p in search_all(s, {"resort": B}))
    seq = head_seq(s)

    refused(s.post_json("/v1/products", {"type": "facility", "resort_id": B, "name": "금지"},
                        headers=u.mgr_a), "resort_id")
    refused(s.put_json(f"/v1/products/{PB}", {"type": "room_type", "resort_id": B,
                                              "name": "바뀐 객실"}, headers=u.mgr_a))
    refused(s.patch_json(f"/v1/products/{PB}", {"name": "바뀐 객실"}, headers=u.mgr_a))
    refused(s.delete(f"/v1/products/{PB}", headers=u.mgr_a))
    # Moving A's own product to B would make it B's: the new resort must be theirs too.
    refused(s.put_json(f"/v1/products/{PA}", {"type": "room_type", "resort_id": B,
                                              "name": "옮긴 객실"}, headers=u.mgr_a),
            "resort_id")
    # B's manager is refused on A's data the same way.
    body = problem(s.patch_json(f"/v1/products/{PA}", {"name": "x"}, headers=u.mgr_b), 403)
    assert f"belongs to resort {A}; you act for {B}" in body["detail"], body

    assert head_seq(s) == seq
    assert state(s, f"/v1/products/{PB}") == before_b
    assert state(s, f"/v1/products/{PA}") == before_a
    assert sorted(p["id"] for p in search_all(s, {"resort": B})) == b_products

    # On A's data the manager of A has the whole life of a product.
    pid = ok(s.post_json("/v1/products", {"type": "facility", "resort_id": A, "name": "새 시설"},
                         headers=u.mgr_a), 201)["id"]
    assert ok(s.put_json(f"/v1/products/{pid}", {"type": "facility", "resort_id": A,
                                                 "name": "고친 시설"}, headers=u.mgr_a))[
        "name"] == "고친 시설"
    assert ok(s.patch_json(f"/v1/products/{pid}", {"description": "a 쪽"},
                           headers=u.mgr_a))["description"] == "a 쪽"
    ok(s.delete(f"/v1/products/{pid}", headers=u.mgr_a), 204)
    assert ok(s.patch_json(f"/v1/products/{PA}", {"description": "by jeju"},
                           headers=u.mgr_a))["description"] == "by jeju"

    # The group-wide manager and the admin write both resorts' products.
    for who, h in (("group", u.group_mgr), ("admin", u.admin)):
        for p, resort in ((PA, A), (PB, B)):
            assert ok(s.put_json(f"/v1/products/{p}", {"type": "room_type", "resort_id": resort,
                                                       "name": f"{who} 객실"}, headers=h))[
                "name"] == f"{who} 객실"
            assert ok(s.patch_json(f"/v1/products/{p}", {"description": f"by {who}"},
                                   headers=h))["description"] == f"by {who}"
        new = ok(s.post_json("/v1/products", {"type": "facility", "resort_id": B,
                                              "name": f"{who} 시설"}, headers=h), 201)
        assert new["resort_id"] == B
        ok(s.delete(f"/v1/products/{new['id']}", headers=h), 204)


def test_rate_plan_writes_follow_the_resort(demo):
    s, u = demo, demo.u
    before = state(s, f"/v1/rate-plans/{RPB}")
    plans_b = state(s, f"/v1/products/{PB}/rate-plans")
    seq = head_seq(s)

    refused(s.post_json(f"/v1/products/{PB}/rate-plans", {"name": "금지", "rules": RULES},
                        headers=u.mgr_a))
    refused(s.put_json(f"/v1/rate-plans/{RPB}", {"name": "금지", "rules": RULES},
                       headers=u.mgr_a))
    refused(s.patch_json(f"/v1/rate-plans/{RPB}", {"name": "금지"}, headers=u.mgr_a))
    refused(s.delete(f"/v1/rate-plans/{RPB}", headers=u.mgr_a))

    assert head_seq(s) == seq
    assert state(s, f"/v1/rate-plans/{RPB}") == before
    assert state(s, f"/v1/products/{PB}/rate-plans") == plans_b

    rp = ok(s.post_json(f"/v1/products/{PA}/rate-plans", {"name": "Early", "rules": RULES},
                        headers=u.mgr_a), 201)["id"]
    assert ok(s.put_json(f"/v1/rate-plans/{rp}", {"name": "Early 2", "rules": RULES},
                         headers=u.mgr_a))["name"] == "Early 2"
    assert ok(s.patch_json(f"/v1/rate-plans/{rp}", {"name": "Early 3"},
                           headers=u.mgr_a))["name"] == "Early 3"
    ok(s.delete(f"/v1/rate-plans/{rp}", headers=u.mgr_a), 204)
    assert ok(s.patch_json(f"/v1/rate-plans/{RPA}", {"name": "Standard A"},
                           headers=u.mgr_a))["name"] == "Standard A"

    for who, h in (("group", u.group_mgr), ("admin", u.admin)):
        for plan in (RPA, RPB):
            assert ok(s.patch_json(f"/v1/rate-plans/{plan}", {"name": f"by {who}"},
                                   headers=h))["name"] == f"by {who}"
        new = ok(s.post_json(f"/v1/products/{PB}/rate-plans", {"name": who, "rules": RULES},
                             headers=h), 201)
        assert new["product_id"] == PB
        ok(s.put_json(f"/v1/rate-plans/{new['id']}", {"name": who + "!", "rules": RULES},
                      headers=h))
        ok(s.delete(f"/v1/rate-plans/{new['id']}", headers=h), 204)


def test_inventory_writes_follow_the_resort(demo):
    s, u = demo, demo.u
    rng = {"from": day(40), "to": day(42)}
    path = lambda p: f"/v1/inventory/{p}?" + urlencode(rng)  # noqa: E731
    before = state(s, path(PB))
    seq = head_seq(s)

    refused(s.put_json(f"/v1/inventory/{PB}", {**rng, "capacity": 3}, headers=u.mgr_a))
    assert head_seq(s) == seq
    assert state(s, path(PB)) == before

    caps = lambda p: [d["capacity"] for d in state(s, path(p))[0]["days"]]  # noqa: E731
    ok(s.put_json(f"/v1/inventory/{PA}", {**rng, "capacity": 3}, headers=u.mgr_a))
    assert caps(PA) == [3, 3]
    for n, h in ((4, u.group_mgr), (5, u.admin)):
        for p in (PA, PB):
            ok(s.put_json(f"/v1/inventory/{p}", {**rng, "capacity": n}, headers=h))
            assert caps(p) == [n, n]


def test_resort_patch_follows_the_resort(demo):
    s, u = demo, demo.u
    before = state(s, f"/v1/resorts/{B}")
    seq = head_seq(s)
    refused(s.patch_json(f"/v1/resorts/{B}", {"stars": 1}, headers=u.mgr_a))
    assert head_seq(s) == seq
    assert state(s, f"/v1/resorts/{B}") == before

    assert ok(s.patch_json(f"/v1/resorts/{A}", {"stars": 4}, headers=u.mgr_a))["stars"] == 4
    for n, h in ((3, u.group_mgr), (2, u.admin)):
        for r in (A, B):
            assert ok(s.patch_json(f"/v1/resorts/{r}", {"stars": n}, headers=h))["stars"] == n


def test_review_moderation_follows_the_resort(demo):
    s, u = demo, demo.u
    # The admin writes one review of a product of each resort (any signed-in user may).
    ra = ok(s.post_json(f"/v1/products/{PA}/reviews", {"rating": 5}), 201)["id"]
    rb = ok(s.post_json(f"/v1/products/{PB}/reviews", {"rating": 4}), 201)["id"]
    before = state(s, f"/v1/reviews/{rb}")
    assert before[0]["state"] == "published"
    seq = head_seq(s)

    refused(s.patch_json(f"/v1/reviews/{rb}", {"state": "hidden"}, headers=u.staff_a))
    refused(s.patch_json(f"/v1/reviews/{rb}", {"state": "hidden"}, headers=u.mgr_a))
    problem(s.patch_json(f"/v1/reviews/{ra}", {"state": "hidden"}, headers=u.staff_b), 403)
    assert head_seq(s) == seq
    assert state(s, f"/v1/reviews/{rb}") == before
    assert state(s, f"/v1/reviews/{ra}")[0]["state"] == "published"

    assert ok(s.patch_json(f"/v1/reviews/{ra}", {"state": "hidden"},
                           headers=u.staff_a))["state"] == "hidden"
    for want, h in (("hidden", u.group_staff), ("published", u.admin)):
        for rv in (ra, rb):
            assert ok(s.patch_json(f"/v1/reviews/{rv}", {"state": want},
                                   headers=h))["state"] == want


# ---- reads: staff-only data of another resort does not exist for its staff ----

def test_staff_only_reads_of_another_resort_answer_404(demo):
    s, u = demo, demo.u
    rng = "?" + urlencode({"from": day(10), "to": day(12)})
    # (path of A's data, the same path with an id that exists nowhere)
    cases = [(f"/v1/rate-plans/{RPA}", "/v1/rate-plans/rp_nowhere"),
             (f"/v1/products/{PA}/rate-plans", "/v1/products/pr_nowhere/rate-plans"),
             (f"/v1/inventory/{PA}{rng}", f"/v1/inventory/pr_nowhere{rng}")]
    for path, missing in cases:
        unknown = problem(s.get(missing), 404)["detail"]
        for h in (u.staff_b, u.mgr_b):
            detail = problem(s.get(path, headers=h), 404)["detail"]
            # Word for word what a missing id gets: the resort's data is not revealed.
            assert detail == unknown.replace("rp_nowhere", RPA).replace("pr_nowhere", PA), \
                (path, detail, unknown)
            assert s.head(path, headers=h).status_code == 404
        for h in (u.staff_a, u.mgr_a, u.group_staff, u.admin):
            assert s.get(path, headers=h).status_code == 200, path
            assert s.head(path, headers=h).status_code == 200, path
    # And the other way round: A's staff do not see B's.
    problem(s.get(f"/v1/rate-plans/{RPB}", headers=u.staff_a), 404)
    assert s.get(f"/v1/rate-plans/{RPB}", headers=u.staff_b).status_code == 200


# ---- holds and bookings: the guest who made them and their resort's staff ----

def sso_demo_server(make_server, op):
    """A demo server that trusts op, with op's client allowed to redirect to its callback."""
    srv = make_server(args=["--oidc-issuer", op.issuer, "--oidc-client-id", op.client_id,
                            "--oidc-client-secret", op.client_secret, "--oidc-ca-file",
                            op.ca_file, "--oidc-scopes", "openid profile email groups",
                            "--demo"])
    op.set_redirect_uris([srv.base + "/auth/callback"])
    return srv


def guest_login(srv, op, user):
    """An IdP user's sign-in; returns its Authorization header (the role must be guest)."""
    r = requests.get(srv.url("/auth/login"), allow_redirects=False, timeout=30)
    assert r.status_code == 302, r.text
    cookie = next(line.split(";")[0].split("=", 1)[1]
                  for line in r.raw.headers.getlist("Set-Cookie") if line.startswith("rsd_oidc="))
    back = urlsplit(op.login(r.headers["Location"], user))
    r = requests.get(srv.url("/auth/callback?" + back.query), allow_redirects=False,
                     headers={"Cookie": f"rsd_oidc={cookie}"}, timeout=30)
    assert r.status_code == 200, r.text
    h = {"Authorization": "Bearer " + r.json()["access_token"]}
    me = requests.get(srv.url("/auth/session"), headers=h, timeout=30).json()
    assert me["role"] == "guest", me
    return h


def test_holds_and_bookings_belong_to_their_guest_and_resort(make_server, idp, monkeypatch):
    s = sso_demo_server(make_server, idp)
    g1, g2 = guest_login(s, idp, "guest1"), guest_login(s, idp, "guest2")
    u = add_staff(s)
    openapi_contract.install(monkeypatch)  # after the IdP's pages, which are no API of ours

    frm, to = day(20), day(22)
    ok(s.put_json(f"/v1/inventory/{PA}", {"from": frm, "to": to, "capacity": 5}))
    held = ok(s.post_json("/v1/holds", hold_body(PA, frm, to), headers=g1), 201)["id"]
    booked = ok(s.post_json("/v1/holds", hold_body(PA, frm, to), headers=g1), 201)["id"]
    bk = ok(s.post_json("/v1/bookings", {"hold_id": booked, "payment": {"method": "desk"}},
                        headers=g1), 201)["id"]
    assert wait_until(lambda: bk in [b["id"] for b in s.get("/v1/bookings").json()["items"]],
                      10)

    def snapshot():
        inv = s.get(f"/v1/inventory/{PA}?" + urlencode({"from": frm, "to": to}))
        return (ok(s.get(f"/v1/bookings/{bk}", headers=g1)),
                ok(s.get(f"/v1/holds/{held}", headers=g1)), inv.text, head_seq(s))

    before = snapshot()
    assert before[0]["state"] == "confirmed" and before[1]["state"] == "held"
    change = {"from": day(21), "to": day(23)}
    for who, h in (("guest2", g2), ("B's staff", u.staff_b), ("B's manager", u.mgr_b)):
        for method, path, body in (
                ("GET", f"/v1/holds/{held}", None),
                ("HEAD", f"/v1/holds/{held}", None),
                ("DELETE", f"/v1/holds/{held}", None),
                ("GET", f"/v1/bookings/{bk}", None),
                ("HEAD", f"/v1/bookings/{bk}", None),
                ("POST", f"/v1/bookings/{bk}/cancel", None),
                ("POST", f"/v1/bookings/{bk}/change-dates", change),
                # An item the booking lacks: still 404, not "the booking has 1 items".
                ("POST", f"/v1/bookings/{bk}/change-dates", {**change, "item": 7})):
            r = s.send_json(method, path, body, headers=h) if body else \
                s.request(method, path, headers=h)
            assert r.status_code == 404, (who, method, path, r.status_code, r.text)
            if method != "HEAD":
                problem(r, 404)
        # Booking another's hold: the hold does not exist for them either.
        problem(s.post_json("/v1/bookings", {"hold_id": held, "payment": {"method": "desk"}},
                            headers=h), 404, "hold_id")
        listed = s.get("/v1/bookings", headers=h)
        assert bk not in [b["id"] for b in ok(listed)["items"]], who
    for action in ("check-in", "check-out", "no-show"):
        problem(s.request("POST", f"/v1/bookings/{bk}/{action}", headers=u.staff_b), 404)
    problem(s.get(f"/v1/bookings?resort={A}", headers=u.staff_b), 403, "resort")
    assert snapshot() == before

    # The booking's resort's staff (and the group's) see it; its guest too.
    for h in (u.staff_a, u.group_staff, g1):
        assert ok(s.get(f"/v1/bookings/{bk}", headers=h))["id"] == bk
        assert ok(s.get(f"/v1/holds/{held}", headers=h))["id"] == held
        assert bk in [b["id"] for b in ok(s.get("/v1/bookings", headers=h))["items"]]
    assert bk in [b["id"] for b in ok(s.get(f"/v1/bookings?resort={A}",
                                            headers=u.staff_a))["items"]]
    # A's staff act on it: they cancel the booking; the guest releases the hold.
    assert ok(s.request("POST", f"/v1/bookings/{bk}/cancel", headers=u.staff_a))[
        "state"] == "cancelled"
    assert ok(s.delete(f"/v1/holds/{held}", headers=g1))["state"] == "released"

    # A hold belongs to whoever made it, whatever their role: B's staff member holding a
    # room of A reads and releases it (and A's staff see it too).
    mine = ok(s.post_json("/v1/holds", hold_body(PA, frm, to), headers=u.staff_b), 201)["id"]
    assert ok(s.get(f"/v1/holds/{mine}", headers=u.staff_b))["state"] == "held"
    assert ok(s.get(f"/v1/holds/{mine}", headers=u.staff_a))["state"] == "held"
    problem(s.get(f"/v1/holds/{mine}", headers=g1), 404)
    assert ok(s.delete(f"/v1/holds/{mine}", headers=u.staff_b))["state"] == "released"

    # Booking it makes the booking theirs to read and cancel, but not A's front desk to
    # run: check-in, check-out and no-show stay with A's staff.
    mine = ok(s.post_json("/v1/holds", hold_body(PA, frm, to), headers=u.staff_b), 201)["id"]
    own = ok(s.post_json("/v1/bookings", {"hold_id": mine, "payment": {"method": "desk"}},
                         headers=u.staff_b), 201)["id"]
    assert ok(s.get(f"/v1/bookings/{own}", headers=u.staff_b))["id"] == own
    before = ok(s.get(f"/v1/bookings/{own}", headers=u.staff_a))
    for action in ("check-in", "check-out", "no-show"):
        problem(s.request("POST", f"/v1/bookings/{own}/{action}", headers=u.staff_b), 404)
    assert ok(s.get(f"/v1/bookings/{own}", headers=u.staff_a)) == before
    # A's staff get past the access check (only the dates stop a check-in today).
    r = s.request("POST", f"/v1/bookings/{own}/check-in", headers=u.staff_a)
    assert r.status_code == 409 and "arrival day" in r.json()["detail"], r.text
