"""Reservations end to end with the desk provider: inventory counters and restrictions
(PUT/GET /v1/inventory, If-Match, availability and its reasons), holds (all items and nights
or none, frozen prices, release, expiry), bookings (confirm, Idempotency-Key replay and
mismatch) and a stay's life (cancel with its fee, change of dates, check-in, check-out,
no-show). Bad input must answer a 4xx problem and change nothing: every such case compares
the counters (and the log head) before and after. Every response is validated against
schema/openapi.yaml."""
import datetime
import json
import time

import pytest

import openapi_contract
from openapi_contract import ContractError, contract
from apihelp import (GUEST, book, booking_action, counts, delete, get_booking, head_seq, hold,
                     hold_body, inventory, iso, make_bookable, post_booking, post_hold, problem,
                     put_json, qs, set_inventory, today, wait_until)

P = "pr_jeju_ocean_deluxe"  # the demo's room: 250000 a night, 320000 on fri and sat (2027)
D = datetime.timedelta(days=1)


@pytest.fixture(autouse=True)
def _contract(monkeypatch):
    openapi_contract.install(monkeypatch)


# ---- helpers ----

def prices(server, product, frm, to):
    r = server.get(f"/v1/products/{product}/prices?from={frm}&to={to}")
    assert r.status_code == 200, r.text
    return [d["amount"] for d in r.json()["days"]]


def snapshot(server, product, frm, to):
    """What bad input must leave alone: the product's counters over [frm, to), its
    inventory version and the event log's head."""
    r = server.get(f"/v1/inventory/{product}?from={frm}&to={to}")
    assert r.status_code == 200, r.text
    return r.text, r.headers["ETag"], head_seq(server)


def expect_problems(server, cases, send, product, frm, to):
    """send(case) for each (case, status, field) must answer that problem (field None: no
    field) and change nothing. Collects every miss so one bug does not hide the others."""
    misses = []
    before = snapshot(server, product, frm, to)
    for case, status, field in cases:
        r = send(case)
        shown = json.dumps(case, ensure_ascii=False)[:160]
        if r.status_code != status or r.headers.get("Content-Type") != "application/problem+json":
            misses.append(f"{shown} -> {r.status_code} {r.text[:200]} (want {status} on {field!r})")
            continue
        got = r.json().get("field")
        if got != field:
            misses.append(f"{shown} -> field {got!r}, want {field!r}: {r.json()['detail']}")
        after = snapshot(server, product, frm, to)
        if after != before:
            misses.append(f"{shown} changed state")
            before = after
    assert not misses, "\n".join(misses)


def availability(server, product, frm, to, qty=None, **more):
    q = {"product": product, "from": str(frm), "to": str(to), **more}
    if qty is not None:
        q["qty"] = str(qty)
    r = server.get("/v1/availability?" + qs(q))
    assert r.status_code == 200, r.text
    return r.json()


# ---- inventory ----

def test_inventory_document_before_and_after_a_put(demo_server):
    s = demo_server
    r = s.get(f"/v1/inventory/{P}?from=2027-03-01&to=2027-03-03")
    assert r.status_code == 200 and r.headers["ETag"] == '"1"'
    assert r.headers["Cache-Control"] == "private, no-cache"
    body = r.json()
    assert body == {"product_id": P, "version": 1, "overbooking": 0, "days": [
        {"date": dt, "capacity": 0, "sold": 0, "held": 0, "available": 0, "stop_sell": False,
         "closed_to_arrival": False, "closed_to_departure": False, "min_stay": None,
         "max_stay": None, "min_advance_days": None, "max_advance_days": None}
        for dt in ("2027-03-01", "2027-03-02")]}

    r = set_inventory(s, P, "2027-03-01", "2027-03-04", capacity=5, min_stay=2)
    assert r.headers["ETag"] == '"2"'
    body = r.json()
    assert body["version"] == 2 and [d["date"] for d in body["days"]] == \
        ["2027-03-01", "2027-03-02", "2027-03-03"]
    assert all(d["capacity"] == 5 and d["available"] == 5 and d["min_stay"] == 2
               for d in body["days"])
    # The day before and the end day are not touched.
    around = inventory(s, P, "2027-02-28", "2027-03-05")
    assert around["2027-02-28"]["capacity"] == 0 and around["2027-03-04"]["capacity"] == 0

    # Members not named keep their values; null clears a limit; the version moves.
    r = set_inventory(s, P, "2027-03-02", "2027-03-03", min_stay=None, stop_sell=True,
                      max_advance_days=400)
    assert r.headers["ETag"] == '"3"'
    days = inventory(s, P, "2027-03-01", "2027-03-04")
    assert days["2027-03-02"]["capacity"] == 5 and days["2027-03-02"]["min_stay"] is None
    assert days["2027-03-02"]["stop_sell"] is True and days["2027-03-02"]["max_advance_days"] == 400
    assert days["2027-03-01"]["min_stay"] == 2 and days["2027-03-01"]["stop_sell"] is False
    # HEAD answers the same headers without a body.
    h = s.head(f"/v1/inventory/{P}?from=2027-03-01&to=2027-03-02")
    assert h.status_code == 200 and h.content == b"" and h.headers["ETag"] == '"3"'


def test_inventory_slots_are_counters_of_their_own(demo_server):
    s = demo_server
    pid = "pr_haeundae_spa_pass"
    r = set_inventory(s, pid, "2027-03-01", "2027-03-02", slot="10:00", capacity=4)
    assert r.json()["slot"] == "10:00" and r.json()["days"][0]["capacity"] == 4
    assert inventory(s, pid, "2027-03-01", "2027-03-02")["2027-03-01"]["capacity"] == 0
    other = inventory(s, pid, "2027-03-01", "2027-03-02", slot="11:00")
    assert other["2027-03-01"]["capacity"] == 0
    r = post_hold(s, hold_body(pid, "2027-03-01", "2027-03-02", 3, slot="10:00"))
    assert r.status_code == 201, r.text
    assert r.json()["items"][0]["slot"] == "10:00"
    assert counts(s, pid, "2027-03-01", "2027-03-02", slot="10:00") == [(0, 3)]
    assert counts(s, pid, "2027-03-01", "2027-03-02") == [(0, 0)]
    problem(post_hold(s, hold_body(pid, "2027-03-01", "2027-03-02", 1)), 409)  # whole day: 0
    problem(post_hold(s, hold_body(pid, "2027-03-01", "2027-03-02", 2, slot="10:00")), 409)


def test_a_slots_capacity_and_overbooking_set_together_check_that_slot_only(demo_server):
    s = demo_server
    pid = "pr_haeundae_spa_pass"
    set_inventory(s, pid, "2027-06-01", "2027-06-02", capacity=5)
    hold(s, pid, "2027-06-01", "2027-06-02", 3)  # the whole day: 3 of 5 held
    # The 10:00 slot has nothing taken, so capacity 1 fits; the whole day is untouched.
    r = put_json(s, f"/v1/inventory/{pid}", {"from": "2027-06-01", "to": "2027-06-02",
                                             "slot": "10:00", "capacity": 1, "overbooking": 0})
    assert r.status_code == 200, r.text
    assert counts(s, pid, "2027-06-01", "2027-06-02") == [(0, 3)]
    # Within the slot itself the check holds: 1 held there, capacity 0 is refused.
    r = post_hold(s, hold_body(pid, "2027-06-01", "2027-06-02", 1, slot="10:00"))
    assert r.status_code == 201, r.text
    expect_problems(s, [({"from": "2027-06-01", "to": "2027-06-02", "slot": "10:00",
                          "capacity": 0, "overbooking": 0}, 409, "capacity")],
                    lambda b: put_json(s, f"/v1/inventory/{pid}", b), pid,
                    "2027-06-01", "2027-06-02")


