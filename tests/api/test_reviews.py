"""Reviews end to end: create (one per guest per product, the author is the token's sub), validation, the list
(newest first, paged), staff moderation, the product's rating and ETag, sort=rating, unknown
and deleted products, racing posts. Every response is validated against schema/openapi.yaml."""
import concurrent.futures
import hashlib
import re
import subprocess
import threading
from decimal import ROUND_HALF_UP, Decimal

import pytest

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

def user_name(g):
    """The local user that plays guest g (user names are 1..32 of [a-z0-9._-])."""
    if re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,31}", g):
        return g
    return "u" + hashlib.sha1(g.encode()).hexdigest()[:20]


def author(g):
    """The author_id of guest g's reviews: the principal of its token."""
    return "staff:" + user_name(g)


def guest(server, g):
    """The Authorization header of guest g, made (a user and a login) on first use; make it
    before counting head_seq, since both write audit events."""
    cache = server.__dict__.setdefault("_guests", {})
    if g not in cache:
        server.add_user(user_name(g), "staff")
        cache[g] = server.login(user_name(g))
    return cache[g]


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
    return server.post_json(f"/v1/products/{pid}/reviews", body, headers=guest(server, g))


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
    assert rv["product_id"] == product and rv["author_id"] == author("guest-1")
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
    assert rv3["author_id"] == author("g" * 64) and len(rv3["title"]) == 200
    r = server.post_json(f"/v1/products/{product}/reviews", b'{"rating": 3.0}',
                         headers=guest(server, "a.B-9_@x"))
    assert r.status_code == 201 and r.json()["rating"] == 3
    assert r.json()["author_id"] == author("a.B-9_@x")
    assert_rating(server, product, [4, 5, 1, 3])
    # merge-patch+json is JSON too; anything else is a 415.
    r = server.post_json(f"/v1/products/{product}/reviews", {"rating": 2},
                         headers={**guest(server, "guest-5"),
                                  "Content-Type": "application/merge-patch+json"})
    assert r.status_code == 201, r.text
    g6 = guest(server, "guest-6")
    before = head_seq(server)
    problem(server.request("POST", f"/v1/products/{product}/reviews", data=b'{"rating": 2}',
                           headers=g6), 415)
    assert head_seq(server) == before


def test_one_review_per_guest_per_product(server, product):
    rid = make_resort(server)
    other = make_product(server, rid, "다른 객실")
    first = review(server, product, "alice", 5, title="first")
    guest(server, "bob"), guest(server, "Alice")
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
    None,                      # no credentials at all
    "Bearer",
    "Bearer not-a-token",
    "Basic YWxpY2U6c2VjcmV0",
    "bearer " + "a" * 300,
])
def test_401_without_a_signed_in_guest(server, product, value):
    seq = head_seq(server)
    headers = {"Authorization": value}
    r = server.post_json(f"/v1/products/{product}/reviews", {"rating": 5}, headers=headers)
    problem(r, 401)
    assert r.headers["WWW-Authenticate"].startswith('Bearer realm="resortd"')
    # Credentials are checked before the body.
    r = server.post_json(f"/v1/products/{product}/reviews", {"rating": 9}, headers=headers)
    problem(r, 401)
    assert head_seq(server) == seq
    assert list_reviews(server, product)[0] == []


def test_401_title_is_the_status_phrase(server, product):
    r = server.post_json(f"/v1/products/{product}/reviews", {"rating": 5}, auth=False)
    b = problem(r, 401)
    # RFC 9457 4.2.1: an about:blank problem's title is the status's phrase, as on the status
    # line.
    assert b["title"] == "Unauthorized", b
    assert r.reason == "Unauthorized"


# ---- races ----

def test_concurrent_posts_by_one_guest_give_exactly_one_201(server, product):
    n = 8
    barrier = threading.Barrier(n)
    guest(server, "racer")
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
