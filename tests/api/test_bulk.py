"""`resortd import FILE` and `resortd export`: an import creates every record (checked through
the API of a server started on the same data directory); a bad record anywhere imports
nothing and the error names it; export, import into an empty directory and export again
gives the same bytes. Every response is validated against schema/openapi.yaml."""
import copy
import json
import os
import subprocess

import pytest

import openapi_contract
from apihelp import all_resorts, delete, head_seq, put_json, search_all
from conftest import BIN

ENV = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0")
MADE = ("home_node", "version", "created_at", "updated_at")


@pytest.fixture(autouse=True)
def _contract(monkeypatch):
    openapi_contract.install(monkeypatch)


def cli(data_dir, *args, stdin=None):
    """Runs `resortd ARGS --data-dir DATA_DIR`; asserts no sanitizer report."""
    p = subprocess.run([BIN, *args, "--data-dir", str(data_dir)], input=stdin,
                       capture_output=True, env=ENV, timeout=60)
    err = p.stderr.decode("utf-8", "replace")
    for m in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        assert m not in err, err
    return p


def import_file(tmp_path, data_dir, doc, name="catalog.json"):
    path = tmp_path / name
    path.write_bytes(doc if isinstance(doc, bytes) else
                     json.dumps(doc, ensure_ascii=False).encode("utf-8"))
    return cli(data_dir, "import", str(path))


def export(data_dir):
    p = cli(data_dir, "export")
    assert p.returncode == 0, p.stderr.decode()
    json.loads(p.stdout.decode("utf-8"))
    return p.stdout


def head_of(make_server, data_dir):
    """The log head seq, read from a server started on data_dir for the purpose."""
    s = make_server(data_dir=data_dir, provision=False)  # no sign-in: no audit events
    seq = head_seq(s)
    assert s.stop() == 0
    return seq


RULES = [{"from": "2026-05-01", "to": "2026-05-31", "amount": 100000},
         {"from": "2026-05-01", "to": "2026-05-31", "weekdays": ["fri", "sat"], "amount": 130000}]


def good_doc(tag="a"):
    """Two resorts, five products (one of them a package of two earlier ones), three rate
    plans; ids carry tag so that two documents do not collide."""
    return {
        "resorts": [
            {"id": f"rs_{tag}_jeju", "name": "제주 오션 리조트", "name_en": "Jeju Ocean Resort",
             "timezone": "Asia/Seoul", "currency": "KRW", "address": "제주 \"본관\"", "stars": 5},
            {"name": f"이름만 리조트 {tag}"},
        ],
        "products": [
            {"id": f"pr_{tag}_deluxe", "type": "room_type", "resort_id": f"rs_{tag}_jeju",
             "name": "오션뷰 디럭스", "name_en": "Déluxe Ocean View",
             "description": "바다가 보이는 객실.\nA room facing the sea.",
             "attributes": {"view": "ocean", "beds": 2, "pets": False, "size_m2": 42.5,
                            "amenities": ["balcony", "bathtub"]},
             "capacity": {"unit": "rooms", "count": 40},
             "media": [{"url": "https://example.com/d.jpg", "kind": "image",
                        "caption": "오션뷰"}]},
            {"id": f"pr_{tag}_spa", "type": "ticket", "resort_id": f"rs_{tag}_jeju",
             "name": "스파 이용권", "currency": "USD"},
            {"type": "facility", "resort_id": f"rs_{tag}_jeju", "name": f"인피니티 풀 {tag}"},
            {"id": f"pr_{tag}_pkg", "type": "package", "resort_id": f"rs_{tag}_jeju",
             "name": "프리미엄스파 패키지",
             "components": [{"product_id": f"pr_{tag}_deluxe", "quantity": 1},
                            {"product_id": f"pr_{tag}_spa", "quantity": 2}]},
            {"id": f"pr_{tag}_off", "type": "room_type", "resort_id": f"rs_{tag}_jeju",
             "name": "닫힌 객실", "status": "inactive"},
        ],
        "rate_plans": [
            {"id": f"rp_{tag}_std", "product_id": f"pr_{tag}_deluxe", "name": "Standard",
             "rules": RULES},
            {"product_id": f"pr_{tag}_spa", "name": "Day pass",
             "rules": [{"from": "2026-05-01", "to": "2026-05-31", "amount": 45}]},
            {"id": f"rp_{tag}_off", "product_id": f"pr_{tag}_pkg", "name": "Off",
             "status": "inactive", "rules": [{"from": "2026-05-01", "to": "2026-05-31",
                                              "amount": 1}]},
        ],
    }


