"""Products, rate plans and prices end to end: create, get, replace, merge patch, delete;
ETags and If-Match; validation naming the field, with nothing changed by bad input; prices
per date from rules and plans. Every response is validated against schema/openapi.yaml."""
import concurrent.futures
import datetime
import json
import re

import pytest

import openapi_contract
from apihelp import (WEEKDAYS, day, delete, head_seq, plan_amount, problem, put_json,
                     search_all)
from openapi_contract import contract

TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


@pytest.fixture(autouse=True)
def _contract(monkeypatch):
    openapi_contract.install(monkeypatch)


# ---- helpers ----

def make_resort(server, name="제주 오션 리조트"):
    r = server.post_json("/v1/resorts", {"name": name})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def create(server, body):
    r = server.post_json("/v1/products", body)
    assert r.status_code == 201, r.text
    return r.json()


def room(resort_id, name="오션뷰 디럭스", **more):
    return {"type": "room_type", "resort_id": resort_id, "name": name, **more}


def create_plan(server, product_id, rules, name="Standard", **more):
    r = server.post_json(f"/v1/products/{product_id}/rate-plans",
                         {"name": name, "rules": rules, **more})
    assert r.status_code == 201, r.text
    return r.json()


def snapshot(server, *paths):
    """What bad input must leave alone: the searchable products, the log head, and the
    documents at paths (status and body)."""
    docs = []
    for p in paths:
        r = server.get(p)
        docs.append((p, r.status_code, r.text if r.status_code == 200 else None))
    return search_all(server), head_seq(server), docs


def expect_400s(server, cases, send, *paths):
    """send(body) for each (body, field) must answer a 400 naming field and change nothing.
    Collects every miss so one bug does not hide the others."""
    misses = []
    before = snapshot(server, *paths)
    for body, field in cases:
        r = send(body)
        shown = json.dumps(body, ensure_ascii=False)[:160]
        if r.status_code != 400 or r.headers.get("Content-Type") != "application/problem+json":
            misses.append(f"{shown} -> {r.status_code} {r.text[:200]} (want 400 on {field!r})")
            continue
        got = r.json().get("field")
        if got != field:
            misses.append(f"{shown} -> field {got!r}, want {field!r}: {r.json()['detail']}")
        after = snapshot(server, *paths)
        if after != before:
            misses.append(f"{shown} changed state")
            before = after
    assert not misses, "\n".join(misses)


# ---- create and get ----

def test_create_minimal_fills_defaults(server):
    rid = make_resort(server)
    r = server.post_json("/v1/products", room(rid))
    assert r.status_code == 201, r.text
    body = r.json()
    assert re.match(r"^pr_[A-Za-z0-9_-]+$", body["id"])
    assert r.headers["Location"] == f"/v1/products/{body['id']}"
    assert r.headers["ETag"] == '"1"'
    assert body["type"] == "room_type" and body["resort_id"] == rid
    assert body["name"] == "오션뷰 디럭스"
    assert body["name_en"] is None and body["description"] == ""
    assert body["status"] == "active" and body["currency"] == "KRW"
    assert body["attributes"] == {} and body["capacity"] is None
    assert body["components"] == [] and body["media"] == []
    assert body["rating"] == {"count": 0, "average": None}
    assert body["version"] == 1
    assert TS_RE.match(body["created_at"]) and body["created_at"] == body["updated_at"]
    # Read-your-write: readable at once, exactly as the create answered.
    g = server.get(r.headers["Location"])
    assert g.status_code == 200 and g.json() == body
    assert g.headers["ETag"] == '"1"'
    assert g.headers["Cache-Control"].startswith("public")
    h = server.head(r.headers["Location"])
    assert h.status_code == 200 and h.content == b"" and h.headers["ETag"] == '"1"'
    assert [i["id"] for i in search_all(server)] == [body["id"]]


def test_create_full_round_trip(server):
    rid = make_resort(server)
    part = create(server, {"type": "facility", "resort_id": rid, "name": "인피니티 풀"})
    full = {
        "type": "package", "resort_id": rid, "name": "프리미엄스파 패키지 \"특가\" \\ 🌊",
        "name_en": "Premium Spa Package", "description": "스위트 1박. One night.\n둘째 줄",
        "status": "active", "currency": "USD",
        "attributes": {"view": "ocean", "beds": 2, "size_m2": 42.5, "pets": False,
                       "amenities": ["balcony", "bathtub"], "floors": [1, 2, True]},
        "capacity": {"unit": "units", "count": 0},
        "components": [{"product_id": part["id"], "quantity": 2}],
        "media": [{"url": "https://example.com/a.jpg", "kind": "image", "caption": "오션뷰"},
                  {"url": "http://example.com/b.mp4", "kind": "video"},
                  {"url": "https://example.com/c.pdf", "kind": "document", "caption": None}],
    }
    body = create(server, full)
    for k, v in full.items():
        assert body[k] == v, k
    # Members come back in the canonical order, every one present.
    assert list(body) == ["id", "type", "resort_id", "name", "name_en", "description",
                          "status", "currency", "attributes", "capacity", "components",
                          "media", "rating", "home_node", "version", "created_at",
                          "updated_at"]
    g = server.get(f"/v1/products/{body['id']}")
    assert g.json() == body
    assert json.loads(g.content.decode("utf-8"))["name"] == full["name"]


def test_lengths_and_limits_that_are_allowed(server):
    rid = make_resort(server)
    create(server, room(rid, name="가" * 200, name_en="a" * 200, description="설" * 20000))
    create(server, room(rid, attributes={f"k{i}": i for i in range(64)}))
    create(server, room(rid, attributes={"a" * 32: "가" * 200, "tags": list(range(32))}))
    create(server, room(rid, capacity={"unit": "rooms", "count": 100000}))
    create(server, room(rid, media=[{"url": "https://e.com/x", "kind": "image"}] * 32))


