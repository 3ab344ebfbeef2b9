"""Resorts end to end: create, get, list, patch; ETags; validation; bad input changes nothing;
a full LMDB map. Every response is validated against schema/openapi.yaml."""
import concurrent.futures
import json
import os
import re
import sqlite3
import time

import pytest

import openapi_contract
from apihelp import all_resorts, head_seq, list_resorts, metric, problem, wait_until
from openapi_contract import contract

JSON = {"Content-Type": "application/json"}
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


@pytest.fixture(autouse=True)
def _contract(monkeypatch):
    openapi_contract.install(monkeypatch)


def create(server, body, **kw):
    r = server.post_json("/v1/resorts", body, **kw)
    assert r.status_code == 201, r.text
    return r


def snapshot(server):
    return all_resorts(server), head_seq(server)


# ---- create and get ----

def test_create_minimal_uses_defaults(server):
    r = create(server, {"name": "한라 리조트"})
    body = r.json()
    assert body["name"] == "한라 리조트"
    assert body["timezone"] == "Asia/Seoul" and body["currency"] == "KRW"
    assert body["name_en"] is None and body["address"] is None and body["stars"] is None
    assert body["version"] == 1
    assert r.headers["ETag"] == '"1"'
    assert r.headers["Location"] == f"/v1/resorts/{body['id']}"
    assert TS_RE.match(body["created_at"]) and body["created_at"] == body["updated_at"]
    assert re.match(r"^[a-z0-9_-]{1,31}$", body["home_node"])
    # Read-your-write: the resort is readable at once, as created.
    g = server.get(r.headers["Location"])
    assert g.status_code == 200 and g.json() == body
    assert g.headers["ETag"] == '"1"'


def test_create_full_korean_round_trip(server):
    full = {"name": "제주 오션 리조트 🌊", "name_en": "Jeju Ocean Resort",
            "timezone": "Asia/Seoul", "currency": "KRW",
            "address": "제주특별자치도 서귀포시 중문관광로 72 (우: 63535) \"본관\" \\ 끝",
            "stars": 5}
    r = create(server, full)
    body = r.json()
    for k, v in full.items():
        assert body[k] == v, k
    g = server.get(f"/v1/resorts/{body['id']}")
    assert g.json() == body
    assert g.headers["Content-Type"] == "application/json"
    # The UTF-8 on the wire decodes to the same text (no \u escapes lost or doubled).
    assert json.loads(g.content.decode("utf-8"))["name"] == full["name"]
    items = all_resorts(server)
    assert items == [body]


def test_other_zones_and_currencies(server):
    for tz, cur in (("America/Argentina/Buenos_Aires", "ARS"), ("Etc/GMT+9", "USD"),
                    ("UTC", "EUR")):
        b = create(server, {"name": tz, "timezone": tz, "currency": cur}).json()
        assert (b["timezone"], b["currency"]) == (tz, cur)


def test_lengths_count_characters_not_bytes(server):
    create(server, {"name": "가" * 200, "name_en": "a" * 200, "address": "주" * 500})
    create(server, {"name": "x", "address": ""})
    problem(server.post_json("/v1/resorts", {"name": "가" * 201}), 400, "name")
    problem(server.post_json("/v1/resorts", {"name": "x", "name_en": "a" * 201}), 400, "name_en")
    problem(server.post_json("/v1/resorts", {"name": "x", "address": "주" * 501}), 400, "address")
    problem(server.post_json("/v1/resorts", {"name": "x", "name_en": ""}), 400, "name_en")


def test_demo_resorts(demo_server):
    items = all_resorts(demo_server)
    assert len(items) == 3
    names = {i["name"]: i["name_en"] for i in items}
    assert names == {"제주 오션 리조트": "Jeju Ocean Resort",
                     "설악 마운틴 리조트": "Seorak Mountain Resort",
                     "부산 해운대 스파 리조트": "Haeundae Spa Resort"}
    assert all(i["currency"] == "KRW" and i["timezone"] == "Asia/Seoul" for i in items)


def test_demo_is_loaded_only_into_an_empty_store(make_server, tmp_path):
    s = make_server(args=["--demo"], data_dir=tmp_path / "demo")
    assert len(all_resorts(s)) == 3
    s.restart()
    assert len(all_resorts(s)) == 3


def test_get_unknown_and_odd_ids(server):
    create(server, {"name": "a"})
    for rid in ("rs_0000000000000000", "nope", "..", "%2e%2e", "rs_%E2%9C%93", "a" * 127):
        problem(server.get(f"/v1/resorts/{rid}"), 404)
    # An id longer than a route parameter holds matches no route at all.
    problem(server.get("/v1/resorts/" + "a" * 200), 404)


