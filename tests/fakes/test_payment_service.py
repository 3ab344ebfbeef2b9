"""Tests for the fake payment service (tests/fakes/payment_service.py).

Starts the fake as a subprocess on a free port and checks the payment API,
idempotent replay, and every failure mode switchable through /_control.
Run: /usr/bin/python3 -m pytest -q tests/fakes/test_payment_service.py
"""
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
import requests

FAKE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "payment_service.py")
AUTH = {"amount": 150000, "currency": "KRW", "token": "tok_visa", "reference": "bk_1"}


def start_fake(tmp_path):
    port_file = tmp_path / "port"
    proc = subprocess.Popen([sys.executable, FAKE, "--port", "0", "--port-file", str(port_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 5
    while not port_file.exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "fake did not write its port file"
        time.sleep(0.02)
    return proc, f"http://127.0.0.1:{int(port_file.read_text())}"


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    proc, base = start_fake(tmp_path_factory.mktemp("payfake"))
    yield base
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 0  # clean exit on SIGTERM, even with held requests


@pytest.fixture
def pay(fake):
    requests.post(fake + "/_reset", timeout=2).raise_for_status()

    class Client:
        base = fake

        def call(self, op, body, key=None, timeout=2):
            headers = {"Idempotency-Key": key or uuid.uuid4().hex} if key != "" else {}
            return requests.post(f"{fake}/{op}", json=body, headers=headers, timeout=timeout)

        def control(self, **body):
            r = requests.post(fake + "/_control", json=body, timeout=2)
            assert r.status_code == 200, r.text
            return r.json()

        def state(self):
            return requests.get(fake + "/_state", timeout=2).json()

        def authorize(self, **kw):
            r = self.call("authorize", AUTH, **kw)
            assert r.status_code == 200, r.text
            return r.json()["id"]

    return Client()


def test_authorize_replay_mismatch_and_missing_key(pay):
    r = pay.call("authorize", AUTH, key="k1")
    assert r.status_code == 200
    body = r.json()
    assert body["id"].startswith("au_") and body["status"] == "authorized"
    assert {k: body[k] for k in ("amount", "currency", "reference")} == \
        {k: AUTH[k] for k in ("amount", "currency", "reference")}
    again = pay.call("authorize", AUTH, key="k1")
    assert (again.status_code, again.content) == (200, r.content)
    assert pay.call("authorize", dict(AUTH, amount=1), key="k1").status_code == 422
    assert pay.call("authorize", AUTH, key="").status_code == 400
    assert pay.call("authorize", dict(AUTH, amount=0)).status_code == 400
    assert pay.call("authorize", dict(AUTH, currency="KR")).status_code == 400
    # the key is scoped per endpoint: "k1" on /void is a fresh call
    assert pay.call("void", {"authorization_id": body["id"]}, key="k1").status_code == 200
    st = pay.state()
    assert [a["authorize_key"] for a in st["authorizations"]] == ["k1"]
    assert [c["replay"] for c in st["calls"][:3]] == [False, True, True]
    assert [c["status_code"] for c in st["calls"][:4]] == [200, 200, 422, 400]


def test_capture_refund_void_lifecycle(pay):
    aid = pay.authorize()
    assert pay.call("refund", {"authorization_id": aid, "amount": 10}).json() == {"status": "authorized"}
    assert pay.call("capture", {"authorization_id": "au_nope", "amount": 10}).status_code == 404
    assert pay.call("capture", {"authorization_id": aid, "amount": 150000}).json() == {"status": "captured"}
    r = pay.call("void", {"authorization_id": aid})
    assert (r.status_code, r.json()) == (409, {"status": "captured"})
    r = pay.call("refund", {"authorization_id": aid, "amount": 150000})
    assert (r.status_code, r.json()) == (200, {"status": "refunded"})
    assert pay.call("capture", {"authorization_id": aid, "amount": 1}).status_code == 409

    voided = pay.authorize()
    assert pay.call("void", {"authorization_id": voided}).json() == {"status": "voided"}
    assert pay.call("capture", {"authorization_id": voided, "amount": 1}).status_code == 409
    assert {a["id"]: a["status"] for a in pay.state()["authorizations"]} == \
        {aid: "refunded", voided: "voided"}


def test_decline_is_stored_and_count_expires(pay):
    pay.control(mode="decline", count=2)
    # capture is not affected by decline and does not use up its count
    assert pay.call("capture", {"authorization_id": "au_x", "amount": 1}).status_code == 404
    r = pay.call("authorize", AUTH, key="d1")
    assert (r.status_code, r.json()) == (402, {"status": "declined", "reason": "card_declined"})
    assert pay.call("authorize", AUTH).status_code == 402
    assert pay.call("authorize", AUTH).status_code == 200  # count used up: back to ok
    assert pay.call("authorize", AUTH, key="d1").status_code == 402  # stored decline replays


def test_error500_not_performed_nor_stored(pay):
    pay.control(mode="error500", ops=["capture"], count=1)
    aid = pay.authorize()  # other ops unaffected
    r = pay.call("capture", {"authorization_id": aid, "amount": 5}, key="c1")
    assert (r.status_code, r.json()) == (500, {"status": "error"})
    assert pay.state()["authorizations"][0]["status"] == "authorized"
    assert pay.call("capture", {"authorization_id": aid, "amount": 5}, key="c1").status_code == 200


def test_timeout_then_void_by_key_tombstone(pay):
    pay.control(mode="timeout", ops=["authorize"], delay_ms=200)
    with pytest.raises(requests.ConnectionError):  # closed without any answer
        pay.call("authorize", AUTH, key="t1")
    pay.control(mode="ok")
    st = pay.state()
    assert st["authorizations"] == [] and st["calls"][-1]["status_code"] is None
    assert pay.call("void", {"authorize_key": "t1"}).json() == {"status": "voided"}
    assert pay.state()["voided_keys"] == ["t1"]
    r = pay.call("authorize", AUTH, key="t1")
    assert (r.status_code, r.json()) == (409, {"status": "voided"})
    assert pay.state()["authorizations"] == []
    assert pay.call("void", {}).status_code == 400


def test_late_success_client_times_out_retry_gets_stored_result(pay):
    pay.control(mode="late_success", ops=["authorize"], delay_ms=1000)
    with pytest.raises(requests.Timeout):
        pay.call("authorize", AUTH, key="L1", timeout=0.3)
    start = time.monotonic()
    r = pay.call("authorize", AUTH, key="L1")  # replay: answered at once despite the mode
    assert time.monotonic() - start < 0.5
    assert r.status_code == 200 and r.json()["status"] == "authorized"
    st = pay.state()
    assert [(a["id"], a["authorize_key"]) for a in st["authorizations"]] == [(r.json()["id"], "L1")]
    # voiding by key finds the authorization that went through
    assert pay.call("void", {"authorize_key": "L1"}).json() == {"status": "voided"}
    assert pay.state()["authorizations"][0]["status"] == "voided"
    assert pay.state()["voided_keys"] == []


def test_slow_answers_after_delay(pay):
    pay.control(mode="slow", delay_ms=300, count=1)
    start = time.monotonic()
    assert pay.authorize()
    assert time.monotonic() - start >= 0.3
    start = time.monotonic()
    assert pay.authorize()
    assert time.monotonic() - start < 0.3


def test_control_validation_and_reset(pay):
    for bad in ({"mode": "boom"}, {"mode": "slow", "ops": ["pay"]}, {"mode": "slow", "count": 0},
                {"mode": "slow", "delay_ms": -1}):
        assert requests.post(pay.base + "/_control", json=bad, timeout=2).status_code == 400
    assert pay.control(mode="timeout")["delay_ms"] == 30000
    requests.post(pay.base + "/_reset", timeout=2).raise_for_status()
    assert pay.state() == {"authorizations": [], "calls": [], "voided_keys": []}
    assert pay.authorize()  # mode back to ok after reset
