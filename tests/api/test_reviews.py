"""Reviews end to end: create (one per guest per product), X-Guest-Id, validation, the list
(newest first, paged), staff moderation, the product's rating and ETag, sort=rating, unknown
and deleted products, racing posts. Every response is validated against schema/openapi.yaml."""
import concurrent.futures
import re
import subprocess
import threading
from decimal import ROUND_HALF_UP, Decimal

import pytest
import requests

import openapi_contract
from apihelp import follow_pages, head_seq, problem
from conftest import BIN

JSON = {"Content-Type": "application/json"}
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
PUBLIC = "public, max-age=60"
PRIVATE = "private, no-cache"


@pytest.fixture(autouse=True)
def _contract(monkeypatch):
    openapi_contract.install(monkeypatch)


# ---- helpers ----

def guest(g):
    return {"X-Guest-Id": g}


def make_resort(server):
    r = server.post_json("/v1/resorts", {"name": "리뷰 리조트"})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def make_product(server, resort_id, name="오션뷰 디럭스"):
    r = server.post_json("/v1/products", {"type": "room_type", "resort_id": resort_id,
                                          "name": name})
    assert r.status_code == 201, r.text
    return r.json()["id"]


@pytest.fixture
def product(server):
    return make_product(server, make_resort(server))


def post_review(server, pid, g, body):
    return server.post_json(f"/v1/products/{pid}/reviews", body, headers=guest(g))


def review(server, pid, g, rating, **more):
    r = post_review(server, pid, g, {"rating": rating, **more})
    assert r.status_code == 201, r.text
    return r.json()


def moderate(server, rvid, state, **headers):
    return server.patch_json(f"/v1/reviews/{rvid}", {"state": state}, headers=headers)


def hide(server, rvid):
    r = moderate(server, rvid, "hidden")
    assert r.status_code == 200, r.text
    return r.json()


def show(server, rvid):
    r = moderate(server, rvid, "published")
    assert r.status_code == 200, r.text
    return r.json()


def get_product(server, pid, **kw):
    r = server.get(f"/v1/products/{pid}", **kw)
    assert r.status_code == 200, r.text
    return r


def expected_rating(ratings):
    """count and average (2 decimals, half up) of the published ratings, as the document has
    them."""
    if not ratings:
        return {"count": 0, "average": None}
    avg = (Decimal(sum(ratings)) / Decimal(len(ratings))).quantize(Decimal("0.01"),
                                                                   ROUND_HALF_UP)
    return {"count": len(ratings), "average": float(avg)}


def assert_rating(server, pid, ratings):
    want = expected_rating(ratings)
    r = get_product(server, pid)
    got = r.json()["rating"]
    assert got["count"] == want["count"], (got, ratings)
    if want["average"] is None:
        assert got["average"] is None, (got, ratings)
    else:
        assert got["average"] == pytest.approx(want["average"], abs=1e-9), (got, ratings)
    # The ETag is "VERSION" without published reviews, "VERSION.COUNT.SUM" with them.
    version = r.json()["version"]
    tag = f'"{version}.{len(ratings)}.{sum(ratings)}"' if ratings else f'"{version}"'
    assert r.headers["ETag"] == tag
    return r


def list_reviews(server, pid, limit=100):
    """Every published review of pid, following next_cursor; asserts pages neither skip nor
    repeat. Returns (items, pages)."""
    def check(r):
        assert r.headers["Cache-Control"] == PUBLIC
    return follow_pages(
        server,
        lambda cursor: f"/v1/products/{pid}/reviews?limit={limit}" + (
            f"&cursor={cursor}" if cursor else ""),
        limit, "review listing", max_pages=10000, check=check)


def review_ids(server, pid, limit=100):
    return [i["id"] for i in list_reviews(server, pid, limit)[0]]


# ---- create ----