def test_inventory_if_match(demo_server):
    s = demo_server
    set_inventory(s, P, "2027-03-01", "2027-03-03", capacity=3)
    r = put_json(s, f"/v1/inventory/{P}", {"from": "2027-03-01", "to": "2027-03-03",
                                           "capacity": 4}, headers={"If-Match": '"2"'})
    assert r.status_code == 200 and r.headers["ETag"] == '"3"', r.text
    # A guest's hold does not move the inventory version, so If-Match still holds after it.
    hold(s, P, "2027-03-01", "2027-03-02")
    assert s.get(f"/v1/inventory/{P}?from=2027-03-01&to=2027-03-02").headers["ETag"] == '"3"'
    cases = [
        ({"If-Match": '"2"'}, 412, None),      # stale
        ({"If-Match": '"4"'}, 412, None),      # ahead
        ({"If-Match": 'W/"3"'}, 412, None),    # weak tags never match
        ({"If-Match": "3"}, 400, "If-Match"),  # not a tag
        ({"If-Match": '"x"'}, 400, "If-Match"),
    ]
    expect_problems(s, cases, lambda h: put_json(
        s, f"/v1/inventory/{P}", {"from": "2027-03-01", "to": "2027-03-03", "capacity": 9},
        headers=h), P, "2027-03-01", "2027-03-03")
    r = put_json(s, f"/v1/inventory/{P}", {"from": "2027-03-01", "to": "2027-03-03",
                                           "capacity": 9}, headers={"If-Match": '"3"'})
    assert r.status_code == 200 and r.headers["ETag"] == '"4"'
    r = put_json(s, f"/v1/inventory/{P}", {"from": "2027-03-01", "to": "2027-03-03",
                                           "stop_sell": False}, headers={"If-Match": "*"})
    assert r.status_code == 200 and r.headers["ETag"] == '"5"'
    assert [d["capacity"] for d in r.json()["days"]] == [9, 9]


def test_inventory_capacity_cannot_go_below_sold_and_held(demo_server):
    s = demo_server
    set_inventory(s, P, "2027-03-01", "2027-03-04", capacity=3)
    book(s, P, "2027-03-01", "2027-03-03", 1)   # sold 1 on the 1st and 2nd
    hold(s, P, "2027-03-02", "2027-03-04", 1)   # held 1 on the 2nd and 3rd
    assert counts(s, P, "2027-03-01", "2027-03-04") == [(1, 0), (1, 1), (0, 1)]
    cases = [
        ({"from": "2027-03-01", "to": "2027-03-04", "capacity": 1}, 409, "capacity"),  # 2nd
        ({"from": "2027-03-02", "to": "2027-03-03", "capacity": 0}, 409, "capacity"),
        ({"from": "2027-03-01", "to": "2027-03-02", "capacity": 0}, 409, "capacity"),
    ]
    expect_problems(s, cases, lambda b: put_json(s, f"/v1/inventory/{P}", b), P,
                    "2027-03-01", "2027-03-04")
    # Exactly sold + held is allowed: nothing left.
    r = set_inventory(s, P, "2027-03-01", "2027-03-04", capacity=2)
    assert [d["available"] for d in r.json()["days"]] == [1, 0, 1]
    # Overbooking covers the gap; lowering it again below what is taken is refused.
    r = set_inventory(s, P, "2027-03-01", "2027-03-04", capacity=1, overbooking=1)
    assert r.json()["overbooking"] == 1
    assert [d["available"] for d in r.json()["days"]] == [1, 0, 1]
    expect_problems(s, [({"from": "2027-03-01", "to": "2027-03-02", "overbooking": 0}, 409,
                         "capacity")],
                    lambda b: put_json(s, f"/v1/inventory/{P}", b), P, "2027-03-01", "2027-03-04")


def test_overbooking_sells_beyond_capacity_and_no_further(demo_server):
    s = demo_server
    set_inventory(s, P, "2027-03-01", "2027-03-02", capacity=2, overbooking=1)
    for _ in range(3):
        hold(s, P, "2027-03-01", "2027-03-02")
    day0 = inventory(s, P, "2027-03-01", "2027-03-02")["2027-03-01"]
    assert (day0["capacity"], day0["held"], day0["available"]) == (2, 3, 0)
    body = problem(post_hold(s, hold_body(P, "2027-03-01", "2027-03-02")), 409)
    assert body["reason"] == "sold_out"
    assert body["remaining"] == [{"product_id": P, "date": "2027-03-01", "available": 0}]
    a = availability(s, P, "2027-03-01", "2027-03-02")
    assert a["available"] is False and a["reason"] == "sold_out"
    # The allowance is the product's: it applies on every day, set or not in this PUT.
    set_inventory(s, P, "2027-04-01", "2027-04-02", capacity=1)
    assert inventory(s, P, "2027-04-01", "2027-04-02")["2027-04-01"]["available"] == 2


def test_inventory_unknown_or_deleted_product_is_404(demo_server):
    s = demo_server
    body = {"from": "2027-03-01", "to": "2027-03-02", "capacity": 1}
    problem(put_json(s, "/v1/inventory/pr_nope", body), 404)
    problem(put_json(s, "/v1/inventory/" + "x" * 60, body), 404)
    problem(s.get("/v1/inventory/pr_nope?from=2027-03-01&to=2027-03-02"), 404)
    problem(s.get("/v1/availability?product=pr_nope&from=2027-03-01&to=2027-03-02"), 404,
            "product")
    pid = make_bookable(s, [{"from": "2027-01-01", "to": "2027-12-31", "amount": 1000}])
    set_inventory(s, pid, "2027-03-01", "2027-03-02", capacity=1)
    assert delete(s, f"/v1/products/{pid}").status_code == 204
    problem(put_json(s, f"/v1/inventory/{pid}", body), 404)
    problem(s.get(f"/v1/inventory/{pid}?from=2027-03-01&to=2027-03-02"), 404)
    # A package has no inventory of its own.
    r = problem(put_json(s, "/v1/inventory/pr_haeundae_spa_package", body), 409)
    assert "package" in r["detail"]