def test_import_creates_everything(make_server, tmp_path):
    data = tmp_path / "data"
    doc = good_doc()
    p = import_file(tmp_path, data, doc)
    assert p.returncode == 0, p.stderr.decode()
    assert p.stdout.decode().startswith("imported 2 resorts, 5 products, 3 rate plans")
    s = make_server(data_dir=data)
    head = head_seq(s)
    assert head >= 1
    resorts = {r["name"]: r for r in all_resorts(s)}
    assert set(resorts) == {"제주 오션 리조트", "이름만 리조트 a"}
    jeju = resorts["제주 오션 리조트"]
    for k, v in doc["resorts"][0].items():
        assert jeju[k] == v, k
    assert resorts["이름만 리조트 a"]["id"].startswith("rs_")
    assert resorts["이름만 리조트 a"]["currency"] == "KRW"
    for rec in doc["products"]:
        if "id" not in rec:
            continue
        got = s.get(f"/v1/products/{rec['id']}")
        assert got.status_code == 200, rec["id"]
        body = got.json()
        for k, v in rec.items():
            assert body[k] == v, (rec["id"], k)
        assert body["version"] == 1 and body["rating"] == {"count": 0, "average": None}
    found = search_all(s)
    assert {i["name"] for i in found} == {"오션뷰 디럭스", "스파 이용권", "인피니티 풀 a",
                                          "프리미엄스파 패키지"}  # not the inactive one
    pool = [i for i in found if i["name"] == "인피니티 풀 a"][0]
    assert pool["id"].startswith("pr_") and pool["resort_id"] == "rs_a_jeju"
    assert [i["name"] for i in search_all(s, {"q": "deluxe"})] == ["오션뷰 디럭스"]
    plans = s.get("/v1/products/pr_a_deluxe/rate-plans").json()["items"]
    assert [(p["id"], p["name"], p["rules"], p["status"]) for p in plans] == \
        [("rp_a_std", "Standard", RULES, "active")]
    spa_plans = s.get("/v1/products/pr_a_spa/rate-plans").json()["items"]
    assert len(spa_plans) == 1 and spa_plans[0]["id"].startswith("rp_")
    prices = s.get("/v1/products/pr_a_deluxe/prices?from=2026-05-07&to=2026-05-10").json()
    assert [d["amount"] for d in prices["days"]] == [100000, 130000, 130000]  # Thu, Fri, Sat
    prices = s.get("/v1/products/pr_a_pkg/prices?from=2026-05-07&to=2026-05-08").json()
    assert prices["days"][0]["amount"] is None  # its only plan is inactive
    stays = search_all(s, {"from": "2026-05-07", "to": "2026-05-09", "sort": "price"})
    assert [(i["name"], i["stay_total"]) for i in stays] == \
        [("스파 이용권", 90), ("오션뷰 디럭스", 230000)]
    assert s.stop() == 0

    # A second import may refer to what the store already holds; standard input works.
    more = {"products": [{"id": "pr_b_more", "type": "room_type", "resort_id": "rs_a_jeju",
                          "name": "추가 객실"}],
            "rate_plans": [{"product_id": "pr_a_deluxe", "name": "Second", "rules": RULES},
                           {"product_id": "pr_b_more", "name": "New", "rules": RULES}]}
    p = cli(data, "import", "-", stdin=json.dumps(more).encode())
    assert p.returncode == 0, p.stderr.decode()
    assert p.stdout.decode().startswith("imported 0 resorts, 1 products, 2 rate plans")
    s.start()
    assert head_seq(s) > head
    assert s.get("/v1/products/pr_b_more").json()["resort_id"] == "rs_a_jeju"
    assert len(s.get("/v1/products/pr_a_deluxe/rate-plans").json()["items"]) == 2