def test_create_review(server, product):
    r = post_review(server, product, "guest-1",
                    {"rating": 4, "title": "바다 전망 🌊", "body": "조용하고 \"깨끗\" \\ 해요"})
    assert r.status_code == 201, r.text
    rv = r.json()
    assert re.match(r"^rv_[A-Za-z0-9_-]+$", rv["id"])
    assert r.headers["Location"] == f"/v1/reviews/{rv['id']}"
    assert r.headers["ETag"] == '"1"'
    assert r.headers["Cache-Control"] == PRIVATE
    assert rv["product_id"] == product and rv["author_id"] == "guest-1"
    assert rv["rating"] == 4 and rv["title"] == "바다 전망 🌊"
    assert rv["body"] == "조용하고 \"깨끗\" \\ 해요"
    assert rv["state"] == "published" and rv["version"] == 1
    assert TS_RE.match(rv["created_at"]) and rv["created_at"] == rv["updated_at"]
    # Read-your-write: in the list and in the product's rating at once.
    assert list_reviews(server, product)[0] == [rv]
    assert_rating(server, product, [4])
    # title and body default to ""; the longest ones fit; an integral float is an integer.
    rv2 = review(server, product, "guest-2", 5)
    assert rv2["title"] == "" and rv2["body"] == ""
    rv3 = review(server, product, "g" * 64, 1, title="가" * 200, body="나" * 5000)
    assert rv3["author_id"] == "g" * 64 and len(rv3["title"]) == 200
    r = server.post_json(f"/v1/products/{product}/reviews", b'{"rating": 3.0}',
                         headers=guest("a.B-9_@x"))
    assert r.status_code == 201 and r.json()["rating"] == 3
    assert r.json()["author_id"] == "a.B-9_@x"
    assert_rating(server, product, [4, 5, 1, 3])
    # merge-patch+json is JSON too; anything else is a 415.
    r = server.post_json(f"/v1/products/{product}/reviews", {"rating": 2},
                         headers={**guest("guest-5"),
                                  "Content-Type": "application/merge-patch+json"})
    assert r.status_code == 201, r.text
    before = head_seq(server)
    problem(requests.post(server.url(f"/v1/products/{product}/reviews"), data=b'{"rating": 2}',
                          headers=guest("guest-6"), timeout=10), 415)
    assert head_seq(server) == before


def test_one_review_per_guest_per_product(server, product):
    rid = make_resort(server)
    other = make_product(server, rid, "다른 객실")
    first = review(server, product, "alice", 5, title="first")
    seq = head_seq(server)
    for body in ({"rating": 5, "title": "first"}, {"rating": 1, "title": "again"}):
        b = problem(post_review(server, product, "alice", body), 409)
        assert "alice" in b["detail"]
        assert head_seq(server) == seq  # nothing was written
    assert list_reviews(server, product)[0] == [first]
    assert_rating(server, product, [5])
    # The same guest on another product, and another guest on this one, are fine.
    review(server, other, "alice", 2)
    review(server, product, "bob", 3)
    # Guest ids are compared exactly.
    review(server, product, "Alice", 4)
    assert_rating(server, product, [5, 3, 4])
    assert_rating(server, other, [2])
    # A hidden review still counts as the guest's one review.
    hide(server, first["id"])
    seq = head_seq(server)
    problem(post_review(server, product, "alice", {"rating": 1}), 409)
    assert head_seq(server) == seq
    assert_rating(server, product, [3, 4])


@pytest.mark.parametrize("value", [
    None,                      # no header at all
    "",
    "a" * 65,
    "has space",
    "slash/no",
    "colon:no",
    "plus+no",
    "ü".encode("utf-8"),
    "quote\"no",
])
def test_401_without_a_valid_guest(server, product, value):
    seq = head_seq(server)
    headers = {} if value is None else guest(value)
    r = server.post_json(f"/v1/products/{product}/reviews", {"rating": 5}, headers=headers)
    problem(r, 401, "X-Guest-Id")
    # The guest is checked before the body.
    r = server.post_json(f"/v1/products/{product}/reviews", {"rating": 9}, headers=headers)
    problem(r, 401, "X-Guest-Id")
    assert head_seq(server) == seq
    assert list_reviews(server, product)[0] == []


def test_401_title_is_the_status_phrase(server, product):
    r = server.post_json(f"/v1/products/{product}/reviews", {"rating": 5})
    b = problem(r, 401, "X-Guest-Id")
    # RFC 9457 4.2.1: an about:blank problem's title is the status's phrase, as on the status
    # line.
    assert b["title"] == "Unauthorized", b
    assert r.reason == "Unauthorized"


# ---- validation names the field ----

