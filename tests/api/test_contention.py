"""Never double-book: many clients race for the last rooms at once. 2,000 clients each hold
one room for the same night and book it at the desk; capacity is 100, so exactly 100
bookings are confirmed and every other hold is a 409 sold_out, and the counters agree with
the bookings. Then, with a short hold TTL, holds that nobody books all expire and their
rooms come back. Every response is validated against schema/openapi.yaml."""
import concurrent.futures
import threading
import time

import pytest

import openapi_contract
from apihelp import (GUEST, counts, get_booking, hold, inventory, problem, set_inventory,
                     wait_until)

P = "pr_jeju_ocean_deluxe"
NIGHT, NEXT = "2027-08-14", "2027-08-15"
WORKERS = 128   # below conns_per_addr_max (256): every worker keeps one connection
CAPACITY = 800  # for the expiry race
TTL_S = 6       # longer than that race takes, so no hold expires during it


@pytest.fixture(autouse=True)
def _contract(monkeypatch):
    openapi_contract.install(monkeypatch)


def race(server, clients, then_book):
    """clients concurrent guests: each holds one room for NIGHT and, when then_book(i),
    books it at the desk. Returns one (hold status, hold body, booking status, booking
    body) per client."""
    local = threading.local()
    start = threading.Barrier(WORKERS)

    def session():
        if not hasattr(local, "s"):
            local.s = server.session()
            start.wait(30)  # every worker ready before the first request
        return local.s

    def client(i):
        s = session()
        body = {"items": [{"product_id": P, "from": NIGHT, "to": NEXT, "qty": 1}],
                "guest": {**GUEST, "email": f"guest{i}@example.com"}}
        h = s.post(server.url("/v1/holds"), json=body, timeout=60)
        if h.status_code != 201 or not then_book(i):
            return h.status_code, h.json(), None, None
        b = s.post(server.url("/v1/bookings"), timeout=60,
                   json={"hold_id": h.json()["id"], "payment": {"method": "desk"}})
        return h.status_code, h.json(), b.status_code, b.json()

    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(client, range(clients)))


def test_2000_clients_for_100_rooms_book_exactly_100(make_server):
    s = make_server(args=["--demo"])
    set_inventory(s, P, NIGHT, NEXT, capacity=100)
    t0 = time.monotonic()
    results = race(s, 2000, lambda i: True)
    elapsed = time.monotonic() - t0
    held = [r for r in results if r[0] == 201]
    refused = [r for r in results if r[0] != 201]
    assert len(held) == 100, f"{len(held)} holds in {elapsed:.1f} s"
    assert len(refused) == 1900
    # Every refusal is a sold-out 409 that says nothing is left.
    odd = [r for r in refused if r[0] != 409 or r[1].get("reason") != "sold_out" or
           r[1].get("remaining") != [{"product_id": P, "date": NIGHT, "available": 0}]]
    assert not odd, odd[:3]
    # Every hold was booked, each into its own booking.
    assert [r[2] for r in held] == [201] * 100, [r[3] for r in held if r[2] != 201][:3]
    ids = {r[3]["id"] for r in held}
    assert len(ids) == 100
    assert {r[3]["hold_id"] for r in held} == {r[1]["id"] for r in held}
    assert all(r[3]["state"] == "confirmed" for r in held)
    day = inventory(s, P, NIGHT, NEXT)[NIGHT]
    assert (day["capacity"], day["sold"], day["held"], day["available"]) == (100, 100, 0, 0)
    for bid in sorted(ids)[:10]:
        assert get_booking(s, bid)["state"] == "confirmed"
    # Nothing is left for the 2001st guest.
    problem(s.post_json("/v1/holds", {"items": [{"product_id": P, "from": NIGHT, "to": NEXT,
                                                 "qty": 1}], "guest": GUEST}), 409)
    assert elapsed < 60, f"the race took {elapsed:.1f} s"