def test_get_unknown_and_odd_ids(server):
    rid = make_resort(server)
    pid = create(server, room(rid))["id"]
    for bad in ("pr_0000000000000000", "nope", "rp_x", rid, "pr_" + "a" * 45 + "b",
                "pr_" + "a" * 100):
        problem(server.get(f"/v1/products/{bad}"), 404)
        problem(server.get(f"/v1/rate-plans/{bad}"), 404)
    problem(server.get(f"/v1/products/{pid}?x=1"), 400, "x")


# ---- replace ----

def test_put_replaces_the_whole_document(server):
    rid = make_resort(server)
    old = create(server, room(rid, name_en="Ocean", description="old",
                              attributes={"view": "ocean", "beds": 2},
                              capacity={"unit": "rooms", "count": 4},
                              media=[{"url": "https://e.com/1", "kind": "image"}]))
    pid = old["id"]
    r = put_json(server, f"/v1/products/{pid}",
                 {"type": "room_type", "resort_id": rid, "name": "가든 트윈", "status": "inactive",
                  "attributes": {"view": "garden"}})
    assert r.status_code == 200, r.text
    new = r.json()
    assert r.headers["ETag"] == '"2"' and new["version"] == 2
    assert new["name"] == "가든 트윈" and new["status"] == "inactive"
    assert new["attributes"] == {"view": "garden"}
    # Members left out go back to their defaults.
    assert new["name_en"] is None and new["description"] == "" and new["capacity"] is None
    assert new["media"] == [] and new["currency"] == "KRW"
    # What a replace never touches.
    for k in ("id", "type", "resort_id", "rating", "home_node", "created_at"):
        assert new[k] == old[k], k
    assert new["updated_at"] >= old["updated_at"]
    assert server.get(f"/v1/products/{pid}").json() == new
    # Inactive: readable by id, gone from search.
    assert search_all(server) == []


def test_put_cannot_change_type_or_resort(server):
    rid = make_resort(server)
    other = make_resort(server, "설악 마운틴 리조트")
    part = create(server, room(rid, name="부품"))
    pid = create(server, room(rid))["id"]
    path = f"/v1/products/{pid}"
    before = snapshot(server, path)
    problem(put_json(server, path, {"type": "ticket", "resort_id": rid, "name": "x"}), 409,
            "type")
    assert snapshot(server, path) == before
    problem(put_json(server, path, {"type": "room_type", "resort_id": other, "name": "x"}), 409,
            "resort_id")
    assert snapshot(server, path) == before
    problem(put_json(server, path, {"type": "package", "resort_id": rid, "name": "x",
                                    "components": [{"product_id": part["id"],
                                                    "quantity": 1}]}), 409, "type")
    assert snapshot(server, path) == before
    # A PUT is a whole document: type and resort_id are required.
    problem(put_json(server, path, {"resort_id": rid, "name": "x"}), 400, "type")
    problem(put_json(server, path, {"type": "room_type", "name": "x"}), 400, "resort_id")
    problem(put_json(server, "/v1/products/pr_nothere",
                     {"type": "room_type", "resort_id": rid, "name": "x"}), 404)
    assert snapshot(server, path) == before


# ---- merge patch ----