@pytest.mark.parametrize("body,field", [
    ({}, "rating"),
    ({"title": "no rating"}, "rating"),
    ({"rating": 0}, "rating"),
    ({"rating": 6}, "rating"),
    ({"rating": -1}, "rating"),
    ({"rating": 2.5}, "rating"),
    ({"rating": "5"}, "rating"),
    ({"rating": True}, "rating"),
    ({"rating": None}, "rating"),
    ({"rating": [5]}, "rating"),
    ({"rating": 5, "title": "가" * 201}, "title"),
    ({"rating": 5, "title": 5}, "title"),
    ({"rating": 5, "title": None}, "title"),
    ({"rating": 5, "body": "x" * 5001}, "body"),
    ({"rating": 5, "body": ["x"]}, "body"),
    ({"rating": 5, "extra": 1}, "extra"),
    ({"rating": 5, "Rating": 5}, "Rating"),
    ({"rating": 5, "state": "hidden"}, "state"),
    ({"rating": 5, "id": "rv_mine"}, "id"),
    ({"rating": 5, "author_id": "mallory"}, "author_id"),
    ({"rating": 5, "version": 1}, "version"),
])
def test_validation_names_the_field(server, product, body, field):
    seq = head_seq(server)
    b = problem(post_review(server, product, "guest-1", body), 400, field)
    assert field in b["detail"]
    assert head_seq(server) == seq
    assert_rating(server, product, [])
    # The guest has not used up its review.
    review(server, product, "guest-1", 5)


def test_malformed_bodies(server, product):
    seq = head_seq(server)
    for raw in (b"{", b"[]", b'[{"rating": 5}]', b'"x"', b'{"rating": 5, "rating": 4}',
                b'{"rating": 5}{"rating": 4}', b'{"rating": 1e400}', b""):
        r = server.post_json(f"/v1/products/{product}/reviews", raw, headers=guest("g"))
        problem(r, 400)
    assert head_seq(server) == seq


# ---- the list ----

def test_list_pagination_newest_first(server, product):
    rid = make_resort(server)
    other = make_product(server, rid, "다른 객실")
    created = [review(server, product, f"g{i:02d}", i % 5 + 1, title=f"t{i}")["id"]
               for i in range(23)]
    review(server, other, "g00", 3)  # another product's review is not in this list
    newest_first = created[::-1]
    items, pages = list_reviews(server, product, limit=5)
    assert pages == 5  # 4 full pages of 5 and one of 3
    assert [i["id"] for i in items] == newest_first
    assert all(i["product_id"] == product and i["state"] == "published" for i in items)
    assert review_ids(server, product, limit=1) == newest_first
    # The default page is 20.
    r = server.get(f"/v1/products/{product}/reviews").json()
    assert [i["id"] for i in r["items"]] == newest_first[:20] and r["next_cursor"]
    rest = server.get(f"/v1/products/{product}/reviews?cursor={r['next_cursor']}").json()
    assert [i["id"] for i in rest["items"]] == newest_first[20:] and rest["next_cursor"] is None
    # Exactly limit left: the page is full and there is no next one.
    r = server.get(f"/v1/products/{product}/reviews?limit=23").json()
    assert len(r["items"]) == 23 and r["next_cursor"] is None
    r = server.get(f"/v1/products/{product}/reviews?limit=22").json()
    assert len(r["items"]) == 22 and r["next_cursor"]
    last = server.get(f"/v1/products/{product}/reviews?limit=5&cursor={r['next_cursor']}")
    assert [i["id"] for i in last.json()["items"]] == [created[0]]
    assert last.json()["next_cursor"] is None
    # An empty list.
    empty = make_product(server, rid, "빈 객실")
    r = server.get(f"/v1/products/{empty}/reviews")
    assert r.status_code == 200 and r.json() == {"items": [], "next_cursor": None}
    assert r.headers["Cache-Control"] == PUBLIC
    # HEAD: the headers of GET, no body.
    h = requests.head(server.url(f"/v1/products/{product}/reviews?limit=3"), timeout=10)
    assert h.status_code == 200 and h.content == b""
    assert h.headers["Cache-Control"] == PUBLIC