def mutate(doc, path, value):
    """Returns a copy of doc with the member at path (a list of keys and indexes) set to
    value, or removed when value is DROP."""
    doc = copy.deepcopy(doc)
    node = doc
    for k in path[:-1]:
        node = node[k]
    if value is DROP:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


DROP = object()


def test_a_bad_record_anywhere_imports_nothing(make_server, tmp_path):
    data = tmp_path / "data"
    assert import_file(tmp_path, data, good_doc("a")).returncode == 0
    before = export(data)
    head = head_of(make_server, data)
    new = good_doc("b")
    dup = copy.deepcopy(new)
    dup["products"][1]["id"] = dup["products"][0]["id"]
    forward = copy.deepcopy(new)
    forward["products"][3]["components"][0]["product_id"] = "pr_b_off"  # a later record
    cases = [
        (mutate(new, ["products", 4, "name"], " "), "products[4].name"),
        (mutate(new, ["products", 4, "colour"], "blue"), "products[4].colour"),
        (mutate(new, ["products", 2, "resort_id"], "rs_nothere"), "products[2].resort_id"),
        (mutate(new, ["products", 0, "attributes", "View"], 1), "products[0].attributes.View"),
        (mutate(new, ["products", 3, "components", 1, "product_id"], "pr_nothere"),
         "products[3].components[1].product_id"),
        (forward, "products[3].components[0].product_id"),
        (mutate(new, ["products", 1, "id"], "rp_wrong_prefix"), "products[1].id"),
        (mutate(new, ["products", 1, "id"], "pr_bad id"), "products[1].id"),
        (dup, "products[1].id"),
        (mutate(new, ["products", 0, "id"], "pr_a_deluxe"), "products[0].id"),  # taken
        (mutate(new, ["products", 1], "not an object"), "products[1]"),
        (mutate(new, ["rate_plans", 2, "product_id"], "pr_nothere"), "rate_plans[2]"),
        (mutate(new, ["rate_plans", 0, "product_id"], DROP), "rate_plans[0].product_id"),
        (mutate(new, ["rate_plans", 1, "rules", 0, "to"], "2026-04-01"),
         "rate_plans[1].rules[0].to"),
        (mutate(new, ["rate_plans", 2, "id"], "rp_a_std"), "rate_plans[2].id"),  # taken
        (mutate(new, ["resorts", 1, "currency"], "krw"), "resorts[1].currency"),
        (mutate(new, ["resorts", 0, "id"], "rs_a_jeju"), "resorts[0].id"),  # taken
        (mutate(new, ["rezorts"], []), "rezorts"),
        (b'{"resorts": [{"name": "x"}], "products": [', None),
        (b'{"resorts": [{"name": "x"}], "resorts": []}', None),
    ]
    misses = []
    for i, (doc, field) in enumerate(cases):
        p = import_file(tmp_path, data, doc, name=f"bad{i}.json")
        err = p.stderr.decode("utf-8", "replace")
        if p.returncode == 0:
            misses.append(f"#{i} ({field}): imported: {p.stdout.decode()}")
        elif field is not None and field not in err:
            misses.append(f"#{i}: the error does not name {field}: {err.strip()}")
        if export(data) != before:
            misses.append(f"#{i} ({field}) changed the export")
    assert not misses, "\n".join(misses)
    assert head_of(make_server, data) == head
    # The good document still imports afterwards, in full.
    p = import_file(tmp_path, data, new)
    assert p.returncode == 0, p.stderr.decode()
    s = make_server(data_dir=data)
    assert head_seq(s) > head
    assert s.get("/v1/products/pr_b_pkg").status_code == 200