def test_inventory_bad_input_is_400_and_changes_nothing(demo_server):
    s = demo_server
    set_inventory(s, P, "2027-03-01", "2027-03-03", capacity=2, min_stay=1)
    good = {"from": "2027-03-01", "to": "2027-03-03"}
    cases = [
        ({"to": "2027-03-03", "capacity": 1}, "from"),
        ({"from": "2027-03-01", "capacity": 1}, "to"),
        ({**good, "from": "2027-02-30", "capacity": 1}, "from"),
        ({**good, "from": "27-03-01", "capacity": 1}, "from"),
        ({**good, "from": "1999-12-31", "capacity": 1}, "from"),
        ({**good, "to": "2027-03-01", "capacity": 1}, "to"),        # empty range
        ({**good, "to": "2027-02-01", "capacity": 1}, "to"),        # backwards
        ({**good, "to": "2029-03-02", "capacity": 1}, "to"),        # more than 731 days
        ({**good, "capacity": -1}, "capacity"),
        ({**good, "capacity": 100001}, "capacity"),
        ({**good, "capacity": 1.5}, "capacity"),
        ({**good, "capacity": "3"}, "capacity"),
        ({**good, "capacity": None}, "capacity"),
        ({**good, "overbooking": -1}, "overbooking"),
        ({**good, "stop_sell": "yes"}, "stop_sell"),
        ({**good, "closed_to_arrival": 1}, "closed_to_arrival"),
        ({**good, "min_stay": 0}, "min_stay"),
        ({**good, "max_stay": 61}, "max_stay"),
        ({**good, "min_advance_days": 1001}, "min_advance_days"),
        ({**good, "slot": "25:00", "capacity": 1}, "slot"),
        ({**good, "slot": "1000", "capacity": 1}, "slot"),
        ({**good, "capcity": 1}, "capcity"),                        # unknown member
        (good, None),                                               # nothing to set
        ({**good, "slot": None}, None),
    ]
    expect_problems(s, [(b, 400, f) for b, f in cases],
                    lambda b: put_json(s, f"/v1/inventory/{P}", b), P, "2027-03-01", "2027-03-03")
    raw = [(b"", None), (b"[]", None), (b"{", None),
           (b'{"from":"2027-03-01","from":"2027-03-01","to":"2027-03-02"}', "from")]
    expect_problems(s, [(b.decode(), 400, f) for b, f in raw],
                    lambda b: put_json(s, f"/v1/inventory/{P}", b.encode()), P,
                    "2027-03-01", "2027-03-03")
    # Not JSON at all is a 415.
    r = s.request("PUT", f"/v1/inventory/{P}", data="capacity=1",
                  headers={"Content-Type": "text/plain"})
    problem(r, 415)
    # The GET's query is checked too.
    for q, field in [("to=2027-03-02", "from"), ("from=2027-03-01", "to"),
                     ("from=2027-03-01&to=2027-03-01", "to"),
                     ("from=2027-03-01&to=2029-03-03", "to"),
                     ("from=2027-3-1&to=2027-03-02", "from"),
                     ("from=1999-12-31&to=2000-01-02", "from"),
                     ("from=2027-03-01&to=2027-03-02&slot=9:00", "slot"),
                     ("from=2027-03-01&to=2027-03-02&qty=1", "qty")]:
        problem(s.get(f"/v1/inventory/{P}?{q}"), 400, field)


def test_availability_answers_with_the_first_reason(demo_server):
    s = demo_server
    t = today()
    # Restrictions are read on the arrival day (and closed-to-departure on the departure day).
    set_inventory(s, P, "2027-05-01", "2027-05-31", capacity=2)
    set_inventory(s, P, "2027-05-02", "2027-05-03", closed_to_arrival=True)
    set_inventory(s, P, "2027-05-04", "2027-05-05", closed_to_departure=True)
    set_inventory(s, P, "2027-05-06", "2027-05-07", min_stay=3, max_stay=4)
    set_inventory(s, P, "2027-05-10", "2027-05-11", stop_sell=True)
    near, far = t + 3 * D, t + 200 * D
    set_inventory(s, P, iso(t), iso(t + 300 * D), capacity=2)
    set_inventory(s, P, iso(near), iso(near + D), min_advance_days=5)
    set_inventory(s, P, iso(far), iso(far + D), max_advance_days=100)
    cases = [
        (("2027-05-01", "2027-05-03"), None),
        (("2027-05-02", "2027-05-04"), "closed_to_arrival"),
        (("2027-05-03", "2027-05-05"), None),                   # a night on the 4th is fine
        (("2027-05-03", "2027-05-04"), "closed_to_departure"),
        (("2027-05-06", "2027-05-08"), "min_stay"),
        (("2027-05-06", "2027-05-09"), None),
        (("2027-05-06", "2027-05-11"), "max_stay"),
        (("2027-05-07", "2027-05-08"), None),                   # limits are the arrival day's
        (("2027-05-09", "2027-05-12"), "stop_sell"),
        (("2027-05-10", "2027-05-11"), "stop_sell"),
        ((iso(t - D), iso(t + D)), "in_the_past"),
        ((iso(t), iso(t + D)), None),
        ((iso(near), iso(near + D)), "min_advance"),
        ((iso(near - D), iso(near + D)), None),
        ((iso(far), iso(far + D)), "max_advance"),
        ((iso(far + D), iso(far + 2 * D)), None),
    ]
    misses = []
    for (frm, to), reason in cases:
        a = availability(s, P, frm, to)
        if a["reason"] != reason or a["available"] != (reason is None):
            misses.append(f"{frm}..{to}: {a['reason']} (want {reason})")
    assert not misses, "\n".join(misses)
    # A stop-sell night shows 0; the answer lists every night.
    a = availability(s, P, "2027-05-09", "2027-05-12", qty=2)
    assert a == {"product_id": P, "from": "2027-05-09", "to": "2027-05-12", "qty": 2,
                 "available": False, "reason": "stop_sell",
                 "nights": [{"date": "2027-05-09", "available": 2},
                            {"date": "2027-05-10", "available": 0},
                            {"date": "2027-05-11", "available": 2}]}
    # A hold for a refused stay is refused with the same reason and takes nothing.
    for (frm, to), reason in cases:
        if reason is None:
            continue
        before = counts(s, P, "2027-05-01", "2027-05-31")
        body = problem(post_hold(s, hold_body(P, frm, to)), 409, "items[0]")
        assert body["reason"] == reason, (frm, to, body)
        assert "remaining" not in body
        assert counts(s, P, "2027-05-01", "2027-05-31") == before
    # sold_out: qty beyond what is free, and the nights say how much is.
    hold(s, P, "2027-05-12", "2027-05-13")
    a = availability(s, P, "2027-05-11", "2027-05-14", qty=2)
    assert a["reason"] == "sold_out" and [n["available"] for n in a["nights"]] == [2, 1, 2]
    assert availability(s, P, "2027-05-11", "2027-05-14")["available"] is True
    # Bad queries are 400s naming the parameter.
    for q, field in [
            ("from=2027-05-01&to=2027-05-02", "product"),
            ("product=&from=2027-05-01&to=2027-05-02", "product"),
            (f"product={P}&from=2027-05-01&to=2027-05-02&qty=0", "qty"),
            (f"product={P}&from=2027-05-01&to=2027-05-02&qty=101", "qty"),
            (f"product={P}&from=2027-05-01&to=2027-05-02&qty=1x", "qty"),
            (f"product={P}&from=2027-05-01&to=2027-07-01", "to"),       # more than 60 nights
            (f"product={P}&from=2027-05-02&to=2027-05-01", "to"),
            (f"product={P}&to=2027-05-01", "from"),
            (f"product={P}&from=2027-05-01&to=2027-05-02&slot=x", "slot"),
            (f"product={P}&from=2027-05-01&to=2027-05-02&nights=1", "nights")]:
        problem(s.get("/v1/availability?" + q), 400, field)


# ---- holds ----