def test_cursor_is_stable_under_new_reviews(server, product):
    old = [review(server, product, f"old{i}", 3)["id"] for i in range(10)]
    first = server.get(f"/v1/products/{product}/reviews?limit=4").json()
    seen = [i["id"] for i in first["items"]]
    assert seen == old[::-1][:4]
    new = [review(server, product, f"new{i}", 4)["id"] for i in range(5)]
    rest, cursor = [], first["next_cursor"]
    while cursor:
        page = server.get(f"/v1/products/{product}/reviews?limit=4&cursor={cursor}").json()
        rest += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
    # The next pages continue exactly after the cursor's review; the new ones are newer.
    assert rest == old[::-1][4:]
    assert review_ids(server, product, limit=3) == new[::-1] + old[::-1]


@pytest.mark.parametrize("query,field", [
    ("limit=0", "limit"),
    ("limit=101", "limit"),
    ("limit=abc", "limit"),
    ("limit=", "limit"),
    ("limit=5x", "limit"),
    ("cursor=x", "cursor"),
    ("cursor=v1.0", "cursor"),
    ("cursor=v1.abc", "cursor"),
    ("cursor=v1.5x", "cursor"),
    ("cursor=r1.5", "cursor"),
    ("cursor=", "cursor"),
    ("sort=rating", "sort"),
    ("state=hidden", "state"),
])
def test_list_bad_query(server, product, query, field):
    review(server, product, "g", 5)
    problem(server.get(f"/v1/products/{product}/reviews?{query}"), 400, field)
    h = requests.head(server.url(f"/v1/products/{product}/reviews?{query}"), timeout=10)
    assert h.status_code == 400 and h.content == b""


def test_cursor_must_be_one_the_server_gave(server, product):
    """A cursor is "v1." and a review's position, as the server writes it; the strtoll the
    server parses it with also takes a sign, leading white space and an overflowing number."""
    for i in range(3):
        review(server, product, f"g{i}", 3)
    for cursor in ("v1.+5", "v1.%205", "v1.99999999999999999999"):
        problem(server.get(f"/v1/products/{product}/reviews?cursor={cursor}"), 400, "cursor")


# ---- moderation and the rating ----

def test_moderation_changes_the_rating_exactly(server, product):
    a = review(server, product, "a", 5)
    assert_rating(server, product, [5])
    b = review(server, product, "b", 5)
    c = review(server, product, "c", 4)
    assert_rating(server, product, [5, 5, 4])  # 14 / 3 = 4.67
    assert get_product(server, product).json()["rating"] == {"count": 3, "average": 4.67}

    r = moderate(server, a["id"], "hidden")
    assert r.status_code == 200, r.text
    hidden = r.json()
    assert r.headers["ETag"] == '"2"' and r.headers["Cache-Control"] == PRIVATE
    assert hidden["state"] == "hidden" and hidden["version"] == 2
    assert hidden["created_at"] == a["created_at"] and hidden["updated_at"] >= a["updated_at"]
    assert {k: v for k, v in hidden.items() if k not in ("state", "version", "updated_at")} == \
        {k: v for k, v in a.items() if k not in ("state", "version", "updated_at")}
    assert review_ids(server, product) == [c["id"], b["id"]]
    assert_rating(server, product, [5, 4])  # 4.5

    hide(server, c["id"])
    assert review_ids(server, product) == [b["id"]]
    assert_rating(server, product, [5])
    hide(server, b["id"])
    assert review_ids(server, product) == []
    assert_rating(server, product, [])
    assert get_product(server, product).json()["rating"] == {"count": 0, "average": None}

    # Published again, a review goes back to its place (creation order, not moderation's).
    shown = show(server, a["id"])
    assert shown["state"] == "published" and shown["version"] == 3
    show(server, c["id"])
    assert review_ids(server, product) == [c["id"], a["id"]]
    assert_rating(server, product, [5, 4])
    show(server, b["id"])
    assert review_ids(server, product) == [c["id"], b["id"], a["id"]]
    assert_rating(server, product, [5, 5, 4])
    # Moderating to the state it has is still a change (version up), and counts nothing twice.
    again = show(server, b["id"])
    assert again["version"] == 4
    assert_rating(server, product, [5, 5, 4])
    # The list shows the review as moderated.
    items = list_reviews(server, product)[0]
    assert [i["version"] for i in items] == [3, 4, 3]