def test_importing_the_same_file_twice_changes_nothing(make_server, tmp_path):
    data = tmp_path / "data"
    doc = good_doc()
    assert import_file(tmp_path, data, doc).returncode == 0
    before = export(data)
    head = head_of(make_server, data)
    p = import_file(tmp_path, data, doc)
    assert p.returncode != 0
    err = p.stderr.decode()
    assert "resorts[0].id" in err and "rs_a_jeju" in err, err
    # Only the last record collides: the new ones before it are not created either.
    late = {"resorts": [{"id": "rs_c_new", "name": "새 리조트"}],
            "products": [{"id": "pr_c_new", "type": "ticket", "resort_id": "rs_c_new",
                          "name": "새 표"}],
            "rate_plans": [{"product_id": "pr_c_new", "name": "x", "rules": RULES},
                           {"id": "rp_a_std", "product_id": "pr_c_new", "name": "y",
                            "rules": RULES}]}
    p = import_file(tmp_path, data, late)
    assert p.returncode != 0 and "rate_plans[1].id" in p.stderr.decode(), p.stderr.decode()
    assert export(data) == before
    s = make_server(data_dir=data, provision=False)
    assert head_seq(s) == head
    assert s.get("/v1/products/pr_c_new").status_code == 404
    assert "rs_c_new" not in {r["id"] for r in all_resorts(s)}


def strip_made(doc):
    return {k: v for k, v in doc.items() if k not in MADE}


def test_export_import_export_gives_the_same_bytes(make_server, tmp_path):
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    s = make_server(args=["--demo"], data_dir=a_dir)
    # Changes of every kind, so the export is more than the demo file.
    assert s.patch_json("/v1/products/pr_jeju_ocean_deluxe",
                        {"attributes": {"pets": None, "floor": [3, 4]},
                         "name_en": None}).status_code == 200
    assert delete(s, "/v1/products/pr_jeju_pool").status_code == 204
    assert delete(s, "/v1/rate-plans/rp_seorak_cable").status_code == 204
    assert s.patch_json("/v1/rate-plans/rp_seorak_std",
                        {"status": "inactive"}).status_code == 200
    r = s.post_json("/v1/resorts", {"name": "남해 리조트"})
    assert r.status_code == 201
    new_resort = r.json()["id"]
    assert s.patch_json(f"/v1/resorts/{new_resort}", {"stars": 3}).status_code == 200
    odd = {"type": "ticket", "resort_id": new_resort, "currency": "USD",
           "name": "따옴표 \"큰\" \\ 역슬래시 🌊 tab\tend",
           "description": "줄\n바꿈 \u2028 and \u0001 control",
           "attributes": {"ratio": 0.5, "neg": -3, "big": 123456789012, "t": True,
                          "list": ["가", 1, False]},
           "capacity": {"unit": "seats", "count": 0},
           "media": [{"url": "https://example.com/x?a=1&b=%20", "kind": "document",
                      "caption": None}]}
    r = s.post_json("/v1/products", odd)
    assert r.status_code == 201, r.text
    odd_id = r.json()["id"]
    r = s.post_json(f"/v1/products/{odd_id}/rate-plans",
                    {"name": "USD", "rules": RULES + [{"from": "2026-05-10", "to": "2026-05-10",
                                                       "amount": 0}]})
    assert r.status_code == 201, r.text
    # A package patched to contain a product made after it.
    r = s.post_json("/v1/products", {"type": "facility", "resort_id": "rs_haeundae",
                                     "name": "나중에 만든 사우나"})
    assert r.status_code == 201, r.text
    later = r.json()["id"]
    r = s.patch_json("/v1/products/pr_haeundae_spa_package",
                     {"components": [{"product_id": later, "quantity": 1},
                                     {"product_id": "pr_haeundae_ocean_suite", "quantity": 1}]})
    assert r.status_code == 200, r.text
    assert put_json(s, "/v1/products/pr_seorak_cable",
                    {"type": "ticket", "resort_id": "rs_seorak", "name": "케이블카",
                     "status": "inactive"}).status_code == 200
    found = search_all(s)
    ids = [i["id"] for i in found] + ["pr_seorak_cable"]
    docs_a = {i: strip_made(s.get(f"/v1/products/{i}").json()) for i in ids}
    prices_a = {i: s.get(f"/v1/products/{i}/prices?from=2026-05-01&to=2026-06-01").json()
                for i in ids}
    resorts_a = [strip_made(r) for r in all_resorts(s)]
    assert s.stop() == 0

    first = export(a_dir)
    exported = json.loads(first.decode("utf-8"))
    assert set(exported) == {"resorts", "products", "rate_plans"}
    assert len(exported["resorts"]) == 4
    pids = [p["id"] for p in exported["products"]]
    assert "pr_jeju_pool" not in pids and odd_id in pids and "pr_seorak_cable" in pids
    assert "rp_seorak_cable" not in [p["id"] for p in exported["rate_plans"]]
    for p in exported["products"]:
        assert not set(p) & set(MADE + ("rating",)), p
        assert ("components" in p) == (p["type"] == "package")
    for p in exported["rate_plans"]:
        assert not set(p) & set(MADE), p

    p = import_file(tmp_path, b_dir, first, name="export.json")
    assert p.returncode == 0, p.stderr.decode()
    second = export(b_dir)
    assert second == first
    # And the imported catalog reads the same through the API.
    s = make_server(data_dir=b_dir)
    assert [strip_made(r) for r in all_resorts(s)] == resorts_a
    for i in ids:
        assert strip_made(s.get(f"/v1/products/{i}").json()) == docs_a[i], i
        assert s.get(f"/v1/products/{i}/prices?from=2026-05-01&to=2026-06-01").json() == \
            prices_a[i], i
    assert [i["id"] for i in search_all(s)] == [i["id"] for i in found]


