"""`resortd check --rebuild-catalog`: the read model rebuilt from the log equals the live one,
and a live catalog.db that drifted from the log is reported, not passed."""
import sqlite3
import subprocess

from conftest import BIN

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def check_rebuild(data_dir):
    p = subprocess.run([BIN, "check", "--rebuild-catalog", "--data-dir", data_dir],
                       capture_output=True, text=True, timeout=120)
    for mark in SANITIZER_MARKS:
        assert mark not in p.stderr, p.stderr
    return p


def busy_catalog(server):
    """Every kind of catalog event: creates, replace, patch, delete, rate plans, reviews."""
    pid = "pr_jeju_ocean_deluxe"
    assert server.patch_json(f"/v1/products/{pid}", {"attributes": {"view": None, "floor": 9}},
                             headers={"Content-Type": "application/merge-patch+json"}
                             ).status_code == 200
    r = server.post_json("/v1/products", {"type": "ticket", "resort_id": "rs_jeju",
                                          "name": "요트 투어", "name_en": "Yacht Tour"})
    assert r.status_code == 201, r.text
    new = r.json()["id"]

    r = server.request("PUT", f"/v1/products/{new}",
                       json={"type": "ticket", "resort_id": "rs_jeju", "name": "선셋 요트 투어"})
    assert r.status_code == 200, r.text
    r = server.post_json(f"/v1/products/{new}/rate-plans", {"name": "Adult", "rules": [
        {"from": "2026-12-01", "to": "2026-12-31", "amount": 90000}]})
    assert r.status_code == 201, r.text
    for guest, rating in (("g1", 5), ("g2", 3)):
        server.add_user(guest, "staff")
        r = server.post_json(f"/v1/products/{pid}/reviews", {"rating": rating},
                             headers=server.login(guest))
        assert r.status_code == 201, r.text
    hidden = r.json()["id"]
    assert server.patch_json(f"/v1/reviews/{hidden}", {"state": "hidden"}).status_code == 200
    assert server.delete("/v1/products/pr_jeju_pool").status_code == 204


def test_rebuild_equals_live_catalog(demo_server):
    busy_catalog(demo_server)
    demo_server.stop()
    p = check_rebuild(demo_server.data_dir)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "rebuild: identical in content" in p.stdout
    assert "rebuild: products           9 rows, 0 only in catalog.db, 0 only in the rebuild" \
        in p.stdout, p.stdout
    assert "reviews            2 rows" in p.stdout


def test_rebuild_reports_a_drifted_catalog(demo_server):
    demo_server.stop()
    db = sqlite3.connect(f"{demo_server.data_dir}/catalog.db")
    db.execute("UPDATE day_prices SET amount = amount + 1 WHERE day = 20454")
    db.commit()
    db.close()
    p = check_rebuild(demo_server.data_dir)
    assert p.returncode == 1, p.stdout
    assert "day_prices" in p.stdout and "1 tables differ" in p.stdout, p.stdout
    line = next(l for l in p.stdout.splitlines() if "day_prices" in l)
    assert "0 only in catalog.db" not in line