def test_hold_prices_every_night_times_qty_and_holds_every_night(demo_server):
    s = demo_server
    frm, to = "2027-03-03", "2027-03-08"  # wed..sun: two weekend nights at 320000
    set_inventory(s, P, "2027-03-01", "2027-03-10", capacity=5)
    nightly = prices(s, P, frm, to)
    assert nightly == [250000, 250000, 320000, 320000, 250000]
    r = post_hold(s, hold_body(P, frm, to, 2, guest={**GUEST, "phone": "+82-10-1234-5678"}))
    assert r.status_code == 201, r.text
    h = r.json()
    assert r.headers["Location"] == f"/v1/holds/{h['id']}"
    assert h["state"] == "held" and h["booking_id"] is None and h["version"] == 1
    item = h["items"][0]
    assert item["amount"] == sum(nightly) * 2 == 2780000
    assert item["currency"] == "KRW" and item["qty"] == 2
    assert (item["from"], item["to"]) == (frm, to)
    assert h["total"] == {"amount": 2780000, "currency": "KRW"}
    assert h["guest"] == {**GUEST, "phone": "+82-10-1234-5678"}
    created = datetime.datetime.fromisoformat(h["created_at"].replace("Z", "+00:00"))
    expires = datetime.datetime.fromisoformat(h["expires_at"].replace("Z", "+00:00"))
    assert expires - created == datetime.timedelta(seconds=600)  # hold_ttl_s' default
    # The nights [from, to) are held, the departure day is not.
    assert counts(s, P, "2027-03-02", "2027-03-09") == \
        [(0, 0), (0, 2), (0, 2), (0, 2), (0, 2), (0, 2), (0, 0)]
    g = s.get(f"/v1/holds/{h['id']}")
    assert g.status_code == 200 and g.json() == h
    assert g.headers["Cache-Control"] == "private, no-store"
    hh = s.head(f"/v1/holds/{h['id']}")
    assert hh.status_code == 200 and hh.content == b""
    # Two items: the total is their sum, each priced on its own.
    set_inventory(s, "pr_jeju_garden_twin", "2027-03-01", "2027-03-10", capacity=1)
    body = hold_body(P, "2027-03-05", "2027-03-06", 1)
    body["items"].append({"product_id": "pr_jeju_garden_twin", "from": "2027-03-05",
                          "to": "2027-03-07", "qty": 1})
    r = post_hold(s, body)
    assert r.status_code == 201, r.text
    amounts = [i["amount"] for i in r.json()["items"]]
    assert amounts == [sum(prices(s, P, "2027-03-05", "2027-03-06")),
                       sum(prices(s, "pr_jeju_garden_twin", "2027-03-05", "2027-03-07"))]
    assert r.json()["total"]["amount"] == sum(amounts) == 320000 + 440000


def test_hold_is_all_or_nothing_over_nights(demo_server):
    s = demo_server
    set_inventory(s, P, "2027-03-01", "2027-03-05", capacity=2)
    set_inventory(s, P, "2027-03-03", "2027-03-04", capacity=1)
    hold(s, P, "2027-03-03", "2027-03-04")
    before = counts(s, P, "2027-03-01", "2027-03-05")
    body = problem(post_hold(s, hold_body(P, "2027-03-01", "2027-03-05")), 409, "items[0]")
    assert body["reason"] == "sold_out"
    assert body["remaining"] == [{"product_id": P, "date": "2027-03-03", "available": 0}]
    assert counts(s, P, "2027-03-01", "2027-03-05") == before == [(0, 0), (0, 0), (0, 1), (0, 0)]
    # qty 2 is short on every night: each one is listed with what it has.
    body = problem(post_hold(s, hold_body(P, "2027-03-01", "2027-03-05", 3)), 409)
    assert [(n["date"], n["available"]) for n in body["remaining"]] == \
        [("2027-03-01", 2), ("2027-03-02", 2), ("2027-03-03", 0), ("2027-03-04", 2)]
    assert counts(s, P, "2027-03-01", "2027-03-05") == before


def test_hold_is_all_or_nothing_over_items(demo_server):
    s = demo_server
    G = "pr_jeju_garden_twin"
    set_inventory(s, P, "2027-03-01", "2027-03-04", capacity=3)
    set_inventory(s, G, "2027-03-01", "2027-03-04", capacity=1)
    body = hold_body(P, "2027-03-01", "2027-03-03", 2)
    body["items"].append({"product_id": G, "from": "2027-03-02", "to": "2027-03-04", "qty": 2})
    before = (counts(s, P, "2027-03-01", "2027-03-04"), counts(s, G, "2027-03-01", "2027-03-04"))
    r = problem(post_hold(s, body), 409, "items[1]")
    assert r["reason"] == "sold_out"
    assert r["remaining"] == [{"product_id": G, "date": "2027-03-02", "available": 1},
                              {"product_id": G, "date": "2027-03-03", "available": 1}]
    assert (counts(s, P, "2027-03-01", "2027-03-04"), counts(s, G, "2027-03-01", "2027-03-04")) \
        == before
    # Items of one request count against each other: 2 + 2 of 3 on the same night.
    body = hold_body(P, "2027-03-01", "2027-03-02", 2)
    body["items"].append({"product_id": P, "from": "2027-03-01", "to": "2027-03-03", "qty": 2})
    r = problem(post_hold(s, body), 409, "items[1]")
    assert r["remaining"] == [{"product_id": P, "date": "2027-03-01", "available": 1}]
    assert counts(s, P, "2027-03-01", "2027-03-04") == before[0]
    body["items"][1]["qty"] = 1
    r = post_hold(s, body)
    assert r.status_code == 201, r.text
    assert counts(s, P, "2027-03-01", "2027-03-04") == [(0, 3), (0, 1), (0, 0)]


def test_hold_release(demo_server):
    s = demo_server
    set_inventory(s, P, "2027-03-01", "2027-03-03", capacity=1)
    h = hold(s, P, "2027-03-01", "2027-03-03")
    assert counts(s, P, "2027-03-01", "2027-03-03") == [(0, 1), (0, 1)]
    r = delete(s, f"/v1/holds/{h['id']}")
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "released" and r.json()["version"] == 2
    assert r.json()["items"] == h["items"]
    assert counts(s, P, "2027-03-01", "2027-03-03") == [(0, 0), (0, 0)]
    assert s.get(f"/v1/holds/{h['id']}").json()["state"] == "released"
    # Released is final: no second release, no booking; the units are free for others.
    expect_problems(s, [("again", 409, None)], lambda _: delete(s, f"/v1/holds/{h['id']}"),
                    P, "2027-03-01", "2027-03-03")
    expect_problems(s, [("book", 409, "hold_id")], lambda _: post_booking(s, h["id"]),
                    P, "2027-03-01", "2027-03-03")
    hold(s, P, "2027-03-01", "2027-03-03")
    problem(delete(s, "/v1/holds/ho_nope"), 404)
    problem(s.get("/v1/holds/ho_nope"), 404)
    problem(s.get("/v1/holds/" + "h" * 60), 404)
    r = s.delete(f"/v1/holds/{h['id']}", data="{}", headers={"Content-Type": "application/json"})
    problem(r, 400)


def test_hold_expires_by_itself(make_server):
    s = make_server(args=["--demo", "--hold-ttl-s", "1"])
    set_inventory(s, P, "2027-03-01", "2027-03-03", capacity=1)
    h = hold(s, P, "2027-03-01", "2027-03-03")
    assert counts(s, P, "2027-03-01", "2027-03-03") == [(0, 1), (0, 1)]
    # TTL 1 s plus a sweep every 500 ms: expired within 3 s.
    assert wait_until(lambda: s.get(f"/v1/holds/{h['id']}").json()["state"] == "expired", 4), \
        s.get(f"/v1/holds/{h['id']}").text
    assert counts(s, P, "2027-03-01", "2027-03-03") == [(0, 0), (0, 0)]
    problem(post_booking(s, h["id"]), 409, "hold_id")
    problem(delete(s, f"/v1/holds/{h['id']}"), 409)
    assert counts(s, P, "2027-03-01", "2027-03-03") == [(0, 0), (0, 0)]
    # Past expires_at a hold cannot be booked, whether or not the sweeper has run yet.
    h3 = hold(s, P, "2027-03-01", "2027-03-02")
    expires = datetime.datetime.fromisoformat(h3["expires_at"].replace("Z", "+00:00"))
    time.sleep(max(0.0, (expires - datetime.datetime.now(datetime.timezone.utc))
                   .total_seconds()) + 0.05)
    problem(post_booking(s, h3["id"]), 409, "hold_id")
    assert wait_until(lambda: counts(s, P, "2027-03-01", "2027-03-03") == [(0, 0), (0, 0)], 3)
    # A hold booked in time is not expired later: its units stay sold.
    h2 = hold(s, P, "2027-03-01", "2027-03-03")
    b = post_booking(s, h2["id"])
    assert b.status_code == 201, b.text
    booked_in_time = b.json()
    time.sleep(2)
    assert s.get(f"/v1/holds/{h2['id']}").json()["state"] == "booked"
    assert get_booking(s, booked_in_time["id"])["state"] == "confirmed"
    assert counts(s, P, "2027-03-01", "2027-03-03") == [(1, 0), (1, 0)]