# ---- list ----

def test_empty_list(server):
    r = server.get("/v1/resorts")
    assert r.json() == {"items": [], "next_cursor": None}


def test_pagination_neither_skips_nor_repeats(server):
    def one(i):
        return create(server, {"name": f"리조트 {i:02d}", "stars": i % 5 + 1}).json()["id"]

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        created = set(ex.map(one, range(45)))
    assert len(created) == 45
    items, pages = list_resorts(server, limit=7)
    assert pages == 7  # 6 full pages of 7 and one of 3
    assert {i["id"] for i in items} == created
    # The default page is 20; 100 is the largest.
    r = server.get("/v1/resorts").json()
    assert len(r["items"]) == 20 and r["next_cursor"]
    r = server.get("/v1/resorts?limit=100").json()
    assert len(r["items"]) == 45 and r["next_cursor"] is None
    # Exactly limit items left: the page is full and there is no next one.
    r = server.get("/v1/resorts?limit=45").json()
    assert len(r["items"]) == 45 and r["next_cursor"] is None
    r = server.get("/v1/resorts?limit=44").json()
    assert len(r["items"]) == 44 and r["next_cursor"]
    last = server.get(f"/v1/resorts?limit=5&cursor={r['next_cursor']}").json()
    assert len(last["items"]) == 1 and last["next_cursor"] is None


def test_cursor_is_stable_under_inserts(server):
    for i in range(10):
        create(server, {"name": f"a{i}"})
    first = server.get("/v1/resorts?limit=4").json()
    seen = [i["id"] for i in first["items"]]
    for i in range(10):
        create(server, {"name": f"b{i}"})
    rest, cursor = [], first["next_cursor"]
    while cursor:
        page = server.get(f"/v1/resorts?limit=4&cursor={cursor}").json()
        rest += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
    # The next pages continue exactly after the cursor's resort, new resorts included.
    everything = [i["id"] for i in all_resorts(server)]
    assert len(everything) == 20
    assert rest == [x for x in everything if x > seen[-1]]
    assert not set(seen) & set(rest)


# ---- patch, ETags ----