def test_merge_patch(server):
    rid = make_resort(server)
    old = create(server, room(rid, name_en="Ocean",
                              attributes={"view": "ocean", "beds": 2, "pets": False,
                                          "amenities": ["balcony", "bathtub", "sofa"]},
                              capacity={"unit": "rooms", "count": 4},
                              media=[{"url": "https://e.com/1", "kind": "image"},
                                     {"url": "https://e.com/2", "kind": "image"}]))
    pid = old["id"]
    r = server.patch_json(f"/v1/products/{pid}",
                          {"attributes": {"pets": None, "beds": 3, "smoking": False,
                                          "amenities": ["tv"]},
                           "media": [{"url": "https://e.com/3", "kind": "video"}]},
                          headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    p = r.json()
    assert r.headers["ETag"] == '"2"' and p["version"] == 2
    # Key by key: null removes, a value sets, keys not named stay; arrays are replaced whole.
    assert p["attributes"] == {"view": "ocean", "beds": 3, "amenities": ["tv"], "smoking": False}
    assert p["media"] == [{"url": "https://e.com/3", "kind": "video"}]
    assert p["name_en"] == "Ocean" and p["capacity"] == {"unit": "rooms", "count": 4}
    assert p["created_at"] == old["created_at"]
    assert server.get(f"/v1/products/{pid}").json() == p
    r = server.patch_json(f"/v1/products/{pid}", {"name_en": None, "capacity": None,
                                                  "description": "새 설명", "currency": "EUR"})
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["name_en"] is None and p["capacity"] is None
    assert p["description"] == "새 설명" and p["currency"] == "EUR" and p["version"] == 3
    assert p["attributes"]["view"] == "ocean"
    # Removing the last attributes leaves {}.
    r = server.patch_json(f"/v1/products/{pid}", {"attributes": {"view": None, "beds": None,
                                                                 "amenities": None,
                                                                 "smoking": None}})
    assert r.status_code == 200 and r.json()["attributes"] == {}
    # Removing a key that is not there is not an error and changes only the version.
    r = server.patch_json(f"/v1/products/{pid}", {"attributes": {"nothere": None}})
    assert r.status_code == 200 and r.json()["attributes"] == {} and r.json()["version"] == 5


def test_patch_moves_search_and_attribute_filters(server):
    rid = make_resort(server)
    pid = create(server, room(rid, attributes={"view": "ocean"}))["id"]
    assert [i["id"] for i in search_all(server, {"attr.view": "ocean"})] == [pid]
    server.patch_json(f"/v1/products/{pid}", {"attributes": {"view": "garden"}})
    assert search_all(server, {"attr.view": "ocean"}) == []
    assert [i["id"] for i in search_all(server, {"attr.view": "garden"})] == [pid]
    server.patch_json(f"/v1/products/{pid}", {"name": "가든 트윈"})
    assert search_all(server, {"q": "오션뷰"}) == []
    assert [i["id"] for i in search_all(server, {"q": "가든"})] == [pid]
    server.patch_json(f"/v1/products/{pid}", {"status": "inactive"})
    assert search_all(server, {"q": "가든"}) == [] and search_all(server) == []
    server.patch_json(f"/v1/products/{pid}", {"status": "active"})
    assert [i["id"] for i in search_all(server, {"q": "가든", "attr.view": "garden"})] == [pid]


def test_patch_errors(server):
    rid = make_resort(server)
    part = create(server, room(rid, name="부품"))["id"]
    pid = create(server, room(rid, name_en="Ocean"))["id"]
    path = f"/v1/products/{pid}"
    expect_400s(server, [
        ({}, None),
        ({"type": "ticket"}, "type"),
        ({"resort_id": rid}, "resort_id"),
        ({"name": None}, "name"),
        ({"name": " "}, "name"),
        ({"status": None}, "status"),
        ({"status": "deleted"}, "status"),
        ({"currency": None}, "currency"),
        ({"description": None}, "description"),
        ({"attributes": None}, "attributes"),
        ({"media": None}, "media"),
        ({"attributes": {"View": "x"}}, "attributes.View"),
        ({"attributes": {"view": {"a": 1}}}, "attributes.view"),
        ({"attributes": {"tags": [["a"]]}}, "attributes.tags[0]"),
        ({"components": [{"product_id": part, "quantity": 1}]}, "components"),
        ({"id": "pr_x"}, "id"),
        ({"version": 2}, "version"),
        ({"rating": {"count": 1, "average": 5}}, "rating"),
        ({"created_at": "2026-01-01T00:00:00.000Z"}, "created_at"),
    ], lambda body: server.patch_json(path, body), path)
    problem(server.patch_json("/v1/products/pr_nothere", {"name": "x"}), 404)
    assert server.get(path).json()["version"] == 1


def test_concurrent_patches_all_land(server):
    """Each merge patch applies to the document as the previous one left it: no lost
    update when many arrive at once."""
    rid = make_resort(server)
    pid = create(server, room(rid, attributes={"base": 0}))["id"]

    def patch(i):
        r = server.patch_json(f"/v1/products/{pid}", {"attributes": {f"k{i}": i}})
        assert r.status_code == 200, r.text
        assert r.json()["attributes"][f"k{i}"] == i
        return r.json()["version"]

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        versions = list(ex.map(patch, range(24)))
    # Each reply shows the product at least as new as its own change.
    assert all(2 <= v <= 25 for v in versions), versions
    got = server.get(f"/v1/products/{pid}").json()
    assert got["version"] == 25
    assert got["attributes"] == {"base": 0, **{f"k{i}": i for i in range(24)}}


def test_patch_cannot_grow_attributes_past_the_limit(server):
    """The 64-key limit holds for the merged document, not only for the patch itself."""
    rid = make_resort(server)
    pid = create(server, room(rid, attributes={f"k{i}": i for i in range(64)}))["id"]
    path = f"/v1/products/{pid}"
    # Replacing and removing keys within the limit is fine.
    r = server.patch_json(path, {"attributes": {"k0": None, "extra": "x"}})
    assert r.status_code == 200, r.text
    assert len(r.json()["attributes"]) == 64
    with openapi_contract.suspended():
        before = snapshot(server, path)
        r = server.patch_json(path, {"attributes": {"one_more": True}})
        after = snapshot(server, path)
    assert r.status_code == 400, f"{r.status_code} {len(r.json().get('attributes', {}))} keys"
    problem(r, 400, "attributes")
    assert after == before


def test_put_refuses_null_attributes(server):
    rid = make_resort(server)
    pid = create(server, room(rid, attributes={"view": "ocean"}))["id"]
    path = f"/v1/products/{pid}"
    expect_400s(server, [
        (room(rid, attributes={"view": None}), "attributes.view"),
        (room(rid, name_en=""), "name_en"),
        (room(rid, product_id=pid), "product_id"),
        (room(rid, id=pid), "id"),
        (room(rid, rating={"count": 0, "average": None}), "rating"),
        (room(rid, name=" "), "name"),
    ], lambda body: put_json(server, path, body), path)


# ---- packages ----

def test_package_components(server):
    rid = make_resort(server)
    other = make_resort(server, "설악 마운틴 리조트")
    suite = create(server, room(rid, name="오션 스위트"))["id"]
    spa = create(server, {"type": "ticket", "resort_id": rid, "name": "스파 이용권"})["id"]
    far = create(server, room(other, name="마운틴뷰"))["id"]
    pkg = create(server, {"type": "package", "resort_id": rid, "name": "프리미엄스파 패키지",
                          "components": [{"product_id": suite, "quantity": 1},
                                         {"product_id": spa, "quantity": 2}]})
    assert pkg["components"] == [{"product_id": suite, "quantity": 1},
                                 {"product_id": spa, "quantity": 2}]
    # A patch replaces the list whole.
    r = server.patch_json(f"/v1/products/{pkg['id']}",
                          {"components": [{"product_id": spa, "quantity": 3}]})
    assert r.status_code == 200, r.text
    assert r.json()["components"] == [{"product_id": spa, "quantity": 3}]

    def pkg_body(components):
        return {"type": "package", "resort_id": rid, "name": "패키지", "components": components}

    expect_400s(server, [
        ({"type": "package", "resort_id": rid, "name": "빈 패키지"}, "components"),
        (pkg_body([]), "components"),
        (pkg_body([{"product_id": far, "quantity": 1}]), "components[0].product_id"),
        (pkg_body([{"product_id": spa, "quantity": 1}, {"product_id": pkg["id"], "quantity": 1}]),
         "components[1].product_id"),
        (pkg_body([{"product_id": "pr_nothere", "quantity": 1}]), "components[0].product_id"),
        (pkg_body([{"product_id": spa, "quantity": 1}, {"product_id": spa, "quantity": 2}]),
         "components[1].product_id"),
        (pkg_body([{"product_id": spa, "quantity": 0}]), "components[0].quantity"),
        (pkg_body([{"product_id": spa, "quantity": 101}]), "components[0].quantity"),
        (pkg_body([{"product_id": spa}]), "components[0].quantity"),
        (pkg_body([{"product_id": spa, "quantity": 1, "note": "x"}]), "components[0].note"),
        (pkg_body([{"product_id": spa, "quantity": 1}] +
                  [{"product_id": f"pr_{i}", "quantity": 1} for i in range(16)]), "components"),
        (room(rid, components=[{"product_id": spa, "quantity": 1}]), "components"),
        ({"type": "ticket", "resort_id": rid, "name": "t",
          "components": [{"product_id": spa, "quantity": 1}]}, "components"),
    ], lambda body: server.post_json("/v1/products", body))
    # The same reference checks on a patch of the package, and on a replace.
    path = f"/v1/products/{pkg['id']}"
    expect_400s(server, [
        ({"components": [{"product_id": far, "quantity": 1}]}, "components[0].product_id"),
        ({"components": [{"product_id": pkg["id"], "quantity": 1}]}, "components[0].product_id"),
        ({"components": [{"product_id": "pr_nothere", "quantity": 1}]},
         "components[0].product_id"),
        ({"components": []}, "components"),
        ({"components": None}, "components"),
    ], lambda body: server.patch_json(path, body), path)
    expect_400s(server, [
        (pkg_body([{"product_id": far, "quantity": 1}]), "components[0].product_id"),
        ({"type": "package", "resort_id": rid, "name": "x"}, "components"),
    ], lambda body: put_json(server, path, body), path)


# ---- delete ----

def test_delete(server):
    rid = make_resort(server)
    keep = create(server, room(rid, name="남는 객실"))["id"]
    pid = create(server, room(rid, name="지울 객실", attributes={"view": "ocean"}))["id"]
    plan = create_plan(server, pid, [{"from": "2026-03-01", "to": "2026-03-31", "amount": 1}])
    assert {i["id"] for i in search_all(server)} == {keep, pid}
    path = f"/v1/products/{pid}"
    problem(delete(server, path, headers={"If-Match": '"2"'}), 412)
    r = delete(server, path, headers={"If-Match": '"1"'})
    assert r.status_code == 204 and r.content == b"", r.text
    problem(server.get(path), 404)
    problem(server.get(path, headers={"If-None-Match": '"1"'}), 404)
    assert [i["id"] for i in search_all(server)] == [keep]
    assert search_all(server, {"q": "지울"}) == []
    assert search_all(server, {"attr.view": "ocean"}) == []
    assert search_all(server, {"from": "2026-03-02", "to": "2026-03-03"}) == []
    seq = head_seq(server)
    problem(delete(server, path), 404)
    problem(server.patch_json(path, {"name": "x"}), 404)
    problem(put_json(server, path, {"type": "room_type", "resort_id": rid, "name": "x"}), 404)
    problem(server.get(f"{path}/prices?from=2026-03-01&to=2026-03-02"), 404)
    problem(server.get(f"{path}/rate-plans"), 404)
    problem(server.post_json(f"{path}/rate-plans",
                             {"name": "x", "rules": [{"from": "2026-03-01", "to": "2026-03-01",
                                                      "amount": 1}]}), 404)
    assert head_seq(server) == seq
    # A package cannot name the deleted product.
    problem(server.post_json("/v1/products",
                             {"type": "package", "resort_id": rid, "name": "p",
                              "components": [{"product_id": pid, "quantity": 1}]}), 400,
            "components[0].product_id")
    assert plan["product_id"] == pid


# ---- ETags ----

def test_if_none_match(server):
    rid = make_resort(server)
    pid = create(server, room(rid))["id"]
    path = f"/v1/products/{pid}"
    r = server.get(path, headers={"If-None-Match": '"1"'})
    assert r.status_code == 304 and r.content == b"" and r.headers["ETag"] == '"1"'
    assert server.head(path, headers={"If-None-Match": '"1"'}).status_code == 304
    assert server.get(path, headers={"If-None-Match": '"2"'}).status_code == 200
    server.patch_json(path, {"name": "바뀐 이름"})
    r = server.get(path, headers={"If-None-Match": '"1"'})
    assert r.status_code == 200 and r.json()["name"] == "바뀐 이름" and r.headers["ETag"] == '"2"'
    assert server.get(path, headers={"If-None-Match": '"2"'}).status_code == 304
    plan = create_plan(server, pid, [{"from": "2026-03-01", "to": "2026-03-31", "amount": 1}])
    ppath = f"/v1/rate-plans/{plan['id']}"
    r = server.get(ppath, headers={"If-None-Match": '"1"'})
    assert r.status_code == 304 and r.content == b"" and r.headers["ETag"] == '"1"'
    server.patch_json(ppath, {"name": "Summer"})
    r = server.get(ppath, headers={"If-None-Match": '"1"'})
    assert r.status_code == 200 and r.headers["ETag"] == '"2"'


@pytest.mark.parametrize("kind", ["product", "rate_plan"])
def test_if_match(server, kind):
    rid = make_resort(server)
    pid = create(server, room(rid))["id"]
    if kind == "product":
        path = f"/v1/products/{pid}"
        whole = {"type": "room_type", "resort_id": rid, "name": "통째로"}
    else:
        path = "/v1/rate-plans/" + create_plan(
            server, pid, [{"from": "2026-03-01", "to": "2026-03-31", "amount": 1}])["id"]
        whole = {"name": "통째로", "rules": [{"from": "2026-03-01", "to": "2026-03-02",
                                            "amount": 5}]}
    writes = [lambda h: server.patch_json(path, {"name": "고침"}, headers=h),
              lambda h: put_json(server, path, whole, headers=h),
              lambda h: delete(server, path, headers=h)]
    before = snapshot(server, path)
    for send in writes:
        b = problem(send({"If-Match": '"7"'}), 412)
        assert "1" in b["detail"]
        # Strong comparison: a weak tag of the current version matches nothing.
        problem(send({"If-Match": 'W/"1"'}), 412)
        for bad in ('"0"', "1", '"abc"', '"1', ""):
            problem(send({"If-Match": bad}), 400, "If-Match")
        assert snapshot(server, path) == before
    r = server.patch_json(path, {"name": "고침"}, headers={"If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["version"] == 2
    problem(server.patch_json(path, {"name": "또"}, headers={"If-Match": '"1"'}), 412)
    r = put_json(server, path, whole, headers={"If-Match": '"2"'})
    assert r.status_code == 200 and r.json()["version"] == 3 and r.json()["name"] == "통째로"
    r = server.patch_json(path, {"name": "별"}, headers={"If-Match": "*"})
    assert r.status_code == 200 and r.json()["version"] == 4
    problem(delete(server, path, headers={"If-Match": '"3"'}), 412)
    assert delete(server, path, headers={"If-Match": '"4"'}).status_code == 204
    problem(server.get(path), 404)


# ---- validation names the field; nothing changes ----

def test_create_validation_names_the_field(server):
    rid = make_resort(server)
    keep = create(server, room(rid, name="있는 객실"))["id"]

    def r(**more):
        return {**room(rid, name="새 객실"), **more}

    cases = [
        ({"resort_id": rid, "name": "x"}, "type"),
        ({"type": "hotel", "resort_id": rid, "name": "x"}, "type"),
        ({"type": "Room_Type", "resort_id": rid, "name": "x"}, "type"),
        ({"type": None, "resort_id": rid, "name": "x"}, "type"),
        ({"type": "room_type", "name": "x"}, "resort_id"),
        ({"type": "room_type", "resort_id": "rs_nothere", "name": "x"}, "resort_id"),
        ({"type": "room_type", "resort_id": keep, "name": "x"}, "resort_id"),
        ({"type": "room_type", "resort_id": rid}, "name"),
        (r(name=""), "name"),
        (r(name="   "), "name"),
        (r(name="\t\n"), "name"),
        (r(name=None), "name"),
        (r(name="가" * 201), "name"),
        (r(name=7), "name"),
        (r(name_en=""), "name_en"),
        (r(name_en=5), "name_en"),
        (r(description=None), "description"),
        (r(description="설" * 20001), "description"),
        (r(status="draft"), "status"),
        (r(status="Active"), "status"),
        (r(status=None), "status"),
        (r(currency="krw"), "currency"),
        (r(currency="KR"), "currency"),
        (r(currency="KRWX"), "currency"),
        (r(currency="K1W"), "currency"),
        (r(currency=None), "currency"),
        (r(attributes=[]), "attributes"),
        (r(attributes="view=ocean"), "attributes"),
        (r(attributes=None), "attributes"),
        (r(attributes={"View": "ocean"}), "attributes.View"),
        (r(attributes={"1view": "ocean"}), "attributes.1view"),
        (r(attributes={"_view": "ocean"}), "attributes._view"),
        (r(attributes={"view-type": "ocean"}), "attributes.view-type"),
        (r(attributes={"": "ocean"}), "attributes."),
        (r(attributes={"a" * 33: 1}), "attributes." + "a" * 33),
        (r(attributes={"view": {"side": "ocean"}}), "attributes.view"),
        (r(attributes={"view": None}), "attributes.view"),
        (r(attributes={"view": ""}), "attributes.view"),
        (r(attributes={"view": "가" * 201}), "attributes.view"),
        (r(attributes={"tags": []}), "attributes.tags"),
        (r(attributes={"tags": list(range(33))}), "attributes.tags"),
        (r(attributes={"tags": ["a", ["b"]]}), "attributes.tags[1]"),
        (r(attributes={"tags": ["a", None]}), "attributes.tags[1]"),
        (r(attributes={"tags": ["a", {"b": 1}]}), "attributes.tags[1]"),
        (r(attributes={f"k{i}": i for i in range(65)}), "attributes"),
        (r(capacity={"unit": "beds", "count": 1}), "capacity.unit"),
        (r(capacity={"unit": "rooms", "count": -1}), "capacity.count"),
        (r(capacity={"unit": "rooms", "count": 100001}), "capacity.count"),
        (r(capacity={"unit": "rooms", "count": 1.5}), "capacity.count"),
        (r(capacity={"unit": "rooms"}), "capacity.count"),
        (r(capacity={"count": 1}), "capacity.unit"),
        (r(capacity={"unit": "rooms", "count": 1, "max": 2}), "capacity.max"),
        (r(capacity=5), "capacity"),
        (r(media={"url": "https://e.com/x", "kind": "image"}), "media"),
        (r(media=[{"url": "ftp://e.com/x", "kind": "image"}]), "media[0].url"),
        (r(media=[{"url": "e.com/x", "kind": "image"}]), "media[0].url"),
        (r(media=[{"url": "javascript:alert(1)", "kind": "image"}]), "media[0].url"),
        (r(media=[{"url": "https://e.com/a b", "kind": "image"}]), "media[0].url"),
        (r(media=[{"url": "https://e.com/a\u0001", "kind": "image"}]), "media[0].url"),
        (r(media=[{"url": "https://e.com/" + "a" * 2048, "kind": "image"}]), "media[0].url"),
        (r(media=[{"kind": "image"}]), "media[0].url"),
        (r(media=[{"url": "https://e.com/1", "kind": "image"},
                  {"url": "https://e.com/2", "kind": "audio"}]), "media[1].kind"),
        (r(media=[{"url": "https://e.com/1"}]), "media[0].kind"),
        (r(media=[{"url": "https://e.com/1", "kind": "image", "caption": 5}]),
         "media[0].caption"),
        (r(media=[{"url": "https://e.com/1", "kind": "image", "alt": "x"}]), "media[0].alt"),
        (r(media=[{"url": "https://e.com/x", "kind": "image"}] * 33), "media"),
        (r(components=[]), "components"),
        (r(id="pr_mine"), "id"),
        (r(version=1), "version"),
        (r(rating={"count": 0, "average": None}), "rating"),
        (r(home_node="n1"), "home_node"),
        (r(colour="blue"), "colour"),
        (r(Name="x"), "Name"),
    ]
    expect_400s(server, cases, lambda body: server.post_json("/v1/products", body))


def test_malformed_bodies_change_nothing(server):
    rid = make_resort(server)
    pid = create(server, room(rid))["id"]
    path = f"/v1/products/{pid}"
    before = snapshot(server, path)
    for send in [
        lambda: server.post_json("/v1/products", b"{"),
        lambda: server.post_json("/v1/products", b"[]"),
        lambda: server.post_json("/v1/products",
                                 b'{"type":"room_type","type":"ticket","resort_id":"%s",'
                                 b'"name":"x"}' % rid.encode()),
        lambda: server.post_json("/v1/products", b'{"type":"room_type","name":"\xff"}'),
        lambda: server.patch_json(path, b'{"name": "a"}{"name": "b"}'),
        lambda: put_json(server, path, b'"x"'),
        lambda: server.request("POST", "/v1/products", data=json.dumps(room(rid)),
                               headers={"Content-Type": "text/plain"}),
    ]:
        r = send()
        assert r.status_code in (400, 415), r.text
        assert snapshot(server, path) == before


# ---- rate plans ----

RULES = [{"from": "2026-03-01", "to": "2026-03-31", "amount": 100000},
         {"from": "2026-03-01", "to": "2026-03-31", "weekdays": ["sat", "sun"], "amount": 150000}]


def test_rate_plan_crud(server):
    rid = make_resort(server)
    pid = create(server, room(rid, currency="USD"))["id"]
    r = server.post_json(f"/v1/products/{pid}/rate-plans", {"name": "Standard", "rules": RULES})
    assert r.status_code == 201, r.text
    plan = r.json()
    assert re.match(r"^rp_[A-Za-z0-9_-]+$", plan["id"])
    assert r.headers["Location"] == f"/v1/rate-plans/{plan['id']}"
    assert r.headers["ETag"] == '"1"'
    assert plan["product_id"] == pid and plan["status"] == "active" and plan["version"] == 1
    assert plan["name"] == "Standard" and plan["rules"] == RULES
    assert list(plan) == ["id", "product_id", "name", "status", "rules", "home_node", "version",
                          "created_at", "updated_at"]
    path = r.headers["Location"]
    g = server.get(path)
    assert g.status_code == 200 and g.json() == plan and g.headers["ETag"] == '"1"'
    second = create_plan(server, pid, [{"from": "2026-04-01", "to": "2026-04-01", "amount": 7}],
                         name="Inactive", status="inactive")
    assert second["status"] == "inactive"
    lst = server.get(f"/v1/products/{pid}/rate-plans")
    assert lst.status_code == 200
    assert lst.json() == {"items": sorted([plan, second], key=lambda p: p["id"])}
    # Replace: status left out goes back to active; id, product_id and created_at are kept.
    r = put_json(server, f"/v1/rate-plans/{second['id']}",
                 {"name": "Replaced", "rules": [{"from": "2026-05-01", "to": "2026-05-02",
                                                 "amount": 9}]})
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["status"] == "active" and rep["name"] == "Replaced" and rep["version"] == 2
    assert rep["rules"] == [{"from": "2026-05-01", "to": "2026-05-02", "amount": 9}]
    for k in ("id", "product_id", "home_node", "created_at"):
        assert rep[k] == second[k], k
    # Patch: rules replaced whole, other members kept.
    r = server.patch_json(path, {"rules": [RULES[0]]})
    assert r.status_code == 200 and r.json()["rules"] == [RULES[0]]
    assert r.json()["name"] == "Standard" and r.json()["version"] == 2
    r = server.patch_json(path, {"status": "inactive", "name": "Off"})
    assert r.status_code == 200 and (r.json()["status"], r.json()["name"]) == ("inactive", "Off")
    assert server.get(path).json() == r.json()
    # Delete: 204, then 404, and gone from the list.
    r = delete(server, path)
    assert r.status_code == 204 and r.content == b""
    problem(server.get(path), 404)
    problem(delete(server, path), 404)
    problem(server.patch_json(path, {"name": "x"}), 404)
    assert server.get(f"/v1/products/{pid}/rate-plans").json() == {"items": [rep]}
    problem(server.post_json("/v1/products/pr_nothere/rate-plans",
                             {"name": "x", "rules": RULES}), 404)
    problem(server.get("/v1/products/pr_nothere/rate-plans"), 404)
    problem(server.get(f"/v1/products/{pid}/rate-plans?x=1"), 400, "x")


def test_rate_plan_validation(server):
    rid = make_resort(server)
    pid = create(server, room(rid))["id"]
    plan = create_plan(server, pid, RULES)
    path = f"/v1/rate-plans/{plan['id']}"
    prices = f"/v1/products/{pid}/prices?from=2026-02-28&to=2026-04-02"

    def rule(**more):
        return {"from": "2026-03-01", "to": "2026-03-31", "amount": 1, **more}

    def p(*rules, **more):
        return {"name": "P", "rules": list(rules), **more}

    rule_cases = [
        ({"name": "P"}, "rules"),
        (p(), "rules"),
        ({"name": "P", "rules": {"from": "2026-03-01"}}, "rules"),
        ({"name": "P", "rules": None}, "rules"),
        (p(*[rule()] * 65), "rules"),
        (p(rule(), "x"), "rules[1]"),
        (p(rule(), rule(to="2026-02-28")), "rules[1].to"),
        (p(rule(to="2028-03-02")), "rules[0].to"),
        (p(rule(**{"from": "2027-02-29"})), "rules[0].from"),
        (p(rule(**{"from": "2026-3-1"})), "rules[0].from"),
        (p(rule(**{"from": "1969-12-31"})), "rules[0].from"),
        (p(rule(to=20260331)), "rules[0].to"),
        (p({"to": "2026-03-31", "amount": 1}), "rules[0].from"),
        (p({"from": "2026-03-01", "amount": 1}), "rules[0].to"),
        (p({"from": "2026-03-01", "to": "2026-03-31"}), "rules[0].amount"),
        (p(rule(amount=-1)), "rules[0].amount"),
        (p(rule(amount=1.5)), "rules[0].amount"),
        (p(rule(amount="100")), "rules[0].amount"),
        (p(rule(amount=10 ** 12 + 1)), "rules[0].amount"),
        (p(rule(weekdays=[])), "rules[0].weekdays"),
        (p(rule(weekdays="sat")), "rules[0].weekdays"),
        (p(rule(weekdays=["sat", "sat"])), "rules[0].weekdays[1]"),
        (p(rule(), rule(weekdays=["mon", "Tue"])), "rules[1].weekdays[1]"),
        (p(rule(weekdays=["saturday"])), "rules[0].weekdays[0]"),
        (p(rule(price=5)), "rules[0].price"),
        ({"name": " ", "rules": [rule()]}, "name"),
        ({"rules": [rule()]}, "name"),
        (p(rule(), status="paused"), "status"),
        (p(rule(), currency="USD"), "currency"),
        (p(rule(), product_id=pid), "product_id"),
        (p(rule(), id="rp_x"), "id"),
    ]
    expect_400s(server, rule_cases,
                lambda body: server.post_json(f"/v1/products/{pid}/rate-plans", body),
                path, prices, f"/v1/products/{pid}/rate-plans")
    expect_400s(server, rule_cases, lambda body: put_json(server, path, body), path, prices)
    patch_cases = [
        ({}, None),
        ({"name": None}, "name"),
        ({"name": " "}, "name"),
        ({"rules": None}, "rules"),
        ({"rules": []}, "rules"),
        ({"status": None}, "status"),
        ({"status": "paused"}, "status"),
        ({"rules": [rule(), rule(to="2026-02-28")]}, "rules[1].to"),
        ({"rules": [rule(weekdays=["sat", "sat"])]}, "rules[0].weekdays[1]"),
        ({"rules": [rule(amount=-1)]}, "rules[0].amount"),
        ({"rules": [rule(), {"from": "2026-03-01", "amount": 1}]}, "rules[1].to"),
        ({"product_id": pid}, "product_id"),
        ({"currency": "USD"}, "currency"),
    ]
    expect_400s(server, patch_cases, lambda body: server.patch_json(path, body), path, prices)
    assert server.get(path).json() == plan


# ---- prices ----



def expected_prices(plans, start, end):
    """[(date, amount, plan id)] over [start, end): the lowest active plan, ties to the
    smaller id."""
    out, d = [], day(start)
    while d < day(end):
        best = (None, None)
        for p in sorted(plans, key=lambda p: p["id"]):
            if p["status"] != "active":
                continue
            a = plan_amount(p["rules"], d)
            if a is not None and (best[0] is None or a < best[0]):
                best = (a, p["id"])
        out.append((d.isoformat(), *best))
        d += datetime.timedelta(days=1)
    return out


def prices(server, pid, start, end):
    r = server.get(f"/v1/products/{pid}/prices", params={"from": start, "to": end})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["product_id"], body["from"], body["to"]) == (pid, start, end)
    return body, [(x["date"], x["amount"], x["rate_plan_id"]) for x in body["days"]]


def test_prices_last_rule_wins_and_lowest_plan(server):
    rid = make_resort(server)
    pid = create(server, room(rid, currency="USD"))["id"]
    a_rules = [
        {"from": "2026-03-01", "to": "2026-03-31", "amount": 100000},               # base
        {"from": "2026-03-01", "to": "2026-03-31", "weekdays": ["sat", "sun"],
         "amount": 150000},                                                        # weekends
        {"from": "2026-03-16", "to": "2026-03-22", "amount": 200000},               # season
        {"from": "2026-03-20", "to": "2026-03-20", "amount": 90000},                # one day
    ]
    a = create_plan(server, pid, a_rules, name="A")
    body, got = prices(server, pid, "2026-02-27", "2026-04-03")
    assert body["currency"] == "USD"
    assert [g[0] for g in got][:3] == ["2026-02-27", "2026-02-28", "2026-03-01"]
    assert len(got) == 35 and got[-1][0] == "2026-04-02"
    by_date = {g[0]: g[1:] for g in got}
    aid = a["id"]
    assert by_date["2026-02-28"] == (None, None)      # before any rule
    assert by_date["2026-04-01"] == (None, None)      # after every rule
    assert by_date["2026-03-01"] == (150000, aid)      # a Sunday: the weekend rule
    assert by_date["2026-03-02"] == (100000, aid)      # a Monday: the base
    assert by_date["2026-03-07"] == (150000, aid)      # a Saturday
    assert by_date["2026-03-21"] == (200000, aid)      # a Saturday in season: the season wins
    assert by_date["2026-03-17"] == (200000, aid)
    assert by_date["2026-03-20"] == (90000, aid)       # the last rule
    assert by_date["2026-03-23"] == (100000, aid)      # the season is over
    assert got == expected_prices([a], "2026-02-27", "2026-04-03")

    # A second plan: each date takes the lower amount; an equal amount goes to the plan with
    # the smaller id.
    b_rules = [{"from": "2026-03-01", "to": "2026-03-31", "amount": 120000},
               {"from": "2026-03-01", "to": "2026-03-31", "weekdays": ["sat", "sun"],
                "amount": 150000},
               {"from": "2026-03-18", "to": "2026-03-18", "amount": 80000},
               {"from": "2026-04-01", "to": "2026-04-01", "amount": 5}]
    b = create_plan(server, pid, b_rules, name="B")
    _, got = prices(server, pid, "2026-02-27", "2026-04-03")
    by_date = {g[0]: g[1:] for g in got}
    low = min(aid, b["id"])
    assert by_date["2026-03-02"] == (100000, aid)     # A is lower
    assert by_date["2026-03-17"] == (120000, b["id"])  # in season B is lower
    assert by_date["2026-03-18"] == (80000, b["id"])
    assert by_date["2026-03-20"] == (90000, aid)
    assert by_date["2026-03-07"] == (150000, low)      # a tie
    assert by_date["2026-03-01"] == (150000, low)
    assert by_date["2026-04-01"] == (5, b["id"])       # only B covers it
    assert by_date["2026-02-28"] == (None, None)
    assert got == expected_prices([a, b], "2026-02-27", "2026-04-03")

    # An inactive plan prices nothing; a deleted one neither; a replaced one anew.
    a = server.patch_json(f"/v1/rate-plans/{aid}", {"status": "inactive"}).json()
    _, got = prices(server, pid, "2026-02-27", "2026-04-03")
    assert got == expected_prices([a, b], "2026-02-27", "2026-04-03")
    assert {g[2] for g in got} == {b["id"], None}
    assert delete(server, f"/v1/rate-plans/{b['id']}").status_code == 204
    _, got = prices(server, pid, "2026-02-27", "2026-04-03")
    assert all(g[1:] == (None, None) for g in got)
    a = put_json(server, f"/v1/rate-plans/{aid}", {"name": "A", "rules": a_rules[:1]}).json()
    _, got = prices(server, pid, "2026-02-27", "2026-04-03")
    assert got == expected_prices([a], "2026-02-27", "2026-04-03")
    assert {g[1] for g in got} == {100000, None}
    # Inactive products keep their prices.
    server.patch_json(f"/v1/products/{pid}", {"status": "inactive"})
    assert prices(server, pid, "2026-02-27", "2026-04-03")[1] == got


def test_weekday_rule_leaves_other_days_unpriced(server):
    """A plan whose only rule covers weekends prices weekends only: the weekdays inside its
    range have no price (null), and they must not undercut another plan either."""
    rid = make_resort(server)
    pid = create(server, room(rid))["id"]
    weekend = create_plan(server, pid, [{"from": "2026-03-02", "to": "2026-03-15",
                                         "weekdays": ["sat", "sun"], "amount": 100}])
    with openapi_contract.suspended():
        r = server.get(f"/v1/products/{pid}/prices?from=2026-03-02&to=2026-03-09")
    assert r.status_code == 200, r.text
    days = [(x["date"], x["amount"], x["rate_plan_id"]) for x in r.json()["days"]]
    assert days == [("2026-03-02", None, None), ("2026-03-03", None, None),
                    ("2026-03-04", None, None), ("2026-03-05", None, None),
                    ("2026-03-06", None, None), ("2026-03-07", 100, weekend["id"]),
                    ("2026-03-08", 100, weekend["id"])], r.text
    contract().validate(r)
    # A stay over a weekday without a price is not sellable.
    with openapi_contract.suspended():
        s = server.get("/v1/products?from=2026-03-04&to=2026-03-06")
    assert s.status_code == 200 and s.json()["items"] == [], s.text
    daily = create_plan(server, pid, [{"from": "2026-03-01", "to": "2026-03-31",
                                       "amount": 5000}])
    with openapi_contract.suspended():
        r = server.get(f"/v1/products/{pid}/prices?from=2026-03-02&to=2026-03-04")
    assert [(x["amount"], x["rate_plan_id"]) for x in r.json()["days"]] == \
        [(5000, daily["id"])] * 2, r.text


def test_prices_parameters(server):
    rid = make_resort(server)
    pid = create(server, room(rid))["id"]
    create_plan(server, pid, [{"from": "2026-01-01", "to": "2027-12-31", "amount": 1}])
    path = f"/v1/products/{pid}/prices"
    body, got = prices(server, pid, "2026-01-01", "2027-01-02")   # 366 days, the most
    assert len(got) == 366 and {g[1] for g in got} == {1}
    body, got = prices(server, pid, "2027-12-31", "2028-01-01")
    assert got == [("2027-12-31", 1, got[0][2])]
    body, got = prices(server, pid, "2024-02-28", "2024-03-02")   # a leap day
    assert [g[0] for g in got] == ["2024-02-28", "2024-02-29", "2024-03-01"]
    for query, field in [
        ("", "from"),
        ("to=2026-01-02", "from"),
        ("from=2026-01-01", "to"),
        ("from=2026-1-1&to=2026-01-02", "from"),
        ("from=2026-02-29&to=2026-03-02", "from"),
        ("from=2026-01-01&to=2026-13-01", "to"),
        ("from=2026-01-01&to=2026-01-01", "to"),
        ("from=2026-01-02&to=2026-01-01", "to"),
        ("from=2026-01-01&to=2027-01-03", "to"),
        ("from=2026-01-01&to=2026-01-02&currency=KRW", "currency"),
        ("from=2026-01-01&from=2026-01-02&to=2026-01-03", "from"),
    ]:
        problem(server.get(f"{path}?{query}"), 400, field)
    problem(server.get("/v1/products/pr_nothere/prices?from=2026-01-01&to=2026-01-02"), 404)
    # The longest rule (731 days after its first) prices every date up to its last.
    other = create(server, room(rid, name="긴 요금"))["id"]
    long = create_plan(server, other, [{"from": "2026-03-01", "to": "2028-03-01", "amount": 7}])
    _, got = prices(server, other, "2028-02-28", "2028-03-03")
    assert got == [("2028-02-28", 7, long["id"]), ("2028-02-29", 7, long["id"]),
                   ("2028-03-01", 7, long["id"]), ("2028-03-02", None, None)]
    assert prices(server, other, "2026-02-28", "2026-03-02")[1] == \
        [("2026-02-28", None, None), ("2026-03-01", 7, long["id"])]
    h = server.head(f"{path}?from=2026-01-01&to=2026-01-02")
    assert h.status_code == 200 and h.content == b""