def test_average_rounds_to_two_decimals(server, product):
    ratings = []
    for i, rating in enumerate([1, 1, 2, 1, 1, 1, 1, 1]):
        review(server, product, f"g{i}", rating)
        ratings.append(rating)
        assert_rating(server, product, ratings)
    # 9 / 8 = 1.125 exactly: two decimals, half up.
    assert get_product(server, product).json()["rating"] == {"count": 8, "average": 1.13}
    ids = review_ids(server, product)
    hide(server, ids[-1])  # the first review, a 1
    assert_rating(server, product, [1, 2, 1, 1, 1, 1, 1])  # 8 / 7 = 1.142857...


def test_moderation_errors(server, product):
    rv = review(server, product, "g", 4)
    path = f"/v1/reviews/{rv['id']}"
    seq = head_seq(server)
    for body, field in (({}, "state"), ({"state": "deleted"}, "state"),
                        ({"state": "Hidden"}, "state"), ({"state": None}, "state"),
                        ({"state": 1}, "state"), ({"state": "hidden", "rating": 1}, "rating"),
                        ({"rating": 1}, "rating")):
        b = problem(server.patch_json(path, body), 400, field)
        assert field in b["detail"]
    problem(server.patch_json(path, b'{"state": "hidden", "state": "published"}'), 400)
    problem(server.patch_json(path, b"[]"), 400)
    problem(requests.patch(server.url(path), data=b'{"state": "hidden"}', timeout=10), 415)
    for bad in ('"0"', "1", '"abc"', '"1', "W/1", ""):
        problem(moderate(server, rv["id"], "hidden", **{"If-Match": bad}), 400, "If-Match")
    for rvid in ("rv_0000000000000000", "nope", product, "a" * 60):
        problem(moderate(server, rvid, "hidden"), 404)
    b = problem(moderate(server, rv["id"], "hidden", **{"If-Match": '"7"'}), 412)
    assert "1" in b["detail"]
    problem(moderate(server, rv["id"], "hidden", **{"If-Match": 'W/"1"'}), 412)
    assert head_seq(server) == seq
    assert_rating(server, product, [4])
    r = moderate(server, rv["id"], "hidden", **{"If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["version"] == 2
    problem(moderate(server, rv["id"], "published", **{"If-Match": '"1"'}), 412)
    assert_rating(server, product, [])
    r = moderate(server, rv["id"], "published", **{"If-Match": "*"})
    assert r.status_code == 200 and r.json()["version"] == 3
    assert_rating(server, product, [4])
    # The review's path (the 201's Location) reads the published review; a hidden one is a 404.
    r = server.get(path)
    assert r.status_code == 200 and r.json()["version"] == 3, r.text
    assert r.headers["ETag"] == '"3"'
    assert moderate(server, rv["id"], "hidden").status_code == 200
    problem(server.get(path), 404)
    r = requests.options(server.url(path), timeout=10)
    assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD, PATCH", r.headers


# ---- the product's ETag ----

def test_product_etag_changes_with_reviews(server, product):
    p = get_product(server, product)
    assert p.headers["ETag"] == '"1"'
    r = server.get(f"/v1/products/{product}", headers={"If-None-Match": '"1"'})
    assert r.status_code == 304
    for _ in range(4):  # warm both workers' read caches
        get_product(server, product)
    a = review(server, product, "a", 4)
    for _ in range(4):
        r = server.get(f"/v1/products/{product}", headers={"If-None-Match": '"1"'})
        assert r.status_code == 200, "a cached copy with the old ETag must not revalidate"
        assert r.headers["ETag"] == '"1.1.4"'
        assert r.json()["rating"] == {"count": 1, "average": 4} and r.json()["version"] == 1
    r = server.get(f"/v1/products/{product}", headers={"If-None-Match": '"1.1.4"'})
    assert r.status_code == 304 and r.headers["ETag"] == '"1.1.4"'
    h = requests.head(server.url(f"/v1/products/{product}"),
                      headers={"If-None-Match": '"1"'}, timeout=10)
    assert h.status_code == 200 and h.headers["ETag"] == '"1.1.4"'
    b = review(server, product, "b", 5)
    for old in ('"1"', '"1.1.4"'):
        r = server.get(f"/v1/products/{product}", headers={"If-None-Match": old})
        assert r.status_code == 200 and r.headers["ETag"] == '"1.2.9"'
    hide(server, a["id"])
    r = server.get(f"/v1/products/{product}", headers={"If-None-Match": '"1.2.9"'})
    assert r.status_code == 200 and r.headers["ETag"] == '"1.1.5"'
    assert r.json()["rating"] == {"count": 1, "average": 5}
    # Without published reviews the document is as it was, and so is its ETag.
    hide(server, b["id"])
    r = server.get(f"/v1/products/{product}", headers={"If-None-Match": '"1.1.5"'})
    assert r.status_code == 200 and r.headers["ETag"] == '"1"'
    assert r.json() == p.json()
    assert server.get(f"/v1/products/{product}",
                      headers={"If-None-Match": '"1"'}).status_code == 304


def test_if_match_takes_the_products_etag_form(server, product):
    review(server, product, "a", 4)
    review(server, product, "b", 5)
    etag = get_product(server, product).headers["ETag"]
    assert etag == '"1.2.9"'
    r = server.patch_json(f"/v1/products/{product}", {"name": "바뀐 이름"},
                          headers={"If-Match": etag})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and r.json()["name"] == "바뀐 이름"
    assert r.json()["rating"] == {"count": 2, "average": 4.5}  # a patch keeps the rating
    assert r.headers["ETag"] == '"2.2.9"'
    assert get_product(server, product).headers["ETag"] == '"2.2.9"'
    # The old version's tag is stale; a weak tag never matches; nothing changes.
    seq = head_seq(server)
    problem(server.patch_json(f"/v1/products/{product}", {"name": "x"},
                              headers={"If-Match": etag}), 412)
    problem(server.patch_json(f"/v1/products/{product}", {"name": "x"},
                              headers={"If-Match": 'W/"2.2.9"'}), 412)
    assert head_seq(server) == seq
    # The plain version compares the same way; so does the tag of a count since changed.
    review(server, product, "c", 3)
    assert get_product(server, product).headers["ETag"] == '"2.3.12"'
    r = server.patch_json(f"/v1/products/{product}", {"description": "설명"},
                          headers={"If-Match": '"2.2.9"'})
    assert r.status_code == 200 and r.json()["version"] == 3
    r = server.patch_json(f"/v1/products/{product}", {"description": "설명 2"},
                          headers={"If-Match": '"3"'})
    assert r.status_code == 200 and r.headers["ETag"] == '"4.3.12"'
    # PUT keeps the rating too.
    p = r.json()
    r = requests.put(server.url(f"/v1/products/{product}"), timeout=10,
                     json={"type": p["type"], "resort_id": p["resort_id"], "name": "새 이름"},
                     headers={"If-Match": '"4.3.12"'})
    assert r.status_code == 200, r.text
    assert r.json()["rating"] == {"count": 3, "average": 4}
    assert r.headers["ETag"] == '"5.3.12"'
    assert_rating(server, product, [4, 5, 3])


# ---- sort=rating ----

def test_sort_rating_orders_by_average_unrated_last(server):
    rid = make_resort(server)
    a, b, c, d, e = (make_product(server, rid, n) for n in ("A", "B", "C", "D", "E"))
    review(server, a, "g1", 5)
    review(server, a, "g2", 4)          # A: 4.5
    rb = review(server, b, "g1", 5)     # B: 5
    review(server, d, "g1", 2)          # D: 2
    review(server, e, "g1", 4)
    review(server, e, "g2", 5)          # E: 4.5, created after A
    # C has no review.

    def order(limit=100):
        ids, cursor = [], None
        while True:
            q = f"/v1/products?sort=rating&limit={limit}" + (f"&cursor={cursor}" if cursor
                                                             else "")
            r = server.get(q)
            assert r.status_code == 200, r.text
            page = r.json()
            ids += [i["id"] for i in page["items"]]
            for i in page["items"]:
                assert i["rating"] == get_product(server, i["id"]).json()["rating"]
            cursor = page["next_cursor"]
            if cursor is None:
                return ids

    assert order() == [b, a, e, d, c]
    assert order(limit=2) == [b, a, e, d, c]
    assert order(limit=1) == [b, a, e, d, c]
    # Hiding B's only review makes it unrated: last, in creation order among the unrated.
    hide(server, rb["id"])
    assert order() == [a, e, d, b, c]
    assert order(limit=2) == [a, e, d, b, c]
    review(server, c, "g1", 1)
    assert order() == [a, e, d, c, b]


# ---- unknown and deleted products ----

def test_reviews_of_unknown_or_deleted_products_are_404(server, product):
    rid = make_resort(server)
    doomed = make_product(server, rid, "곧 삭제")
    rv = review(server, doomed, "g", 3)
    seq = head_seq(server)
    for pid in ("pr_0000000000000000", "nope", rid, rv["id"], "a" * 60):
        problem(server.get(f"/v1/products/{pid}/reviews"), 404)
        h = requests.head(server.url(f"/v1/products/{pid}/reviews"), timeout=10)
        assert h.status_code == 404 and h.content == b""
        problem(post_review(server, pid, "g", {"rating": 5}), 404)
    assert head_seq(server) == seq
    # An id longer than a route parameter holds matches no route at all.
    problem(server.get("/v1/products/" + "a" * 200 + "/reviews"), 404)

    r = requests.delete(server.url(f"/v1/products/{doomed}"), timeout=10)
    assert r.status_code == 204, r.text
    seq = head_seq(server)
    problem(server.get(f"/v1/products/{doomed}/reviews"), 404)
    problem(post_review(server, doomed, "other", {"rating": 5}), 404)
    problem(post_review(server, doomed, "g", {"rating": 5}), 404)
    assert head_seq(server) == seq
    # The live product is untouched.
    assert list_reviews(server, product)[0] == []


# ---- races ----

def test_concurrent_posts_by_one_guest_give_exactly_one_201(server, product):
    n = 8
    barrier = threading.Barrier(n)
    seq = head_seq(server)

    def post(i):
        barrier.wait()
        return post_review(server, product, "racer", {"rating": i % 5 + 1, "title": f"t{i}"})

    with concurrent.futures.ThreadPoolExecutor(n) as ex:
        replies = list(ex.map(post, range(n)))
    statuses = sorted(r.status_code for r in replies)
    assert statuses == [201] + [409] * (n - 1), [r.text for r in replies]
    for r in replies:
        if r.status_code == 409:
            problem(r, 409)
    won = next(r.json() for r in replies if r.status_code == 201)
    assert head_seq(server) == seq + 1
    assert list_reviews(server, product)[0] == [won]
    assert_rating(server, product, [won["rating"]])


def test_concurrent_posts_by_many_guests_all_count(server, product):
    n = 8
    barrier = threading.Barrier(n)

    def post(i):
        barrier.wait()
        r = post_review(server, product, f"guest{i}", {"rating": i % 5 + 1})
        assert r.status_code == 201, r.text
        return r.json()

    with concurrent.futures.ThreadPoolExecutor(n) as ex:
        made = list(ex.map(post, range(n)))
    assert len({m["id"] for m in made}) == n
    assert {i["id"] for i in list_reviews(server, product, limit=3)[0]} == \
        {m["id"] for m in made}
    assert_rating(server, product, [i % 5 + 1 for i in range(n)])


# ---- restart and rebuild ----

def test_reviews_survive_restart_and_rebuild_identically(server, product):
    a = review(server, product, "a", 5, title="좋아요")
    review(server, product, "b", 2)
    c = review(server, product, "c", 4)
    hide(server, a["id"])
    hide(server, c["id"])
    show(server, c["id"])
    r = server.patch_json(f"/v1/products/{product}", {"name": "바뀐 객실"})
    assert r.status_code == 200, r.text
    before = (list_reviews(server, product)[0], get_product(server, product).json(),
              get_product(server, product).headers["ETag"])
    assert before[2] == '"2.2.6"'
    server.restart()
    after = (list_reviews(server, product)[0], get_product(server, product).json(),
             get_product(server, product).headers["ETag"])
    assert after == before
    problem(post_review(server, product, "a", {"rating": 1}), 409)
    assert server.stop() == 0
    p = subprocess.run([BIN, "check", "--rebuild-catalog", "--data-dir", server.data_dir],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "rebuild: identical in content" in p.stdout, p.stdout
    assert re.search(r"^rebuild: reviews +3 rows, 0 only", p.stdout, re.M), p.stdout
