"""Helpers the API tests share: problem documents, metrics, listing every resort or product,
PUT and DELETE, waiting."""
import datetime
import re
import time
from urllib.parse import quote, urlencode


def problem(resp, status, field=None):
    """Asserts resp is a problem document with status (and field); returns its body."""
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"] == "application/problem+json"
    body = resp.json()
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert body["title"] and body["detail"]
    if field is not None:
        assert body.get("field") == field, body
    return body


def metric(server, name):
    """The value of metric name (the first sample, labels ignored) from /metrics."""
    text = server.get("/metrics").text
    m = re.search(r"^" + re.escape(name) + r"(?:\{[^}]*\})? ([0-9.eE+-]+)$", text, re.M)
    assert m, f"metric {name} missing from /metrics"
    return float(m.group(1))


def head_seq(server):
    return int(metric(server, "resortd_log_head_seq"))


def follow_pages(server, path_for, limit, what, max_pages=100000, check=None):
    """Follows next_cursor from path_for(None); path_for(cursor) is each page's path. Asserts
    that every page is a 200 of at most limit items, that only a full page has a next one,
    and that no item appears on two pages; check(response) may assert more. Returns
    (items, pages)."""
    items, cursor, pages = [], None, 0
    while True:
        r = server.get(path_for(cursor))
        assert r.status_code == 200, r.text
        if check:
            check(r)
        page = r.json()
        assert len(page["items"]) <= limit
        items += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(page["items"]) == limit  # only a full page has a next one
        assert pages < max_pages, f"{what} did not end"
    ids = [i["id"] for i in items]
    assert len(ids) == len(set(ids)), f"a {what} item appeared on two pages"
    return items, pages


def list_resorts(server, limit=100):
    """Every resort, following next_cursor; asserts pages neither skip nor repeat.
    Returns (items, pages)."""
    items, pages = follow_pages(
        server,
        lambda cursor: f"/v1/resorts?limit={limit}" + (f"&cursor={cursor}" if cursor else ""),
        limit, "resort listing")
    ids = [i["id"] for i in items]
    assert ids == sorted(ids), "pages are not in id order"
    return items, pages


def all_resorts(server):
    return list_resorts(server)[0]


def wait_until(pred, timeout, step=0.02):
    """Polls pred until it is true or timeout seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        ok = pred()
        if ok or time.monotonic() >= deadline:
            return ok
        time.sleep(step)


def put_json(server, path, body, **kw):
    """PUT of a JSON body (kept for the tests that import it; the same as server.put_json)."""
    return server.put_json(path, body, **kw)


def delete(server, path, **kw):
    return server.delete(path, **kw)


def qs(params):
    """A query string with spaces as %20 (requests' params= writes '+')."""
    pairs = list(params.items()) if isinstance(params, dict) else list(params)
    return urlencode(pairs, quote_via=quote, safe="")


def search_all(server, params=(), limit=100):
    """Every product GET /v1/products?params finds, following next_cursor; asserts that the
    pages neither repeat a product nor end early. params: a dict or a list of pairs."""
    base = list(params.items()) if isinstance(params, dict) else list(params)
    items, _ = follow_pages(
        server,
        lambda cursor: "/v1/products?" + qs(base + [("limit", str(limit))] +
                                            ([("cursor", cursor)] if cursor else [])),
        limit, "search", max_pages=10000)
    return items


# ---- the reference model of prices (price.h), for tests to compare the server with ----

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def day(s):
    return datetime.date.fromisoformat(s)


def plan_amount(rules, d):
    """Within a plan the last rule covering d wins; None when no rule covers it."""
    amount = None
    for r in rules:
        if day(r["from"]) <= d <= day(r["to"]) and \
                WEEKDAYS[d.weekday()] in r.get("weekdays", WEEKDAYS):
            amount = r["amount"]
    return amount


# ---- reservations: products to book, inventory counters, holds and bookings ----

GUEST = {"name": "김민수", "email": "minsu@example.com"}


def today():
    """The server's "today": it runs in the same time zone as the tests."""
    return datetime.date.today()


def iso(d):
    return d.isoformat()


def make_bookable(server, rules, attributes=None, resort_name="예약 리조트", name="예약 객실"):
    """A resort, a room-type product (with attributes) and one rate plan of rules;
    returns the product id. The plan's 201 means its prices are readable (read-your-write),
    so a hold can price the product at once."""
    r = server.post_json("/v1/resorts", {"name": resort_name})
    assert r.status_code == 201, r.text
    body = {"type": "room_type", "resort_id": r.json()["id"], "name": name}
    if attributes is not None:
        body["attributes"] = attributes
    r = server.post_json("/v1/products", body)
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    r = server.post_json(f"/v1/products/{pid}/rate-plans", {"name": "Standard", "rules": rules})
    assert r.status_code == 201, r.text
    return pid


def set_inventory(server, product, frm, to, headers=None, **fields):
    """PUT /v1/inventory/{product} over [frm, to); asserts a 200 and returns the response."""
    r = put_json(server, f"/v1/inventory/{product}", {"from": str(frm), "to": str(to), **fields},
                 headers=headers or {})
    assert r.status_code == 200, r.text
    return r


def inventory(server, product, frm, to, slot=None):
    """{date: day} of GET /v1/inventory/{product} over [frm, to)."""
    q = {"from": str(frm), "to": str(to)}
    if slot:
        q["slot"] = slot
    r = server.get(f"/v1/inventory/{product}?" + qs(q))
    assert r.status_code == 200, r.text
    return {d["date"]: d for d in r.json()["days"]}


def counts(server, product, frm, to, slot=None):
    """[(sold, held)] per day of [frm, to): what bookings and holds change."""
    return [(d["sold"], d["held"]) for d in inventory(server, product, frm, to, slot).values()]


def hold_body(product, frm, to, qty=1, guest=None, **more):
    return {"items": [{"product_id": product, "from": str(frm), "to": str(to), "qty": qty,
                       **more}], "guest": guest or GUEST}


def post_hold(server, body, key=None):
    return server.post_json("/v1/holds", body, headers={"Idempotency-Key": key} if key else {})


def hold(server, product, frm, to, qty=1):
    """A hold of qty units of product over [frm, to); asserts a 201 and returns it."""
    r = post_hold(server, hold_body(product, frm, to, qty))
    assert r.status_code == 201, r.text
    return r.json()


def post_booking(server, hold_id, method="desk", key=None, token=None, **more):
    pay = {"method": method}
    if token is not None:
        pay["token"] = token
    return server.post_json("/v1/bookings", {"hold_id": hold_id, "payment": pay, **more},
                            headers={"Idempotency-Key": key} if key else {})


def book(server, product, frm, to, qty=1):
    """A desk booking of qty units over [frm, to); asserts a 201 and returns it."""
    r = post_booking(server, hold(server, product, frm, to, qty)["id"])
    assert r.status_code == 201, r.text
    return r.json()


def booking_action(server, booking_id, action, body=None, key=None):
    """POST /v1/bookings/{id}/{action}: no body unless one is given (change-dates)."""
    headers = {"Idempotency-Key": key} if key else {}
    if body is None:
        return server.request("POST", f"/v1/bookings/{booking_id}/{action}", headers=headers)
    return server.post_json(f"/v1/bookings/{booking_id}/{action}", body, headers=headers)


def get_booking(server, booking_id):
    r = server.get(f"/v1/bookings/{booking_id}")
    assert r.status_code == 200, r.text
    return r.json()


def vm_rss_kib(pid):
    """VmRSS of process pid, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")