def test_export_after_a_component_is_deleted_still_imports(make_server, tmp_path):
    """Whatever the server lets a store become, its export must import again."""
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    s = make_server(args=["--demo"], data_dir=a_dir)
    r = delete(s, "/v1/products/pr_haeundae_spa_pass")  # a component of the spa package
    assert r.status_code in (204, 409), r.text
    assert s.stop() == 0
    first = export(a_dir)
    p = import_file(tmp_path, b_dir, first, name="export.json")
    assert p.returncode == 0, p.stderr.decode()
    assert export(b_dir) == first


def test_facets_count_at_most_2000_matches_and_say_so(make_server, tmp_path):
    """A term found in more than 2,000 products: facets and total cover the first 2,000 in
    log order and say they are not complete; a rarer term is counted exactly."""
    data = tmp_path / "many"
    types = ["room_type", "facility", "ticket"]
    doc = {"resorts": [{"id": "rs_many", "name": "많은 리조트"}],
           "products": [{"type": types[i % 3], "resort_id": "rs_many",
                         "name": f"beta {'gamma' if i % 1000 == 0 else 'delta'} {i}",
                         "attributes": {"view": "ocean" if i < 1000 else "garden"}}
                        for i in range(5003)]}
    import_file(tmp_path, data, doc)
    s = make_server(data_dir=data)
    page = s.get("/v1/products?q=beta&facets=type,attr.view&limit=1").json()
    assert page["facets_complete"] is False and page["total"] == 2000, page
    assert sum(f["count"] for f in page["facets"]["type"]) == 2000
    # The first 2,000 in log order: 1,000 ocean and 1,000 garden.
    assert {f["value"]: f["count"] for f in page["facets"]["attr.view"]} == \
        {"ocean": 1000, "garden": 1000}
    page = s.get("/v1/products?q=gamma&facets=type&limit=1").json()
    assert page["facets_complete"] is True and page["total"] == 6, page
    assert {f["value"]: f["count"] for f in page["facets"]["type"]} == \
        {types[i % 3]: sum(1 for j in range(0, 5003, 1000) if j % 3 == i % 3)
         for i in range(0, 5003, 1000)}
