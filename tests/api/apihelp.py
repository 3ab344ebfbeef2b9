"""Helpers the API tests share: problem documents, metrics, listing every resort or product,
PUT and DELETE, waiting."""
import datetime
import json
import re
import time
from urllib.parse import quote, urlencode

import requests


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
    """PUT of a JSON body (the Server fixture has post_json and patch_json only)."""
    headers = {"Content-Type": "application/json", **kw.pop("headers", {})}
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return requests.put(server.url(path), data=data, headers=headers, timeout=10, **kw)


def delete(server, path, **kw):
    return requests.delete(server.url(path), timeout=10, **kw)


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