def test_hold_bad_input_is_4xx_and_holds_nothing(demo_server):
    s = demo_server
    set_inventory(s, P, "2027-03-01", "2027-03-05", capacity=5)
    item = {"product_id": P, "from": "2027-03-01", "to": "2027-03-03", "qty": 1}

    def body(**changes):
        it = {k: v for k, v in {**item, **changes}.items() if v is not ...}
        return {"items": [it], "guest": GUEST}
    cases = [
        ({"guest": GUEST}, 400, "items"),
        ({"items": [], "guest": GUEST}, 400, "items"),
        ({"items": [item] * 9, "guest": GUEST}, 400, "items"),
        ({"items": item, "guest": GUEST}, 400, "items"),
        ({"items": [item]}, 400, "guest"),
        ({"items": [item], "guest": {"name": "Kim"}}, 400, "guest.email"),
        ({"items": [item], "guest": {**GUEST, "email": "no-at-sign"}}, 400, "guest.email"),
        ({"items": [item], "guest": {**GUEST, "email": "a b@c.d"}}, 400, "guest.email"),
        ({"items": [item], "guest": {**GUEST, "name": ""}}, 400, "guest.name"),
        ({"items": [item], "guest": {**GUEST, "age": 3}}, 400, "guest.age"),
        ({"items": [item], "guest": GUEST, "note": "x"}, 400, "note"),
        (body(qty=0), 400, "items[0].qty"),
        (body(qty=101), 400, "items[0].qty"),
        (body(qty="1"), 400, "items[0].qty"),
        (body(qty=...), 400, "items[0].qty"),
        (body(product_id=""), 400, "items[0].product_id"),
        (body(product_id=...), 400, "items[0].product_id"),
        (body(**{"from": "2027-02-29"}), 400, "items[0].from"),
        (body(to="2027-03-01"), 400, "items[0].to"),
        (body(to="2027-05-01"), 400, "items[0].to"),     # 61 nights
        (body(slot="7am"), 400, "items[0].slot"),
        (body(nights=2), 400, "items[0].nights"),
        (body(product_id="pr_nope"), 404, "items[0].product_id"),
        (body(**{"from": "2028-01-01", "to": "2028-01-02"}), 409,          # no price then
         "items[0].product_id"),
        (body(product_id="pr_haeundae_spa_package"), 409, None),            # a package
    ]
    expect_problems(s, cases, lambda b: post_hold(s, b), P, "2027-03-01", "2027-03-05")
    for raw in (b"", b"[]", b"{", b"null"):
        problem(s.post_json("/v1/holds", raw), 400)
    problem(s.request("POST", "/v1/holds", data=json.dumps(body()),
                      headers={"Content-Type": "text/plain"}), 415)
    for key, field in [("k" * 129, "Idempotency-Key"), ("two words", "Idempotency-Key")]:
        problem(post_hold(s, body(), key=key), 400, field)
    assert counts(s, P, "2027-03-01", "2027-03-05") == [(0, 0)] * 4


# ---- bookings with the desk provider ----

def test_desk_booking_confirms_at_once(demo_server):
    s = demo_server
    set_inventory(s, P, "2027-03-01", "2027-03-04", capacity=2)
    h = hold(s, P, "2027-03-01", "2027-03-03", 2)
    assert counts(s, P, "2027-03-01", "2027-03-04") == [(0, 2), (0, 2), (0, 0)]
    other = {"name": "Lee", "email": "lee@example.com", "phone": None}
    r = post_booking(s, h["id"], guest=other)
    assert r.status_code == 201, r.text
    b = r.json()
    assert r.headers["Location"] == f"/v1/bookings/{b['id']}"
    assert b["state"] == "confirmed" and b["hold_id"] == h["id"]
    assert b["items"] == h["items"] and b["total"] == h["total"]
    assert b["guest"] == other
    assert b["payment"] == {"method": "desk", "state": "due", "authorization_id": None,
                            "captured": False}
    assert b["cancellation_fee"] is None and b["failure"] is None and b["version"] == 1
    assert counts(s, P, "2027-03-01", "2027-03-04") == [(2, 0), (2, 0), (0, 0)]
    hd = s.get(f"/v1/holds/{h['id']}").json()
    assert hd["state"] == "booked" and hd["booking_id"] == b["id"]
    g = s.get(f"/v1/bookings/{b['id']}")
    assert g.status_code == 200 and g.json() == b
    assert g.headers["Cache-Control"] == "private, no-store"
    assert s.head(f"/v1/bookings/{b['id']}").status_code == 200
    # The hold is booked: a second booking from it is refused and changes nothing.
    expect_problems(s, [("again", 409, "hold_id")], lambda _: post_booking(s, h["id"]),
                    P, "2027-03-01", "2027-03-04")
    problem(s.get("/v1/bookings/bk_nope"), 404)


def test_booking_bad_input_is_4xx_and_changes_nothing(demo_server):
    s = demo_server
    set_inventory(s, P, "2027-03-01", "2027-03-03", capacity=2)
    h = hold(s, P, "2027-03-01", "2027-03-03")
    cases = [
        ({"payment": {"method": "desk"}}, 400, "hold_id"),
        ({"hold_id": h["id"]}, 400, "payment"),
        ({"hold_id": h["id"], "payment": {}}, 400, "payment.method"),
        ({"hold_id": h["id"], "payment": {"method": "cash"}}, 400, "payment.method"),
        ({"hold_id": h["id"], "payment": {"method": "desk", "card": "x"}}, 400, "payment.card"),
        # No payment_url configured: no online payment.
        ({"hold_id": h["id"], "payment": {"method": "http", "token": "t"}}, 400,
         "payment.method"),
        ({"hold_id": h["id"], "payment": {"method": "http"}}, 400, "payment.token"),
        ({"hold_id": h["id"], "payment": {"method": "desk"}, "guest": {"name": "x"}}, 400,
         "guest.email"),
        ({"hold_id": h["id"], "payment": {"method": "desk"}, "x": 1}, 400, "x"),
        ({"hold_id": "ho_nope", "payment": {"method": "desk"}}, 404, "hold_id"),
    ]
    expect_problems(s, cases, lambda b: s.post_json("/v1/bookings", b), P,
                    "2027-03-01", "2027-03-03")
    assert s.get(f"/v1/holds/{h['id']}").json()["state"] == "held"
    assert counts(s, P, "2027-03-01", "2027-03-03") == [(0, 1), (0, 1)]


