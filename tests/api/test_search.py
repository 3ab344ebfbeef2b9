"""Product search end to end: Korean and English text, every filter, every sort, facets and
pages, each compared with what the test computes from its own copy of the data it created;
cursors under concurrent inserts; every parameter error. Every response is validated against
schema/openapi.yaml."""
import datetime
import json
import os
import random
import string
import subprocess
import threading

import pytest

import openapi_contract
from apihelp import WEEKDAYS, day, delete, plan_amount, problem, qs, search_all
from conftest import BIN, Server

ASCII_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


@pytest.fixture(autouse=True)
def _contract(monkeypatch):
    openapi_contract.install(monkeypatch)


# ---- the reference model ----



def stay_total(product, start, end):
    """The sum of the product's prices over [start, end), or None when a date has none."""
    total, d = 0, day(start)
    while d < day(end):
        amounts = [a for a in (plan_amount(p["rules"], d) for p in product["plans"]
                               if p["status"] == "active") if a is not None]
        if not amounts:
            return None
        total += min(amounts)
        d += datetime.timedelta(days=1)
    return total


def text_form(v):
    """An attribute value's text form: strings as they are, numbers as JSON writes them,
    booleans as true / false."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        integral = float(v).is_integer() and abs(v) < 1e15
        return str(int(v)) if integral else repr(float(v))
    return v


def attr_values(product, key):
    v = product["attributes"].get(key)
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def expected(products, params):
    """The products a search with params (a dict without q) finds, in the order its sort
    gives. products are in creation order."""
    found = []
    for p in products:
        if p["status"] != "active":
            continue
        if "type" in params and p["type"] not in params["type"].split(","):
            continue
        if "resort" in params and p["resort_id"] not in params["resort"].split(","):
            continue
        if "currency" in params and p["currency"] != params["currency"]:
            continue
        ok = True
        for key in {k.split(".")[1] for k in params if k.startswith("attr.")}:
            want = params.get(f"attr.{key}")
            lo, hi = params.get(f"attr.{key}.min"), params.get(f"attr.{key}.max")
            ok = ok and any(
                (want is None or text_form(v) in want.split(",")) and
                (lo is None or (is_number(v) and v >= float(lo))) and
                (hi is None or (is_number(v) and v <= float(hi)))
                for v in attr_values(p, key))
        if not ok:
            continue
        total = None
        if "from" in params:
            total = stay_total(p, params["from"], params["to"])
            if total is None:
                continue
            if "price_min" in params and total < int(params["price_min"]):
                continue
            if "price_max" in params and total > int(params["price_max"]):
                continue
        found.append((p, total))
    sort = params.get("sort", "name")
    if sort == "name":
        found.sort(key=lambda x: x[0]["name"].translate(ASCII_FOLD))  # stable: creation order
    elif sort == "price":
        found.sort(key=lambda x: x[1])
    elif sort == "-price":
        found.sort(key=lambda x: -x[1])
    return found


def expected_facets(found, names):
    """{name: [{value, count}]}: most frequent first, ties by value, at most 50."""
    out = {}
    for name in names:
        counts = {}
        for p, _ in found:
            if name == "type":
                values = {p["type"]}
            elif name == "resort":
                values = {p["resort_id"]}
            else:
                values = {text_form(v) for v in attr_values(p, name[len("attr."):])}
            for v in values:
                counts[v] = counts.get(v, 0) + 1
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].encode("utf-8")))
        out[name] = [{"value": v, "count": c} for v, c in ranked[:50]]
    return out


# ---- the data ----

KO_WORDS = ["오션뷰", "가든", "마운틴뷰", "스파", "디럭스", "트윈", "스위트", "패밀리", "풀빌라"]
EN_WORDS = ["Ocean", "ocean", "Garden", "garden", "Suite", "alpha", "Alpha", "Zen", "zen", "Bay"]
VIEWS = ["ocean", "garden", "mountain", "city"]
AMENITIES = ["balcony", "bathtub", "sofa", "kitchen", "tv"]


def post(server, path, body):
    r = server.post_json(path, body)
    assert r.status_code == 201, r.text
    return r.json()


def make_resort(server, name):
    return post(server, "/v1/resorts", {"name": name})["id"]


def random_plans(rng, currency):
    """Zero to three plans; every plan's first rule covers its whole range, so each plan
    prices every date of its range."""
    plans = []
    scale = 1 if currency == "USD" else 1000
    for k in range(rng.choice([0, 1, 1, 1, 2, 3])):
        end = rng.choice(["2026-05-31", "2026-05-31", "2026-06-30", "2026-05-09"])
        base = rng.randrange(50, 400) * scale
        rules = [{"from": "2026-05-01", "to": end, "amount": base}]
        if rng.random() < 0.6:
            rules.append({"from": "2026-05-01", "to": end, "weekdays": ["fri", "sat"],
                          "amount": base + rng.randrange(0, 100) * scale})
        if rng.random() < 0.4:
            rules.append({"from": "2026-05-05", "to": "2026-05-07",
                          "amount": rng.randrange(30, 500) * scale})
        status = "inactive" if k and rng.random() < 0.3 else "active"
        plans.append({"name": f"plan {k}", "status": status, "rules": rules})
    return plans


def random_attributes(rng):
    attrs = {}
    if rng.random() < 0.8:
        attrs["view"] = rng.choice(VIEWS)
    if rng.random() < 0.7:
        attrs["beds"] = rng.choice([1, 2, 2, 3])
    if rng.random() < 0.6:
        attrs["pets"] = rng.random() < 0.5
    if rng.random() < 0.7:
        attrs["size_m2"] = rng.choice([24, 28, 30, 30.5, 33, 40, 42, 65, 80.25])
    if rng.random() < 0.6:
        attrs["amenities"] = rng.sample(AMENITIES, rng.randint(1, 3))
    if rng.random() < 0.2:
        attrs["floors"] = rng.sample([1, 2, 3, 4], 2)
    return attrs


def build_catalog(server, n=40, seed=20261125):
    """Creates two resorts and n products with random attributes and rate plans, one at a
    time (so creation order is known); returns (resort ids, products as the test knows
    them, in creation order)."""
    rng = random.Random(seed)
    resorts = [make_resort(server, "제주 오션 리조트"), make_resort(server, "설악 마운틴 리조트")]
    products = []
    for i in range(n):
        rid = rng.choice(resorts)
        same = [p for p in products if p["resort_id"] == rid and p["type"] != "package"
                and p["status"] == "active"]
        types = ["room_type", "room_type", "facility", "ticket"] + (["package"] if same else [])
        ptype = rng.choice(types)
        name = rng.choice([f"{rng.choice(KO_WORDS)} {rng.choice(KO_WORDS)}",
                           f"{rng.choice(EN_WORDS)} {rng.choice(EN_WORDS)}",
                           f"{rng.choice(EN_WORDS)} {i}", "Alpha", "alpha"])
        currency = "USD" if rng.random() < 0.2 else "KRW"
        body = {"type": ptype, "resort_id": rid, "name": name, "currency": currency,
                "attributes": random_attributes(rng),
                "status": "inactive" if rng.random() < 0.15 else "active"}
        if ptype == "package":
            body["components"] = [{"product_id": c["id"], "quantity": 1}
                                  for c in rng.sample(same, min(len(same), 2))]
        doc = post(server, "/v1/products", body)
        doc["plans"] = []
        for plan in random_plans(rng, currency):
            post(server, f"/v1/products/{doc['id']}/rate-plans", plan)
            doc["plans"].append(plan)
        products.append(doc)
    return resorts, products


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """One server with the random catalog for the read-only tests of this module."""
    s = Server(tmp_path_factory.mktemp("search") / "data").start()
    try:
        with pytest.MonkeyPatch.context() as mp:
            openapi_contract.install(mp)
            resorts, products = build_catalog(s)
        yield s, resorts, products
    finally:
        rc = s.stop()
        assert rc == 0, "".join(s.logs[-80:])
        assert not s.sanitizer_reports(), "".join(s.logs[-80:])


def check_searches(server, products, cases, limit=7):
    """Each params dict of cases must find exactly what expected() says, in that order, with
    the right stay_total. Collects every miss."""
    misses = []
    for params in cases:
        want = expected(products, params)
        got = search_all(server, params, limit=limit)
        want_ids = [p["id"] for p, _ in want]
        got_ids = [i["id"] for i in got]
        if got_ids != want_ids:
            names = {p["id"]: p["name"] for p in products}
            misses.append(f"{qs(params)}: got {[names.get(i, i) for i in got_ids]}, "
                          f"want {[names[i] for i in want_ids]}")
            continue
        for item, (_, total) in zip(got, want):
            if total is None and "stay_total" in item:
                misses.append(f"{qs(params)}: stay_total without a stay")
            if total is not None and item.get("stay_total") != total:
                misses.append(f"{qs(params)}: {item['name']} stay_total "
                              f"{item.get('stay_total')}, want {total}")
    assert not misses, "\n".join(misses)


# ---- filters and sorts against the model ----

def test_the_catalog_is_varied_enough(catalog):
    _, resorts, products = catalog
    active = [p for p in products if p["status"] == "active"]
    assert len(active) > 25 and len(active) < len(products)
    assert {p["type"] for p in active} == {"room_type", "facility", "ticket", "package"}
    assert {p["currency"] for p in active} == {"KRW", "USD"}
    assert {p["resort_id"] for p in active} == set(resorts)
    assert expected(products, {"from": "2026-05-04", "to": "2026-05-08"})
    assert len({p["name"].lower() for p in active}) < len(active)  # names that tie


def test_filters(catalog):
    server, (r1, r2), products = catalog
    check_searches(server, products, [
        {},
        {"type": "room_type"},
        {"type": "room_type,ticket"},
        {"type": "package"},
        {"type": "facility,package,ticket,room_type"},
        {"resort": r1},
        {"resort": f"{r2},{r1}"},
        {"resort": "rs_nothere"},
        {"currency": "USD"},
        {"currency": "EUR"},
        {"currency": "KRW", "type": "room_type"},
        {"attr.view": "ocean"},
        {"attr.view": "ocean,garden"},
        {"attr.view": "Ocean"},
        {"attr.amenities": "balcony"},
        {"attr.amenities": "balcony,tv"},
        {"attr.beds": "2"},
        {"attr.beds": "2,3", "attr.view": "ocean"},
        {"attr.pets": "true"},
        {"attr.pets": "false"},
        {"attr.size_m2": "30.5"},
        {"attr.size_m2": "30"},
        {"attr.size_m2.min": "30"},
        {"attr.size_m2.max": "40"},
        {"attr.size_m2.min": "30", "attr.size_m2.max": "40"},
        {"attr.size_m2.min": "30.5", "attr.size_m2.max": "30.5"},
        {"attr.size_m2.min": "30.25"},
        {"attr.size_m2.min": "-1e3", "attr.size_m2.max": "1e2"},
        {"attr.floors.min": "4"},
        {"attr.floors": "1", "attr.floors.min": "3"},
        {"attr.beds.min": "2", "attr.size_m2.max": "33", "attr.pets": "true"},
        {"attr.view.min": "0"},
        {"attr.pets.min": "0"},
        {"attr.nosuchkey": "x"},
        {"type": "room_type", "resort": r1, "attr.view": "ocean,mountain", "currency": "KRW"},
    ])


def test_stays_and_prices(catalog):
    server, (r1, _), products = catalog
    totals = sorted(t for _, t in expected(products, {"from": "2026-05-04", "to": "2026-05-08"}))
    mid = totals[len(totals) // 2]
    check_searches(server, products, [
        {"from": "2026-05-04", "to": "2026-05-08"},
        {"from": "2026-05-08", "to": "2026-05-11"},
        {"from": "2026-05-28", "to": "2026-06-02"},
        {"from": "2026-06-29", "to": "2026-07-01"},
        {"from": "2026-04-30", "to": "2026-05-02"},
        {"from": "2026-05-04", "to": "2026-05-08", "price_min": str(mid)},
        {"from": "2026-05-04", "to": "2026-05-08", "price_max": str(mid)},
        {"from": "2026-05-04", "to": "2026-05-08", "price_min": str(mid),
         "price_max": str(mid)},
        {"from": "2026-05-04", "to": "2026-05-08", "price_min": "0", "price_max": "2000"},
        {"from": "2026-05-04", "to": "2026-05-08", "currency": "USD"},
        {"from": "2026-05-01", "to": "2026-05-31", "type": "room_type", "resort": r1},
        {"from": "2026-05-04", "to": "2026-05-08", "sort": "price"},
        {"from": "2026-05-04", "to": "2026-05-08", "sort": "-price"},
        {"from": "2026-05-08", "to": "2026-05-11", "sort": "price", "attr.view": "ocean"},
        {"from": "2026-05-08", "to": "2026-05-11", "sort": "-price", "price_max": str(mid)},
        {"from": "2026-05-04", "to": "2026-05-08", "sort": "name"},
    ])


def test_sorts_and_page_sizes(catalog):
    server, _, products = catalog
    for limit in (1, 3, 100):
        check_searches(server, products, [{"sort": "name"}, {"type": "room_type"}], limit=limit)
    # Nothing is rated yet: rating order is creation order.
    got = [i["id"] for i in search_all(server, {"sort": "rating"}, limit=4)]
    assert got == [p["id"] for p in products if p["status"] == "active"]
    active = [p for p in products if p["status"] == "active"]
    r = server.get("/v1/products")
    assert r.headers["Cache-Control"].startswith("public")
    page = r.json()
    assert len(page["items"]) == 20 and page["next_cursor"]  # the default page
    page = server.get("/v1/products?limit=100").json()
    assert len(page["items"]) == len(active) and page["next_cursor"] is None
    page = server.get(f"/v1/products?limit={len(active)}").json()
    assert len(page["items"]) == len(active) and page["next_cursor"] is None
    page = server.get(f"/v1/products?limit={len(active) - 1}").json()
    assert page["next_cursor"]
    last = server.get(f"/v1/products?limit=5&cursor={page['next_cursor']}").json()
    assert len(last["items"]) == 1 and last["next_cursor"] is None
    h = server.head("/v1/products?type=ticket")
    assert h.status_code == 200 and h.content == b""


def test_facets(catalog):
    server, (r1, _), products = catalog
    names = ["type", "resort", "attr.view", "attr.amenities", "attr.pets", "attr.beds",
             "attr.size_m2", "attr.floors"]
    misses = []
    for params in [{}, {"type": "room_type"}, {"resort": r1, "attr.pets": "true"},
                   {"from": "2026-05-04", "to": "2026-05-08"},
                   {"attr.size_m2.min": "30", "currency": "KRW"},
                   {"resort": "rs_nothere"}]:
        found = expected(products, params)
        want = expected_facets(found, names)
        query = {**params, "facets": ",".join(names), "limit": "3"}
        page = server.get("/v1/products?" + qs(query)).json()
        if page["total"] != len(found):
            misses.append(f"{qs(params)}: total {page['total']}, want {len(found)}")
        for name in names:
            if page["facets"].get(name) != want[name]:
                misses.append(f"{qs(params)}: facet {name} is {page['facets'].get(name)}, "
                              f"want {want[name]}")
        # Every page counts the whole search, not itself.
        if page["next_cursor"]:
            query["cursor"] = page["next_cursor"]
            later = server.get("/v1/products?" + qs(query)).json()
            if (later["total"], later["facets"]) != (page["total"], page["facets"]):
                misses.append(f"{qs(params)}: the second page counts differently")
    assert not misses, "\n".join(misses)
    # Without facets there is neither total nor facets.
    page = server.get("/v1/products?limit=1").json()
    assert "total" not in page and "facets" not in page
    page = server.get("/v1/products?limit=1&facets=type").json()
    assert set(page["facets"]) == {"type"}


def test_numbers_compare_in_their_json_text_form(server):
    """attr.K=v compares with the value as JSON writes it: 2 (sent as 2.0), 4.7, 0.1."""
    rid = make_resort(server, "r")
    pid = post(server, "/v1/products",
               {"type": "room_type", "resort_id": rid, "name": "수치",
                "attributes": {"beds": 2.0, "score": 4.7, "ratio": 0.1, "big": 1e20}})["id"]
    assert post(server, "/v1/products", {"type": "ticket", "resort_id": rid, "name": "x",
                                         "attributes": {"score": 4}})
    misses = []
    for key, value in [("beds", "2"), ("score", "4.7"), ("ratio", "0.1"), ("big", "1e+20")]:
        got = [i["id"] for i in search_all(server, {f"attr.{key}": value})]
        if got != [pid]:
            misses.append(f"attr.{key}={value} found {got}")
    facets = server.get("/v1/products?facets=attr.score,attr.ratio").json()["facets"]
    if facets != {"attr.score": [{"value": "4", "count": 1}, {"value": "4.7", "count": 1}],
                  "attr.ratio": [{"value": "0.1", "count": 1}]}:
        misses.append(f"facets {facets}")
    assert [i["id"] for i in search_all(server, {"attr.score.min": "4.5"})] == [pid]
    assert not misses, "\n".join(misses)


def test_korean_attribute_values(server):
    rid = make_resort(server, "r")
    a = post(server, "/v1/products", {"type": "room_type", "resort_id": rid, "name": "가",
                                      "attributes": {"view": "바다", "tags": ["조용함", "금연"]}})
    b = post(server, "/v1/products", {"type": "room_type", "resort_id": rid, "name": "나",
                                      "attributes": {"view": "산", "tags": ["금연"]}})
    assert [i["id"] for i in search_all(server, {"attr.view": "바다"})] == [a["id"]]
    assert [i["id"] for i in search_all(server, {"attr.tags": "금연"})] == [a["id"], b["id"]]
    assert [i["id"] for i in search_all(server, {"attr.tags": "조용함,없음"})] == [a["id"]]
    assert [i["id"] for i in search_all(server, {"q": "조용함"})] == [a["id"]]  # searched too
    page = server.get("/v1/products?" + qs({"facets": "attr.tags,attr.view"})).json()
    assert page["facets"] == {
        "attr.tags": [{"value": "금연", "count": 2}, {"value": "조용함", "count": 1}],
        "attr.view": [{"value": "바다", "count": 1}, {"value": "산", "count": 1}]}


# ---- text ----

def names_for(server, q, **more):
    return [i["name"] for i in search_all(server, {"q": q, **more})]


def test_korean_and_english_text(demo_server):
    s = demo_server
    rid = search_all(s, {"q": "오션뷰"})[0]["resort_id"]
    post(s, "/v1/products", {"type": "facility", "resort_id": rid, "name": "뷰티 살롱",
                             "name_en": "Beauty Salon"})
    misses = []
    for q, want in [
        ("오션", {"오션뷰 디럭스", "오션 스위트"}),          # a prefix of a longer run
        ("스파", {"프리미엄스파 패키지", "스파 이용권"}),     # inside a run
        ("deluxe", {"오션뷰 디럭스"}),                    # Déluxe: diacritics folded
        ("DELUXE", {"오션뷰 디럭스"}),                    # case folded
        ("Déluxe", {"오션뷰 디럭스"}),
        ("뷰", {"오션뷰 디럭스", "마운틴뷰 스탠다드", "뷰티 살롱"}),  # one syllable: a prefix
        ("션", {"오션뷰 디럭스", "오션 스위트"}),            # one syllable inside a run
        ("오션뷰 디럭스", {"오션뷰 디럭스"}),
        ("오션 deluxe", {"오션뷰 디럭스"}),                # terms are ANDed
        ("오션\u3000suite", {"오션 스위트"}),              # the ideographic space separates
        ("ocean", {"오션뷰 디럭스", "오션 스위트"}),        # English names and attribute text
        ("balcony", {"오션뷰 디럭스"}),                   # an array attribute's strings
        ("케이블카", {"케이블카 왕복권"}),
        ("gwongeumseong", {"케이블카 왕복권"}),           # the description
        ("스파 ocean", set()),
        ("없는말", set()),
        ("!!! ocean ---", {"오션뷰 디럭스", "오션 스위트"}),  # terms without letters dropped
    ]:
        got = names_for(s, q)
        if set(got) != want or len(got) != len(want):
            misses.append(f"q={q!r}: got {got}, want {sorted(want)}")
    assert not misses, "\n".join(misses)
    # Text that looks like FTS5 syntax is searched as text, never run as a query.
    for q in ['a"b', '오션" OR "스파', "NEAR(오션 스파)", "ocean*", "-ocean", "name:ocean",
              "ocean AND", "(ocean", "^ocean", "a'b", "a\\"]:
        r = s.get("/v1/products?" + qs({"q": q}))
        assert r.status_code == 200, (q, r.text)
    assert names_for(s, "name:ocean") == []
    # Text, filters and every sort combine.
    assert names_for(s, "오션", type="room_type", sort="name") == ["오션 스위트", "오션뷰 디럭스"]
    assert set(names_for(s, "스파", type="ticket")) == {"스파 이용권"}
    stay = names_for(s, "오션", **{"from": "2026-07-10", "to": "2026-07-12", "sort": "price"})
    assert stay == ["오션뷰 디럭스", "오션 스위트"]  # 640000 and 940000


def test_relevance(server):
    rid = make_resort(server, "r")
    made = {}
    for name, body in [
        ("desc", {"name": "One", "description": "a quiet lounge with a view of the bay"}),
        ("name", {"name": "Sunset Lounge"}),
        ("other", {"name": "Two", "description": "nothing here"}),
        ("attr", {"name": "Three", "attributes": {"style": "lounge"}}),
        ("both", {"name": "Lounge", "description": "the lounge"}),
    ]:
        made[name] = post(server, "/v1/products",
                          {"type": "facility", "resort_id": rid, **body})["id"]
    order = [made[k] for k in ("both", "name", "attr", "desc")]
    assert [i["id"] for i in search_all(server, {"q": "lounge"})] == order
    assert [i["id"] for i in search_all(server, {"q": "lounge", "sort": "relevance"},
                                        limit=1)] == order
    assert [i["id"] for i in search_all(server, {"q": "LOUNGE", "sort": "name"})] == \
        [made[k] for k in ("both", "desc", "name", "attr")]
    # Deleted and inactive products are not found.
    assert delete(server, f"/v1/products/{made['both']}").status_code == 204
    server.patch_json(f"/v1/products/{made['attr']}", {"status": "inactive"})
    assert [i["id"] for i in search_all(server, {"q": "lounge"})] == \
        [made["name"], made["desc"]]


def test_q_of_only_non_ascii_punctuation_is_a_400(demo_server):
    """Punctuation and symbols outside ASCII are not letters either: a q of nothing else has
    no term (400), and such a term neither counts toward the 8 nor changes what q finds."""
    s = demo_server
    misses = []
    for q in ["。", "…", "—", "¿", "「」", "★", "🌊", "。 、 ・"]:
        r = s.get("/v1/products?" + qs({"q": q}))
        field = r.json().get("field") if r.status_code == 400 else None
        if (r.status_code, field) != (400, "q"):
            misses.append(f"q={q!r} -> {r.status_code} {r.text[:120]}")
    assert not misses, "\n".join(misses)
    assert names_for(s, "오션 。") == names_for(s, "오션")
    r = s.get("/v1/products?" + qs({"q": " ".join(f"t{i}" for i in range(8)) + " 。 —"}))
    assert r.status_code == 200, r.text


# ---- pages under concurrent inserts ----

@pytest.mark.parametrize("sort", ["name", "price", "relevance"])
def test_pages_neither_skip_nor_repeat_under_inserts(server, sort):
    rid = make_resort(server, "r")
    rng = random.Random(sort)
    words = ["Alpha", "bravo", "Charlie", "delta", "Echo", "가든", "오션", "스파", "zulu"]

    def add(i):
        name = f"{rng.choice(words)} 객실 {rng.randrange(1000)}"
        doc = post(server, "/v1/products",
                   {"type": "room_type", "resort_id": rid, "name": name,
                    "attributes": {"batch": "b"}})
        if sort == "price":
            post(server, f"/v1/products/{doc['id']}/rate-plans",
                 {"name": "p", "rules": [{"from": "2026-05-01", "to": "2026-05-31",
                                          "amount": rng.randrange(1, 40) * 1000}]})
        return doc

    initial = {add(i)["id"] for i in range(24)}
    params = {"name": {"sort": "name"},
              "price": {"sort": "price", "from": "2026-05-04", "to": "2026-05-06"},
              "relevance": {"q": "객실"}}[sort]
    params = {"attr.batch": "b", **params}
    inserted, errors = [], []
    cond, stop = threading.Condition(), threading.Event()

    def inserter():
        try:
            i = 1000
            while not stop.is_set():
                doc = add(i)
                i += 1
                with cond:
                    inserted.append(doc["id"])
                    cond.notify_all()
        except Exception as e:  # reported by the main thread
            errors.append(e)
            with cond:
                cond.notify_all()

    t = threading.Thread(target=inserter, daemon=True)
    t.start()
    seen, keys, cursor, pages = [], [], None, 0
    try:
        while True:
            with cond:
                done_before = len(inserted)
            query = {**params, "limit": "4", **({"cursor": cursor} if cursor else {})}
            r = server.get("/v1/products?" + qs(query))
            assert r.status_code == 200, r.text
            page = r.json()
            seen += [i["id"] for i in page["items"]]
            keys += [i["name"].translate(ASCII_FOLD) if sort == "name" else
                     i.get("stay_total") for i in page["items"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
            assert pages < 200
            # At least one insert lands between this page and the next.
            with cond:
                assert cond.wait_for(lambda: len(inserted) > done_before or errors, 20)
            assert not errors, errors
    finally:
        stop.set()
        t.join(20)
    assert not errors, errors
    assert pages >= 6 and inserted
    assert len(seen) == len(set(seen)), "a product appeared on two pages"
    assert initial <= set(seen), f"{len(initial - set(seen))} products were skipped"
    assert set(seen) <= initial | set(inserted)
    if sort != "relevance":
        assert keys == sorted(keys), "the pages went back in the sort order"


def test_relevance_ranks_the_first_1000_then_log_order(make_server, tmp_path):
    """Past SEARCH_RANKED_MAX matches, relevance lists the rest in creation order; pages
    cross the boundary without skipping or repeating, also while products are added."""
    n = 1010
    doc = {"resorts": [{"id": "rs_big", "name": "큰 리조트"}],
           "products": [{"id": f"pr_{i:05d}", "type": "ticket", "resort_id": "rs_big",
                         "name": f"lounge {i}", "description": " ".join(["lounge"] * (i % 3 + 1)),
                         "attributes": {"code": f"c{i % 60:02d}"}} for i in range(n)]}
    path = tmp_path / "big.json"
    path.write_text(json.dumps(doc))
    data = tmp_path / "data"
    p = subprocess.run([BIN, "import", str(path), "--data-dir", str(data)], capture_output=True,
                       env=dict(os.environ, ASAN_OPTIONS="detect_leaks=1"), timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    s = make_server(data_dir=data)
    # Facets: 60 values, at most 50 reported, most frequent first, ties by value.
    page = s.get("/v1/products?q=lounge&facets=attr.code,type&limit=1").json()
    assert page["total"] == n
    assert page["facets"]["attr.code"] == [{"value": f"c{j:02d}", "count": 17}
                                           for j in range(50)]
    assert page["facets"]["type"] == [{"value": "ticket", "count": n}]
    # More description hits score higher; equal scores go in creation order.
    ranked = sorted(range(1000), key=lambda i: (-(i % 3), i))
    added, seen, cursor = [], [], None
    while True:
        query = {"q": "lounge", "limit": "100", **({"cursor": cursor} if cursor else {})}
        r = s.get("/v1/products?" + qs(query))
        assert r.status_code == 200, r.text
        seen += [i["id"] for i in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
        added.append(post(s, "/v1/products", {"type": "ticket", "resort_id": "rs_big",
                                              "name": "lounge new",
                                              "description": "lounge lounge lounge"})["id"])
    want = [f"pr_{i:05d}" for i in ranked] + [f"pr_{i:05d}" for i in range(1000, n)] + added
    assert len(seen) == len(set(seen)), "a product appeared on two pages"
    assert len(seen) == len(want), f"relevance listed {len(seen)} of {len(want)} matches"
    assert seen == want
    names = [i["name"] for i in search_all(s, {"q": "lounge", "sort": "name"})]
    assert names == sorted(names) and len(names) == n + len(added)


def test_long_names_page_by_name(server):
    """A name sort's cursor carries the name: the longest names (200 Korean characters)
    still page."""
    rid = make_resort(server, "r")
    made = []
    for last in "다나가다":
        made.append(post(server, "/v1/products", {"type": "ticket", "resort_id": rid,
                                                  "name": "가" * 199 + last})["id"])
    got = [i["id"] for i in search_all(server, {"sort": "name"}, limit=1)]
    assert got == [made[2], made[1], made[0], made[3]]


# ---- cursors ----

def test_cursor_continues_only_its_own_search(catalog):
    server, (r1, r2), products = catalog
    base = {"type": "room_type,ticket", "resort": f"{r1},{r2}", "sort": "name"}
    first = server.get("/v1/products?" + qs({**base, "limit": "3"})).json()
    cursor = first["next_cursor"]
    assert cursor
    want = [p["id"] for p, _ in expected(products, base)][3:]
    # limit, facets and the order of list values may change.
    rest = search_all(server, {**base, "cursor": cursor, "facets": "type"}, limit=100)
    assert [i["id"] for i in rest] == want
    swapped = {"type": "ticket,room_type", "resort": f"{r2},{r1}", "sort": "name",
               "cursor": cursor, "limit": "2"}
    page = server.get("/v1/products?" + qs(swapped)).json()
    assert [i["id"] for i in page["items"]] == want[:2]
    for changed in [{"type": "room_type"}, {"resort": r1}, {"sort": "rating"},
                    {"q": "오션", "sort": "name"}, {"attr.view": "ocean"}, {"currency": "KRW"},
                    {"from": "2026-05-04", "to": "2026-05-08"}]:
        problem(server.get("/v1/products?" + qs({**base, **changed, "cursor": cursor})), 400,
                "cursor")
    stay = {"from": "2026-05-04", "to": "2026-05-08", "sort": "price", "limit": "2"}
    pc = server.get("/v1/products?" + qs(stay)).json()["next_cursor"]
    problem(server.get("/v1/products?" + qs({**stay, "sort": "-price", "cursor": pc})), 400,
            "cursor")
    problem(server.get("/v1/products?" + qs({**stay, "to": "2026-05-09", "cursor": pc})), 400,
            "cursor")
    for bad in ["x", "AAAA", cursor[:-2], cursor + "A", cursor[:10], "r1.abc", "a\u00e9",
                cursor.replace(cursor[5], "A" if cursor[5] != "A" else "B", 1)]:
        problem(server.get("/v1/products?" + qs({**base, "cursor": bad})), 400, "cursor")
    problem(server.get("/v1/products?cursor=%00"), 400)


# ---- parameter errors ----

def test_parameter_errors_name_the_parameter(catalog):
    server = catalog[0]
    stay = "from=2026-05-04&to=2026-05-08"
    many_terms = "%20".join(f"t{i}" for i in range(9))
    nine_keys = "&".join(f"attr.k{i}=x" for i in range(9))
    cases = [
        ("foo=1", "foo"),
        ("Q=ocean", "Q"),
        ("attr=x", "attr"),
        ("q=a&q=b", "q"),
        ("type=room_type&type=ticket", "type"),
        ("sort=name&sort=name", "sort"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=abc", "limit"),
        ("limit=-1", "limit"),
        ("limit=", "limit"),
        ("limit=1.5", "limit"),
        ("limit=%2B5", "limit"),
        ("limit=99999999999999999999999", "limit"),
        ("from=2026-05-04", "to"),
        ("to=2026-05-08", "from"),
        ("from=2026-02-30&to=2026-03-02", "from"),
        ("from=2026-5-4&to=2026-05-08", "from"),
        ("from=2026-05-04&to=tomorrow", "to"),
        ("from=2026-05-04&to=2026-05-04", "to"),
        ("from=2026-05-08&to=2026-05-04", "to"),
        ("from=2026-01-01&to=2027-01-03", "to"),
        ("price_min=1", "price_min"),
        ("price_max=1", "price_max"),
        ("price_min=1&price_max=2", "price_min"),
        (f"{stay}&price_min=5&price_max=4", "price_min"),
        (f"{stay}&price_min=-1", "price_min"),
        (f"{stay}&price_max=1.5", "price_max"),
        (f"{stay}&price_max=1000000000001", "price_max"),
        ("sort=relevance", "sort"),
        ("sort=price", "sort"),
        ("sort=-price", "sort"),
        ("sort=cheapest", "sort"),
        ("sort=", "sort"),
        ("sort=Name", "sort"),
        ("q=", "q"),
        ("q=!!!", "q"),
        ("q=...%20---%20%3F%3F", "q"),
        ("q=%E3%80%80", "q"),
        (f"q={many_terms}", "q"),
        ("q=" + "a" * 201, "q"),
        ("type=hotel", "type"),
        ("type=room_type,room_type", "type"),
        ("type=", "type"),
        ("type=room_type,", "type"),
        ("currency=usd", "currency"),
        ("currency=US", "currency"),
        ("currency=USDX", "currency"),
        ("resort=bad!id", "resort"),
        ("resort=", "resort"),
        ("attr.View=x", "attr.View"),
        ("attr.1view=x", "attr.1view"),
        ("attr.=x", "attr."),
        ("attr.view.avg=1", "attr.view.avg"),
        ("attr.view=", "attr.view"),
        ("attr.view=a,,b", "attr.view"),
        ("attr.view=a,a", "attr.view"),
        ("attr.view=a&attr.view=b", "attr.view"),
        ("attr.size.min=abc", "attr.size.min"),
        ("attr.size.min=inf", "attr.size.min"),
        ("attr.size.min=nan", "attr.size.min"),
        ("attr.size.min=1e999", "attr.size.min"),
        ("attr.size.min=0x10", "attr.size.min"),
        ("attr.size.min=", "attr.size.min"),
        ("attr.size.max=%201", "attr.size.max"),
        ("attr.size.min=5&attr.size.max=1", "attr.size.min"),
        ("attr.size.min=1&attr.size.min=2", "attr.size.min"),
        (nine_keys, "attr.k8"),
        ("facets=bogus", "facets"),
        ("facets=attr.View", "facets"),
        ("facets=type,type", "facets"),
        ("facets=attr.", "facets"),
        ("facets=" + ",".join(f"attr.k{i}" for i in range(9)), "facets"),
        ("cursor=garbage!", "cursor"),
        ("cursor=", "cursor"),
        ("sort=relevance&type=room_type", "sort"),
    ]
    misses = []
    for query, field in cases:
        r = server.get(f"/v1/products?{query}")
        body = r.json() if r.headers.get("Content-Type") == "application/problem+json" else {}
        if r.status_code != 400 or body.get("field") != field:
            misses.append(f"{query[:80]} -> {r.status_code} field {body.get('field')!r}, "
                          f"want 400 {field!r}: {r.text[:160]}")
    assert not misses, "\n".join(misses)
    # Positive edges of the same rules.
    for query in ["from=2026-01-01&to=2027-01-02", "limit=1", "limit=100",
                  f"{stay}&price_min=0&price_max=1000000000000", "q=" + "a" * 200,
                  "q=" + "%20".join(f"t{i}" for i in range(8)),
                  "&".join(f"attr.k{i}=x" for i in range(8)),
                  "facets=" + ",".join(f"attr.k{i}" for i in range(8)),
                  "attr.size.min=-0&attr.size.max=0", "attr.size.min=.5"]:
        r = server.get(f"/v1/products?{query}")
        assert r.status_code == 200, (query, r.text)
    # Too many parameters in all, and a HEAD with a bad parameter.
    r = server.get("/v1/products?" + "&".join(f"attr.k{i % 8}.min={i}" for i in range(33)))
    assert r.status_code == 400
    h = server.head("/v1/products?limit=0")
    assert h.status_code == 400 and h.content == b""


def test_cached_search_pages_follow_every_catalog_change(server):
    """Workers keep search pages until the catalog changes (search_cache_entries): the same
    query, asked again and again (so both workers answer from their caches), must show each
    create, rename and delete as soon as the write is answered."""
    rid = make_resort(server, "r")

    def names():
        seen = {json.dumps(sorted(i["name"] for i in search_all(server, {"q": "lagoon"})))
                for _ in range(6)}
        assert len(seen) == 1, seen  # every worker agrees
        return json.loads(seen.pop())

    assert names() == []
    pid = post(server, "/v1/products", {"type": "room_type", "resort_id": rid,
                                        "name": "Lagoon Suite"})["id"]
    assert names() == ["Lagoon Suite"]
    r = server.patch_json(f"/v1/products/{pid}", {"name": "Reef Suite"})
    assert r.status_code == 200, r.text
    assert names() == []
    r = server.patch_json(f"/v1/products/{pid}", {"name": "Blue Lagoon Suite"})
    assert r.status_code == 200, r.text
    assert names() == ["Blue Lagoon Suite"]
    assert server.delete(f"/v1/products/{pid}").status_code in (200, 204)
    assert names() == []