def test_patch_changes_and_versions(server):
    body = create(server, {"name": "원래", "name_en": "Original", "address": "주소",
                           "stars": 3}).json()
    rid = body["id"]
    r = server.patch_json(f"/v1/resorts/{rid}", {"name": "바뀜", "stars": 4})
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["name"] == "바뀜" and p["stars"] == 4
    assert p["name_en"] == "Original" and p["address"] == "주소"
    assert p["version"] == 2 and r.headers["ETag"] == '"2"'
    assert p["created_at"] == body["created_at"] and p["updated_at"] >= body["updated_at"]
    assert server.get(f"/v1/resorts/{rid}").json() == p
    r = server.patch_json(f"/v1/resorts/{rid}", {"timezone": "Europe/Paris", "currency": "EUR"},
                          headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200
    assert (r.json()["timezone"], r.json()["currency"], r.json()["version"]) == \
        ("Europe/Paris", "EUR", 3)


def test_patch_null_clears_optional_fields(server):
    rid = create(server, {"name": "a", "name_en": "A", "address": "addr", "stars": 2}).json()["id"]
    r = server.patch_json(f"/v1/resorts/{rid}", {"name_en": None, "address": None, "stars": None})
    assert r.status_code == 200
    got = server.get(f"/v1/resorts/{rid}").json()
    assert got["name_en"] is None and got["address"] is None and got["stars"] is None
    assert got["name"] == "a"
    for field in ("name", "timezone", "currency"):
        problem(server.patch_json(f"/v1/resorts/{rid}", {field: None}), 400, field)


def test_etag_304(server):
    rid = create(server, {"name": "a"}).json()["id"]
    r = server.get(f"/v1/resorts/{rid}", headers={"If-None-Match": '"1"'})
    assert r.status_code == 304 and r.content == b""
    assert r.headers["ETag"] == '"1"'
    h = server.head(f"/v1/resorts/{rid}", headers={"If-None-Match": '"1"'})
    assert h.status_code == 304
    assert server.get(f"/v1/resorts/{rid}", headers={"If-None-Match": '"2"'}).status_code == 200
    server.patch_json(f"/v1/resorts/{rid}", {"stars": 5})
    r = server.get(f"/v1/resorts/{rid}", headers={"If-None-Match": '"1"'})
    assert r.status_code == 200 and r.json()["stars"] == 5 and r.headers["ETag"] == '"2"'
    assert server.get(f"/v1/resorts/{rid}", headers={"If-None-Match": '"2"'}).status_code == 304


def test_if_match(server):
    rid = create(server, {"name": "a"}).json()["id"]
    before = snapshot(server)
    b = problem(server.patch_json(f"/v1/resorts/{rid}", {"name": "b"},
                                  headers={"If-Match": '"7"'}), 412)
    assert "1" in b["detail"]
    assert snapshot(server) == before
    r = server.patch_json(f"/v1/resorts/{rid}", {"name": "b"}, headers={"If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["version"] == 2
    problem(server.patch_json(f"/v1/resorts/{rid}", {"name": "c"}, headers={"If-Match": '"1"'}),
            412)
    # If-Match compares strongly (RFC 9110 13.1.1): a weak tag matches no version.
    problem(server.patch_json(f"/v1/resorts/{rid}", {"name": "c"}, headers={"If-Match": 'W/"2"'}),
            412)
    r = server.patch_json(f"/v1/resorts/{rid}", {"name": "c"}, headers={"If-Match": '"2"'})
    assert r.status_code == 200 and r.json()["version"] == 3
    r = server.patch_json(f"/v1/resorts/{rid}", {"name": "d"}, headers={"If-Match": "*"})
    assert r.status_code == 200 and r.json()["version"] == 4
    for bad in ('"0"', "1", '"abc"', '"1', '"1" "2"', '"-1"', "W/1", ""):
        problem(server.patch_json(f"/v1/resorts/{rid}", {"name": "e"},
                                  headers={"If-Match": bad}), 400, "If-Match")
    assert server.get(f"/v1/resorts/{rid}").json()["name"] == "d"


def test_patch_errors(server):
    rid = create(server, {"name": "a"}).json()["id"]
    problem(server.patch_json(f"/v1/resorts/{rid}", {}), 400)
    problem(server.patch_json(f"/v1/resorts/{rid}", {"id": "rs_other"}), 400, "id")
    problem(server.patch_json(f"/v1/resorts/{rid}", {"version": 9}), 400, "version")
    problem(server.patch_json(f"/v1/resorts/{rid}", {"home_node": "x"}), 400, "home_node")
    problem(server.patch_json(f"/v1/resorts/{rid}", {"stars": 0}), 400, "stars")
    problem(server.patch_json(f"/v1/resorts/{rid}", {"name": "   "}), 400, "name")
    problem(server.patch_json("/v1/resorts/rs_nothere", {"name": "x"}), 404)
    problem(server.patch_json("/v1/resorts/rs_nothere", {"name": "x"},
                              headers={"If-Match": '"1"'}), 404)
    assert server.get(f"/v1/resorts/{rid}").json()["version"] == 1


def test_concurrent_patches_all_count(server):
    rid = create(server, {"name": "a"}).json()["id"]

    def bump(i):
        r = server.patch_json(f"/v1/resorts/{rid}", {"stars": i % 5 + 1})
        assert r.status_code == 200, r.text
        return r.json()["version"]

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        versions = list(ex.map(bump, range(24)))
    # Each reply shows the resort at least as new as its own change.
    assert all(2 <= v <= 25 for v in versions), versions
    assert server.get(f"/v1/resorts/{rid}").json()["version"] == 25


# ---- validation names the field ----

@pytest.mark.parametrize("body,field", [
    ({}, "name"),
    ({"name_en": "x"}, "name"),
    ({"name": ""}, "name"),
    ({"name": " \t\n"}, "name"),
    ({"name": None}, "name"),
    ({"name": 1}, "name"),
    ({"name": "a", "name_en": 5}, "name_en"),
    ({"name": "a", "timezone": "Not a zone"}, "timezone"),
    ({"name": "a", "timezone": "Asia//Seoul"}, "timezone"),
    ({"name": "a", "timezone": "Asia/"}, "timezone"),
    ({"name": "a", "timezone": "/etc/passwd"}, "timezone"),
    ({"name": "a", "timezone": "../../x"}, "timezone"),
    ({"name": "a", "timezone": "x" * 65}, "timezone"),
    ({"name": "a", "timezone": None}, "timezone"),
    ({"name": "a", "currency": "krw"}, "currency"),
    ({"name": "a", "currency": "KR"}, "currency"),
    ({"name": "a", "currency": "KRWX"}, "currency"),
    ({"name": "a", "currency": "K1W"}, "currency"),
    ({"name": "a", "address": ["x"]}, "address"),
    ({"name": "a", "stars": 3.5}, "stars"),
    ({"name": "a", "stars": -1}, "stars"),
    ({"name": "a", "stars": "5"}, "stars"),
    ({"name": "a", "stars": False}, "stars"),
    ({"name": "a", "stars": {"n": 5}}, "stars"),
    ({"name": "a", "id": "rs_mine"}, "id"),
    ({"name": "a", "version": 1}, "version"),
    ({"name": "a", "Name": "b"}, "Name"),
])
def test_validation_names_the_field(server, body, field):
    before = snapshot(server)
    b = problem(server.post_json("/v1/resorts", body), 400, field)
    assert field in b["detail"]
    assert snapshot(server) == before


def test_integral_floats_are_integers(server):
    r = create(server, {"name": "a"}, headers={})
    rid = r.json()["id"]
    r = server.post_json("/v1/resorts", b'{"name": "b", "stars": 4.0}')
    assert r.status_code == 201 and r.json()["stars"] == 4
    r = server.patch_json(f"/v1/resorts/{rid}", b'{"stars": 2e0}')
    assert r.status_code == 200 and r.json()["stars"] == 2


# ---- bad input changes nothing ----

def too_big(s):
    # Whether a 413 carries X-Request-Id is test_http_basics' concern; here only the state is.
    with openapi_contract.suspended():
        r = s.post_json("/v1/resorts", b'{"name":"' + b"a" * (1024 * 1024) + b'"}')
    assert r.status_code == 413
    contract().validate_body(r.json(), "Problem")
    return r


def test_bad_input_changes_nothing(demo_server):
    s = demo_server
    rid = all_resorts(s)[0]["id"]
    deep = b'{"name":"a","x":' + b"[" * 64 + b"]" * 64 + b"}"
    bad = [
        lambda: s.post_json("/v1/resorts", b"{"),
        lambda: s.post_json("/v1/resorts", b'{"name": "a", "name": "b"}'),
        lambda: s.post_json("/v1/resorts", b'{"name": "a", "stars": 1e400}'),
        lambda: s.post_json("/v1/resorts", b'{"name": "a", "stars": 2.5}'),
        lambda: s.post_json("/v1/resorts", b'{"name": "a", "extra": true}'),
        lambda: s.post_json("/v1/resorts", deep),
        lambda: s.post_json("/v1/resorts", b'{"name": "a"}{"name": "b"}'),
        lambda: s.post_json("/v1/resorts", b'[{"name": "a"}]'),
        lambda: s.request("POST", "/v1/resorts", data=b'{"name":"a"}'),
        lambda: too_big(s),
        lambda: s.patch_json(f"/v1/resorts/{rid}", {}),
        lambda: s.patch_json(f"/v1/resorts/{rid}", {"name": None}),
        lambda: s.patch_json(f"/v1/resorts/{rid}", {"stars": 9}),
        lambda: s.patch_json(f"/v1/resorts/{rid}", {"stars": 3, "bogus": 1}),
        lambda: s.patch_json(f"/v1/resorts/{rid}", {"stars": 3}, headers={"If-Match": '"99"'}),
        lambda: s.patch_json(f"/v1/resorts/{rid}", {"stars": 3}, headers={"If-Match": "x"}),
        lambda: s.patch_json(f"/v1/resorts/{rid}", b'{"stars": 3, "stars": 4}'),
        lambda: s.patch_json("/v1/resorts/rs_missing", {"stars": 3}),
        lambda: s.request("PUT", f"/v1/resorts/{rid}", json={"name": "x"}),
        lambda: s.delete(f"/v1/resorts/{rid}"),
        lambda: s.get("/v1/resorts?limit=1&limit=2"),
        lambda: s.get(f"/v1/resorts/{rid}?x=1"),
    ]
    before = snapshot(s)
    assert before[1] >= 3  # the demo catalog is there to be left alone
    for i, send in enumerate(bad):
        r = send()
        assert 400 <= r.status_code < 500, (i, r.status_code, r.text)
        assert snapshot(s) == before, f"bad request #{i} ({r.status_code}) changed state"


# ---- a full map ----

def test_map_full_answers_503_and_keeps_serving(make_server):
    s = make_server(args=["--map-size-mb", "1"])
    session = s.session()
    base = head_seq(s)  # the admin's sign-in events come first
    created, full = [], None
    for i in range(2000):
        r = session.post(s.url("/v1/resorts"), headers=JSON, timeout=10,
                         data=json.dumps({"name": f"r{i}", "address": "가" * 400}))
        if r.status_code == 201:
            created.append(r.json()["id"])
            continue
        full = r
        break
    assert full is not None, "1 MiB map never filled"
    assert created, "not a single resort fit"
    problem(full, 503)
    assert full.headers["Retry-After"].isdigit()
    # Reads still work and show every acknowledged write.
    assert s.get("/healthz").status_code == 200
    assert s.get("/readyz").status_code == 200
    assert s.get(f"/v1/resorts/{created[-1]}").status_code == 200
    items = all_resorts(s)
    assert {i["id"] for i in items} == set(created)
    assert metric(s, "resortd_store_full_total") >= 1
    assert head_seq(s) == base + len(created)
    # Later writes that do not fit are refused the same way, and change nothing.
    again = s.post_json("/v1/resorts", {"name": "more", "address": "나" * 400})
    if again.status_code == 503:
        problem(again, 503)
        assert head_seq(s) == base + len(created)
    else:
        assert again.status_code == 201
    rc = s.stop()
    assert rc == 0, "".join(s.logs[-40:])
    assert not s.sanitizer_reports()
    s.start()
    assert {i["id"] for i in all_resorts(s)} >= set(created)


def test_cached_reads_are_never_stale(server):
    """GET by id is served from a per-worker cache; every write must be visible at once."""
    r = server.post_json("/v1/resorts", {"name": "캐시 리조트", "stars": 1})
    assert r.status_code == 201
    rid = r.json()["id"]
    for i in range(2, 22):
        for _ in range(3):  # warm both workers' caches
            assert server.get(f"/v1/resorts/{rid}").json()["version"] == i - 1
        p = server.patch_json(f"/v1/resorts/{rid}", {"stars": (i % 5) + 1, "name_en": f"v{i}"})
        assert p.status_code == 200
        for _ in range(3):
            g = server.get(f"/v1/resorts/{rid}")
            assert g.status_code == 200
            assert g.json()["version"] == i
            assert g.json()["name_en"] == f"v{i}"
            assert g.headers["ETag"] == f'"{i}"'


def assert_recovers(s, location, name):
    """Once the read model can commit again, the write becomes readable and /readyz is 200."""
    assert wait_until(lambda: s.get(location).status_code == 200, 15, 0.1)
    assert s.get(location).json()["name"] == name
    assert wait_until(lambda: s.get("/readyz").status_code == 200, 15, 0.1)


def test_lagging_read_model_answers_202_and_readyz_tells(make_server):
    """While another process holds catalog.db's write lock the projector cannot commit: a
    write is durable but not readable, so POST answers 202 with Location; /readyz reports
    the projector stuck; once the lock goes, the write becomes readable."""
    s = make_server(args=["--projector-wait-ms", "300"])
    lock = sqlite3.connect(os.path.join(s.data_dir, "catalog.db"), timeout=1,
                           isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        r = s.post_json("/v1/resorts", {"name": "지연 리조트"})
        assert r.status_code == 202, r.text
        body = r.json()
        assert r.headers["Location"] == f"/v1/resorts/{body['id']}"
        assert body["version"] == 1 and body["detail"]
        assert s.get(r.headers["Location"]).status_code == 404  # not readable yet
        assert wait_until(lambda: s.get("/readyz").status_code == 503, 15, 0.2)
        ready = s.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["projector"] == "stuck"
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert_recovers(s, r.headers["Location"], "지연 리조트")


def test_failing_projector_backs_off_and_recovers(make_server):
    """A projection that keeps failing must not spin or flood the log; once the cause is
    gone the event is projected and the server is ready again."""
    s = make_server(args=["--projector-wait-ms", "200"])
    db = sqlite3.connect(os.path.join(s.data_dir, "catalog.db"), isolation_level=None)
    db.execute("CREATE TRIGGER no_resorts BEFORE INSERT ON resorts "
               "BEGIN SELECT RAISE(ABORT, 'test: refusing resorts'); END")
    try:
        r = s.post_json("/v1/resorts", {"name": "막힌 리조트"})
        assert r.status_code == 202, r.text
        lines_before = sum("refusing resorts" in line for line in s.logs)
        time.sleep(3)
        lines = sum("refusing resorts" in line for line in s.logs) - lines_before
        assert lines <= 3, f"{lines} error lines in 3 s: the projector spins"
        ready = s.get("/readyz")
        assert ready.status_code == 503
        assert "refusing resorts" in ready.json()["checks"]["projector_error"]
        # The error's text is for admins; anyone else sees the verdict only.
        anonymous = s.get("/readyz", auth=False)
        assert anonymous.status_code == 503, anonymous.text
        assert anonymous.json()["checks"]["projector"] == "stuck", anonymous.text
        assert "projector_error" not in anonymous.json()["checks"], anonymous.text
    finally:
        db.execute("DROP TRIGGER no_resorts")
        db.close()
    assert_recovers(s, r.headers["Location"], "막힌 리조트")