def test_holds_nobody_books_expire_and_the_rooms_come_back(make_server):
    s = make_server(args=["--demo", "--hold-ttl-s", str(TTL_S)])
    set_inventory(s, P, NIGHT, NEXT, capacity=CAPACITY)
    # Guests race; one in five books what it held, the others walk away: more holds expire
    # together than one sweep takes (SWEEP_BATCH_MAX, 512).
    t0 = time.monotonic()
    results = race(s, 900, lambda i: i % 5 == 0)
    elapsed = time.monotonic() - t0
    assert elapsed < TTL_S, f"the race took {elapsed:.1f} s, longer than the hold TTL"
    held = [r for r in results if r[0] == 201]
    assert len(held) == CAPACITY
    assert all(r[0] == 409 for r in results if r[0] != 201)
    booked = [r for r in held if r[2] == 201]
    walked = [r for r in held if r[2] is None]
    # A booking may only be refused because its hold expired first (a slow run).
    late = [r for r in held if r[2] not in (None, 201)]
    assert all(r[2] == 409 and r[3]["field"] == "hold_id" for r in late), late[:3]
    assert len(booked) + len(walked) + len(late) == CAPACITY
    assert len(walked) + len(late) > 512 and booked
    # The TTL plus a sweep every 500 ms.
    assert wait_until(lambda: counts(s, P, NIGHT, NEXT) == [(len(booked), 0)], TTL_S + 3), \
        counts(s, P, NIGHT, NEXT)
    for r in walked[:20] + late:
        assert s.get(f"/v1/holds/{r[1]['id']}").json()["state"] == "expired"
    for r in booked[:20]:
        assert s.get(f"/v1/holds/{r[1]['id']}").json()["state"] == "booked"
        assert get_booking(s, r[3]["id"])["state"] == "confirmed"
    # The rooms that came back can be held again, up to capacity and no further.
    free = CAPACITY - len(booked)
    for qty in [100] * (free // 100) + [free % 100]:
        if qty:
            assert hold(s, P, NIGHT, NEXT, qty)["state"] == "held"
    assert counts(s, P, NIGHT, NEXT) == [(len(booked), free)]
    problem(s.post_json("/v1/holds", {"items": [{"product_id": P, "from": NIGHT, "to": NEXT,
                                                 "qty": 1}], "guest": GUEST}), 409)


def concurrently(n, fn):
    """fn(i) for i in range(n), all at once (as near as threads get); returns the results."""
    start = threading.Barrier(n)

    def run(i):
        start.wait(30)
        return fn(i)
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def test_one_hold_raced_by_many_bookings_is_booked_once(make_server):
    s = make_server(args=["--demo"])
    set_inventory(s, P, NIGHT, NEXT, capacity=1)
    h = hold(s, P, NIGHT, NEXT)
    results = concurrently(50, lambda i: s.request(
        "POST", "/v1/bookings", json={"hold_id": h["id"], "payment": {"method": "desk"},
                                      "guest": {**GUEST, "email": f"g{i}@example.com"}},
        timeout=60))
    won = [r for r in results if r.status_code == 201]
    assert len(won) == 1
    assert all(r.status_code == 409 and r.json()["field"] == "hold_id"
               for r in results if r.status_code != 201)
    assert s.get(f"/v1/holds/{h['id']}").json()["booking_id"] == won[0].json()["id"]
    assert counts(s, P, NIGHT, NEXT) == [(1, 0)]


def test_one_idempotency_key_sent_at_once_many_times_holds_once(make_server):
    s = make_server(args=["--demo"])
    set_inventory(s, P, NIGHT, NEXT, capacity=10)
    body = {"items": [{"product_id": P, "from": NIGHT, "to": NEXT, "qty": 3}], "guest": GUEST}
    results = concurrently(50, lambda i: s.request(
        "POST", "/v1/holds", json=body, headers={"Idempotency-Key": "same-key"}, timeout=60))
    assert {r.status_code for r in results} == {201}
    assert len({r.content for r in results}) == 1  # the first answer, byte for byte
    assert counts(s, P, NIGHT, NEXT) == [(0, 3)]