def test_idempotent_booking_replays_the_first_answer_byte_for_byte(demo_server):
    s = demo_server
    set_inventory(s, P, "2027-03-01", "2027-03-03", capacity=2)
    h = hold(s, P, "2027-03-01", "2027-03-03")
    first = post_booking(s, h["id"], key="bk-1")
    assert first.status_code == 201, first.text
    assert first.json()["request_key"] == "bk-1"
    again = post_booking(s, h["id"], key="bk-1")
    assert again.status_code == 201 and again.content == first.content
    assert again.headers["Location"] == first.headers["Location"]
    assert counts(s, P, "2027-03-01", "2027-03-03") == [(1, 0), (1, 0)]
    # Same key, another body (another hold, the same hold paid otherwise) or another path.
    h2 = hold(s, P, "2027-03-01", "2027-03-03")
    cases = [
        (("/v1/bookings", {"hold_id": h2["id"], "payment": {"method": "desk"}}), 422,
         "Idempotency-Key"),
        (("/v1/bookings", {"hold_id": h["id"], "payment": {"method": "desk"},
                           "guest": GUEST}), 422, "Idempotency-Key"),
        (("/v1/holds", hold_body(P, "2027-03-01", "2027-03-02")), 422, "Idempotency-Key"),
    ]
    expect_problems(s, cases, lambda c: s.post_json(c[0], c[1],
                                                    headers={"Idempotency-Key": "bk-1"}),
                    P, "2027-03-01", "2027-03-03")
    assert s.get(f"/v1/holds/{h2['id']}").json()["state"] == "held"
    # A refusal is an answer too: replayed as it was, even once the hold could be booked...
    r1 = post_booking(s, h["id"], key="bk-2")
    r2 = post_booking(s, h["id"], key="bk-2")
    assert r1.status_code == r2.status_code == 409 and r1.content == r2.content
    # ... and a key that found no booking leaves nothing behind.
    assert counts(s, P, "2027-03-01", "2027-03-03") == [(1, 1), (1, 1)]


def test_idempotent_hold_and_actions_replay(demo_server):
    s = demo_server
    set_inventory(s, P, "2027-03-01", "2027-03-03", capacity=1)
    body = hold_body(P, "2027-03-01", "2027-03-03")
    first = post_hold(s, body, key="h-1")
    again = post_hold(s, body, key="h-1")
    assert first.status_code == again.status_code == 201
    assert again.content == first.content and again.headers["Location"] == first.headers["Location"]
    assert counts(s, P, "2027-03-01", "2027-03-03") == [(0, 1), (0, 1)]  # held once
    # A sold-out refusal under a key is kept as the answer for that key.
    no1 = post_hold(s, body, key="h-2")
    body409 = problem(no1, 409)
    assert body409["reason"] == "sold_out"
    delete(s, f"/v1/holds/{first.json()['id']}")
    no2 = post_hold(s, body, key="h-2")
    assert no2.status_code == 409 and no2.content == no1.content
    assert counts(s, P, "2027-03-01", "2027-03-03") == [(0, 0), (0, 0)]
    # So is a stay the catalog could not price, even once a price exists.
    late = hold_body(P, "2028-01-10", "2028-01-11")
    set_inventory(s, P, "2028-01-10", "2028-01-11", capacity=1)
    np1 = post_hold(s, late, key="h-3")
    problem(np1, 409, "items[0].product_id")
    r = s.post_json(f"/v1/products/{P}/rate-plans", {"name": "2028", "rules": [
        {"from": "2028-01-01", "to": "2028-12-31", "amount": 260000}]})
    assert r.status_code == 201, r.text
    np2 = post_hold(s, late, key="h-3")
    assert np2.status_code == 409 and np2.content == np1.content
    assert counts(s, P, "2028-01-10", "2028-01-11") == [(0, 0)]
    assert post_hold(s, late, key="h-4").json()["total"]["amount"] == 260000
    # Actions: a cancel replayed answers the first cancel, not "already cancelled".
    b = book(s, P, "2027-03-01", "2027-03-03")
    c1 = booking_action(s, b["id"], "cancel", key="c-1")
    c2 = booking_action(s, b["id"], "cancel", key="c-1")
    assert c1.status_code == c2.status_code == 200 and c1.content == c2.content
    problem(booking_action(s, b["id"], "cancel"), 409)
    # The key stands for the path: the same key on another booking's cancel is a 422.
    b2 = book(s, P, "2027-03-01", "2027-03-03")
    problem(booking_action(s, b2["id"], "cancel", key="c-1"), 422, "Idempotency-Key")
    assert get_booking(s, b2["id"])["state"] == "confirmed"
    assert counts(s, P, "2027-03-01", "2027-03-03") == [(1, 0), (1, 0)]


# ---- a stay's life ----

def test_cancel_fee_follows_the_products_terms(make_server):
    s = make_server()
    t = today()
    rules = [{"from": iso(t), "to": iso(t + 400 * D), "amount": 100001}]
    strict = make_bookable(s, rules, {"cancellation_free_days": 7,
                                      "cancellation_fee_percent": 30})
    lenient = make_bookable(s, rules, name="무료 취소 객실")
    for pid in (strict, lenient):
        set_inventory(s, pid, iso(t), iso(t + 60 * D), capacity=3)
    near, far = t + 3 * D, t + 30 * D
    # Inside the window: 30 % of the item's amount (two nights of 100001).
    b = book(s, strict, near, near + 2 * D)
    assert b["items"][0]["cancellation"] == {"free_days": 7, "fee_percent": 30}
    r = booking_action(s, b["id"], "cancel")
    assert r.status_code == 200, r.text
    c = r.json()
    assert c["state"] == "cancelled" and c["version"] == 2
    assert c["cancellation_fee"] == {"amount": 200002 * 30 // 100, "currency": "KRW"}
    assert c["payment"]["state"] == "due"
    assert get_booking(s, b["id"]) == c
    assert counts(s, strict, near, near + 2 * D) == [(0, 0), (0, 0)]
    # Seven days or more ahead: free.
    b = book(s, strict, t + 7 * D, t + 8 * D)
    c = booking_action(s, b["id"], "cancel").json()
    assert c["cancellation_fee"] == {"amount": 0, "currency": "KRW"}
    assert c["payment"]["state"] == "none"
    b = book(s, strict, far, far + D)
    assert booking_action(s, b["id"], "cancel").json()["cancellation_fee"]["amount"] == 0
    # A product without terms: free_days 0 and fee_percent 100 are frozen, and free.
    b = book(s, lenient, near, near + D)
    assert b["items"][0]["cancellation"] == {"free_days": 0, "fee_percent": 100}
    assert booking_action(s, b["id"], "cancel").json()["cancellation_fee"]["amount"] == 0
    # The terms are frozen in the hold: changing the product later does not change them.
    b = book(s, strict, near, near + D)
    r = s.patch_json(f"/v1/products/{strict}", {"attributes": {"cancellation_fee_percent": 100}})
    assert r.status_code == 200, r.text
    assert booking_action(s, b["id"], "cancel").json()["cancellation_fee"]["amount"] == \
        100001 * 30 // 100
    # Cancelled is final; a body is refused; an unknown booking is a 404.
    expect_problems(s, [("again", 409, None)], lambda _: booking_action(s, b["id"], "cancel"),
                    strict, iso(t), iso(t + 40 * D))
    b = book(s, strict, far, far + D)
    expect_problems(s, [("body", 400, None)],
                    lambda _: booking_action(s, b["id"], "cancel", body={}),
                    strict, iso(t), iso(t + 40 * D))
    problem(booking_action(s, "bk_nope", "cancel"), 404)
    assert get_booking(s, b["id"])["state"] == "confirmed"


def test_change_dates(demo_server):
    s = demo_server
    set_inventory(s, P, "2027-03-01", "2027-03-20", capacity=1)
    b = book(s, P, "2027-03-01", "2027-03-03")  # mon, tue
    assert counts(s, P, "2027-03-01", "2027-03-04") == [(1, 0), (1, 0), (0, 0)]
    # Apart from the old stay: old nights back, new ones sold, repriced.
    r = booking_action(s, b["id"], "change-dates", {"from": "2027-03-05", "to": "2027-03-07"})
    assert r.status_code == 200, r.text
    c = r.json()
    assert (c["items"][0]["from"], c["items"][0]["to"]) == ("2027-03-05", "2027-03-07")
    assert c["items"][0]["amount"] == sum(prices(s, P, "2027-03-05", "2027-03-07")) == 640000
    assert c["total"]["amount"] == 640000 and c["state"] == "confirmed"
    assert counts(s, P, "2027-03-01", "2027-03-08") == \
        [(0, 0)] * 4 + [(1, 0), (1, 0), (0, 0)]
    # Overlapping the old stay with capacity 1: the guest's own room counts as free.
    r = booking_action(s, b["id"], "change-dates", {"from": "2027-03-06", "to": "2027-03-09",
                                                    "item": 0})
    assert r.status_code == 200, r.text
    assert r.json()["total"]["amount"] == sum(prices(s, P, "2027-03-06", "2027-03-09"))
    assert counts(s, P, "2027-03-04", "2027-03-10") == \
        [(0, 0), (0, 0), (1, 0), (1, 0), (1, 0), (0, 0)]
    # New nights that are full: refused with the reason, booking and counters unchanged.
    other = hold(s, P, "2027-03-12", "2027-03-13")
    before_booking = get_booking(s, b["id"])
    cases = [
        ({"from": "2027-03-11", "to": "2027-03-13"}, 409, "items[0]"),
        ({"from": "2027-03-01", "to": "2027-03-03", "item": 1}, 400, "item"),
        ({"from": "2027-03-01", "to": "2027-03-03", "item": 8}, 400, "item"),
        ({"from": "2027-03-03", "to": "2027-03-01"}, 400, "to"),
        ({"from": "2027-03-01"}, 400, "to"),
        ({"from": "2027-03-01", "to": "2027-03-03", "qty": 2}, 400, "qty"),
        ({"from": "2028-03-01", "to": "2028-03-03"}, 409, None),   # no price then
    ]
    expect_problems(s, cases, lambda body: booking_action(s, b["id"], "change-dates", body), P,
                    "2027-03-01", "2027-03-20")
    r = booking_action(s, b["id"], "change-dates", {"from": "2027-03-11", "to": "2027-03-13"})
    body = problem(r, 409)
    assert body["reason"] == "sold_out"
    assert body["remaining"] == [{"product_id": P, "date": "2027-03-12", "available": 0}]
    assert get_booking(s, b["id"]) == before_booking
    delete(s, f"/v1/holds/{other['id']}")
    # A restriction refuses it too.
    set_inventory(s, P, "2027-03-15", "2027-03-16", closed_to_arrival=True)
    body = problem(booking_action(s, b["id"], "change-dates",
                                  {"from": "2027-03-15", "to": "2027-03-17"}), 409)
    assert body["reason"] == "closed_to_arrival"
    assert get_booking(s, b["id"]) == before_booking
    problem(booking_action(s, "bk_nope", "change-dates", {"from": "2027-03-01",
                                                          "to": "2027-03-02"}), 404)
    # Only a confirmed booking moves.
    assert booking_action(s, b["id"], "cancel").status_code == 200
    expect_problems(s, [({"from": "2027-03-01", "to": "2027-03-02"}, 409, None)],
                    lambda body: booking_action(s, b["id"], "change-dates", body), P,
                    "2027-03-01", "2027-03-20")


def test_change_dates_follows_the_cancellation_terms(make_server):
    s = make_server()
    t = today()
    pid = make_bookable(s, [{"from": iso(t), "to": iso(t + 400 * D), "amount": 70000}],
                        {"cancellation_free_days": 7, "cancellation_fee_percent": 50})
    set_inventory(s, pid, iso(t), iso(t + 90 * D), capacity=2)
    # Inside the window the dates no longer change: that would dodge the fee.
    near = book(s, pid, t + 3 * D, t + 4 * D)
    expect_problems(s, [({"from": iso(t + 40 * D), "to": iso(t + 41 * D)}, 409, None)],
                    lambda body: booking_action(s, near["id"], "change-dates", body),
                    pid, iso(t), iso(t + 90 * D))
    assert get_booking(s, near["id"]) == near
    # Outside it they do, and the new dates are sold on the catalog's terms of now.
    far = book(s, pid, t + 30 * D, t + 31 * D)
    r = s.patch_json(f"/v1/products/{pid}", {"attributes": {"cancellation_free_days": 3,
                                                            "cancellation_fee_percent": 20}})
    assert r.status_code == 200, r.text
    r = booking_action(s, far["id"], "change-dates", {"from": iso(t + 50 * D),
                                                      "to": iso(t + 52 * D)})
    assert r.status_code == 200, r.text
    item = r.json()["items"][0]
    assert item["cancellation"] == {"free_days": 3, "fee_percent": 20}
    assert item["amount"] == r.json()["total"]["amount"] == 140000
    assert counts(s, pid, t + 30 * D, t + 31 * D) == [(0, 0)]
    assert counts(s, pid, t + 50 * D, t + 52 * D) == [(1, 0), (1, 0)]


def _stay_from_today(s, nights=3, capacity=2):
    t = today()
    pid = make_bookable(s, [{"from": iso(t - 2 * D), "to": iso(t + 60 * D), "amount": 90000}])
    set_inventory(s, pid, iso(t - 2 * D), iso(t + 30 * D), capacity=capacity)
    return pid, t, t + nights * D


def test_check_in_and_early_check_out(make_server):
    s = make_server()
    pid, t, end = _stay_from_today(s)
    b = book(s, pid, t, end)
    assert counts(s, pid, t, end) == [(1, 0)] * 3
    # Check-out before check-in, and a future stay's check-in, are refused.
    future = book(s, pid, t + 5 * D, t + 6 * D)
    expect_problems(s, [("out", 409, None)], lambda _: booking_action(s, b["id"], "check-out"),
                    pid, iso(t), iso(end))
    expect_problems(s, [("in", 409, None)],
                    lambda _: booking_action(s, future["id"], "check-in"), pid, iso(t), iso(end))
    r = booking_action(s, b["id"], "check-in")
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "checked_in"
    problem(booking_action(s, b["id"], "check-in"), 409)
    problem(booking_action(s, b["id"], "cancel"), 409)
    problem(booking_action(s, b["id"], "no-show"), 409)
    problem(booking_action(s, b["id"], "change-dates", {"from": iso(t), "to": iso(end)}), 409)
    # Leaving on the arrival day: the first night is kept, the others go back on sale.
    r = booking_action(s, b["id"], "check-out")
    assert r.status_code == 200, r.text
    c = r.json()
    assert c["state"] == "checked_out" and c["items"][0]["to"] == iso(t + D)
    assert counts(s, pid, t, end) == [(1, 0), (0, 0), (0, 0)]
    assert get_booking(s, b["id"]) == c
    problem(booking_action(s, b["id"], "check-out"), 409)
    problem(booking_action(s, "bk_nope", "check-in"), 404)


def test_no_show_keeps_the_first_night(make_server):
    s = make_server()
    pid, t, end = _stay_from_today(s)
    b = book(s, pid, t, end, 2)
    future = book(s, pid, t + 5 * D, t + 7 * D)
    expect_problems(s, [("future", 409, None)],
                    lambda _: booking_action(s, future["id"], "no-show"), pid, iso(t), iso(end))
    # Once the stay has begun it is no longer cancelled: a no-show or a check-in.
    expect_problems(s, [("begun", 409, None)],
                    lambda _: booking_action(s, b["id"], "cancel"), pid, iso(t), iso(end))
    r = booking_action(s, b["id"], "no-show")
    assert r.status_code == 200, r.text
    c = r.json()
    assert c["state"] == "no_show" and c["items"][0]["to"] == iso(t + D)
    assert counts(s, pid, t, end) == [(2, 0), (0, 0), (0, 0)]
    # The freed nights can be sold again; the no-show is final.
    book(s, pid, t + D, end, 2)
    for action in ("no-show", "check-in", "cancel"):
        problem(booking_action(s, b["id"], action), 409)
    assert counts(s, pid, t, end) == [(2, 0), (2, 0), (2, 0)]


def test_bookings_list_and_occupancy_follow_the_bookings(demo_server):
    s = demo_server
    G = "pr_jeju_garden_twin"
    set_inventory(s, P, "2027-03-01", "2027-03-10", capacity=4)
    set_inventory(s, G, "2027-03-01", "2027-03-10", capacity=2)
    first = book(s, P, "2027-03-02", "2027-03-04", 2)
    second = book(s, G, "2027-03-01", "2027-03-02")
    third = book(s, P, "2027-03-05", "2027-03-06")
    assert booking_action(s, third["id"], "cancel").status_code == 200
    # The list reads the read model: wait until it shows the cancellation.

    def listed(q=""):
        r = s.get("/v1/bookings?" + q)
        assert r.status_code == 200, r.text
        return r.json()
    assert wait_until(lambda: [b["state"] for b in listed("limit=100")["items"]] ==
                      ["confirmed", "confirmed", "cancelled"], 5), listed()
    page = listed("limit=100")
    assert [b["id"] for b in page["items"]] == [second["id"], first["id"], third["id"]]
    assert page["next_cursor"] is None
    assert page["items"][1] == get_booking(s, first["id"])
    # Pages of one follow each other without a gap or a repeat.
    seen, cursor = [], None
    for _ in range(4):
        pg = listed("limit=1" + (f"&cursor={cursor}" if cursor else ""))
        seen += [b["id"] for b in pg["items"]]
        cursor = pg["next_cursor"]
        if cursor is None:
            break
    assert seen == [second["id"], first["id"], third["id"]]
    assert [b["id"] for b in listed("state=cancelled")["items"]] == [third["id"]]
    assert [b["id"] for b in listed(f"product={G}")["items"]] == [second["id"]]
    assert [b["id"] for b in listed("from=2027-03-03&to=2027-03-06")["items"]] == \
        [first["id"], third["id"]]
    for q, field in [("state=gone", "state"), ("limit=0", "limit"), ("limit=101", "limit"),
                     ("cursor=x", "cursor"), ("from=2027-03-01", "to"),
                     ("from=2027-03-02&to=2027-03-01", "to"), ("sort=id", "sort")]:
        problem(s.get("/v1/bookings?" + q), 400, field)
    # Occupancy: capacity and sold per day of the chosen products; cancelled sells nothing.
    r = s.get(f"/v1/reports/occupancy?from=2027-03-01&to=2027-03-06&product={P}")
    assert r.status_code == 200, r.text
    assert [(d["date"], d["capacity"], d["sold"], d["arrivals"], d["departures"])
            for d in r.json()["days"]] == [
        ("2027-03-01", 4, 0, 0, 0), ("2027-03-02", 4, 2, 1, 0), ("2027-03-03", 4, 2, 0, 0),
        ("2027-03-04", 4, 0, 0, 1), ("2027-03-05", 4, 0, 0, 0)]
    assert r.json()["days"][1]["occupancy"] == 0.5
    r = s.get("/v1/reports/occupancy?from=2027-03-01&to=2027-03-02")
    day = r.json()["days"][0]
    assert (day["capacity"], day["sold"]) == (4 + 2, 1) and day["arrivals"] == 1
    problem(s.get("/v1/reports/occupancy?from=2027-03-01"), 400, "to")
    problem(s.get("/v1/reports/occupancy?from=2027-03-01&to=2028-03-02"), 400, "to")


def test_the_request_schemas_take_what_the_server_takes():
    c = contract()
    good = [
        (hold_body(P, "2027-03-01", "2027-03-03", 2, slot="10:00"), "HoldCreate"),
        ({"items": [{"product_id": P, "from": "2027-03-01", "to": "2027-03-02", "qty": 1}],
          "guest": {**GUEST, "phone": None}}, "HoldCreate"),
        ({"from": "2027-03-01", "to": "2027-03-02", "capacity": 0}, "InventorySet"),
        ({"from": "2027-03-01", "to": "2027-03-02", "slot": None, "min_stay": None},
         "InventorySet"),
        ({"hold_id": "ho_1", "payment": {"method": "http", "token": "t"}, "guest": GUEST},
         "BookingCreate"),
        ({"from": "2027-03-01", "to": "2027-03-02", "item": 7}, "BookingChangeDates"),
    ]
    for body, name in good:
        c.validate_body(body, name)
    bad = [
        ({"items": [], "guest": GUEST}, "HoldCreate"),
        (hold_body(P, "2027-03-01", "2027-03-03", 101), "HoldCreate"),
        ({"from": "2027-03-01", "to": "2027-03-02"}, "InventorySet"),
        ({"from": "2027-03-01", "to": "2027-03-02", "min_stay": 0}, "InventorySet"),
        ({"hold_id": "ho_1", "payment": {"method": "cash"}}, "BookingCreate"),
        ({"from": "2027-03-01", "to": "2027-03-02", "item": 8}, "BookingChangeDates"),
    ]
    for body, name in bad:
        with pytest.raises(ContractError):
            c.validate_body(body, name)


# ---- regressions: bugs found and fixed ----

def test_early_check_out_gives_back_every_night_from_today(make_server):
    s = make_server()
    t = today()
    rules = [{"from": iso(t), "to": iso(t + 30 * D), "amount": 50000}]
    room, extra = make_bookable(s, rules), make_bookable(s, rules, name="엑스트라 베드")
    for pid in (room, extra):
        set_inventory(s, pid, iso(t), iso(t + 10 * D), capacity=2)
    body = hold_body(room, t, t + 3 * D)
    body["items"].append({"product_id": extra, "from": iso(t + D), "to": iso(t + 3 * D),
                          "qty": 1})
    h = post_hold(s, body).json()
    b = post_booking(s, h["id"]).json()
    assert booking_action(s, b["id"], "check-in").status_code == 200
    assert booking_action(s, b["id"], "check-out").status_code == 200
    assert counts(s, room, t, t + 3 * D) == [(1, 0), (0, 0), (0, 0)]
    # The guest left today: the extra bed from tomorrow on is not used.
    assert counts(s, extra, t, t + 3 * D) == [(0, 0), (0, 0), (0, 0)]


def test_the_inventory_etag_works_in_if_match_before_the_first_change(demo_server):
    s = demo_server
    pid = "pr_seorak_cable"
    etag = s.get(f"/v1/inventory/{pid}?from=2027-03-01&to=2027-03-02").headers["ETag"]
    r = put_json(s, f"/v1/inventory/{pid}", {"from": "2027-03-01", "to": "2027-03-02",
                                             "capacity": 3}, headers={"If-Match": etag})
    assert r.status_code == 200, r.text
