"""Bookings paid through the payment service (provider http), against the fake service in
tests/fakes/payment_service.py steered into each failure mode: the booking's final state,
the inventory counters and what the service holds must always agree. A declined or
unreachable payment fails the booking and releases its rooms, and whatever authorize may
have done is voided; a payment that went through late is either kept (confirmed and
captured) or undone (failed and voided), never both; a cancellation refunds the total less
the fee. Every response of resortd is validated against schema/openapi.yaml (the fake's
are not: it is called through urllib)."""
import datetime
import json
import os
import socket
import subprocess
import time
import urllib.request

import pytest

import openapi_contract
from conftest import Server
from apihelp import (book, booking_action, counts, get_booking, hold, iso, make_bookable,
                     post_booking, problem, set_inventory, today, wait_until)

FAKE = os.path.join(os.path.dirname(__file__), "..", "fakes", "payment_service.py")
P = "pr_jeju_ocean_deluxe"
FROM, TO = "2027-03-01", "2027-03-03"  # two nights at 250000
TIMEOUT_MS = 300
D = datetime.timedelta(days=1)
ATTEMPTS = 3


@pytest.fixture(autouse=True)
def _contract(monkeypatch):
    openapi_contract.install(monkeypatch)


class FakePayment:
    """The fake payment service as a process; its control API through urllib."""

    def __init__(self, tmp_path):
        port_file = tmp_path / "payment.port"
        self.proc = subprocess.Popen(["/usr/bin/python3", FAKE, "--port", "0", "--port-file",
                                      str(port_file)], stdout=subprocess.DEVNULL)
        if not wait_until(port_file.exists, 10):
            self.proc.kill()
            raise RuntimeError("the fake payment service did not start")
        self.url = f"http://127.0.0.1:{int(port_file.read_text())}"

    def _call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def control(self, mode, **more):
        return self._call("POST", "/_control", {"mode": mode, **more})

    def state(self):
        return self._call("GET", "/_state")

    def stop(self):
        self.proc.terminate()
        assert self.proc.wait(10) == 0


@pytest.fixture
def fake(tmp_path):
    f = FakePayment(tmp_path)
    yield f
    f.stop()


def paying_server(make_server, fake, *more):
    s = make_server(args=["--demo", "--payment-url", fake.url, "--payment-timeout-ms",
                          str(TIMEOUT_MS), "--payment-attempts", str(ATTEMPTS), *more])
    set_inventory(s, P, "2027-02-27", "2027-03-05", capacity=1)
    return s


def pay(server, product=P, frm=FROM, to=TO, key=None):
    """Holds one room and books it paid by http; returns (hold, response)."""
    h = hold(server, product, frm, to)
    return h, post_booking(server, h["id"], method="http", token="tok", key=key)


def settled(server, booking_id, payment_states, timeout=10):
    """GETs the booking until its payment state is one of payment_states; returns it."""
    doc = {}

    def done():
        doc.update(get_booking(server, booking_id))
        return doc["payment"]["state"] in payment_states
    assert wait_until(done, timeout, step=0.05), doc
    # Settled means settled: the saga has nothing left to do and the state stays.
    time.sleep(0.3)
    assert get_booking(server, booking_id) == doc
    return doc


def auths_of(fake, booking_id):
    return [a for a in fake.state()["authorizations"] if a["reference"] == booking_id]


def calls_of(fake, booking_id, op=None):
    return [c for c in fake.state()["calls"] if c["key"].startswith(booking_id + ":") and
            (op is None or c["op"] == op)]


def assert_released(server):
    assert counts(server, P, "2027-02-27", "2027-03-05") == [(0, 0)] * 6


def assert_failed_and_released(server, fake, r, failure, payment_state):
    """r answered 402 naming the booking, which is failed with nothing left held or sold."""
    body = problem(r, 402, "payment")
    b = settled(server, body["booking_id"], {payment_state})
    assert b["state"] == "failed" and b["failure"] == failure
    assert b["payment"]["captured"] is False
    assert_released(server)
    # No authorization made for this booking is left standing.
    assert all(a["status"] == "voided" for a in auths_of(fake, b["id"])), auths_of(fake, b["id"])
    # The hold was taken over: it cannot be booked again; the room is free for a new hold.
    assert server.get(f"/v1/holds/{b['hold_id']}").json()["state"] == "booked"
    problem(post_booking(server, b["hold_id"]), 409, "hold_id")
    hold(server, P, FROM, TO)
    return b


# ---- the modes ----

def test_ok_confirms_then_captures(make_server, fake):
    s = paying_server(make_server, fake)
    h, r = pay(s)
    assert r.status_code == 201, r.text
    b = r.json()
    assert r.headers["Location"] == f"/v1/bookings/{b['id']}"
    assert b["state"] == "confirmed" and b["total"] == {"amount": 500000, "currency": "KRW"}
    assert b["payment"]["method"] == "http" and b["payment"]["authorization_id"]
    assert "tok" not in r.text  # the card token is never shown
    assert counts(s, P, FROM, TO) == [(1, 0), (1, 0)]
    b = settled(s, b["id"], {"captured"})
    assert b["state"] == "confirmed" and b["payment"]["captured"] is True
    [auth] = auths_of(fake, b["id"])
    assert auth == {**auth, "id": b["payment"]["authorization_id"], "status": "captured",
                    "amount": 500000, "currency": "KRW"}
    assert [(c["op"], c["status_code"]) for c in calls_of(fake, b["id"])] == \
        [("authorize", 200), ("capture", 200)]
    assert counts(s, P, FROM, TO) == [(1, 0), (1, 0)]
    assert s.get(f"/v1/holds/{h['id']}").json()["booking_id"] == b["id"]


def test_decline_fails_and_releases(make_server, fake):
    s = paying_server(make_server, fake)
    fake.control("decline", ops=["authorize"])
    _, r = pay(s)
    b = assert_failed_and_released(s, fake, r, "declined", "declined")
    assert auths_of(fake, b["id"]) == []
    assert [(c["op"], c["status_code"]) for c in calls_of(fake, b["id"])] == [("authorize", 402)]


@pytest.mark.parametrize("mode", ["timeout", "error500"])
def test_unreachable_service_fails_after_the_attempts_and_voids(make_server, fake, mode):
    s = paying_server(make_server, fake)
    fake.control(mode, ops=["authorize"], delay_ms=2 * TIMEOUT_MS)
    t0 = time.monotonic()
    _, r = pay(s)
    took = time.monotonic() - t0
    b = assert_failed_and_released(s, fake, r, "payment_unavailable", "voided")
    # Every attempt used the same key, so the service could have answered any of them
    # with the first's result; then the key was voided, so a late authorize is refused.
    authorize = calls_of(fake, b["id"], "authorize")
    assert len(authorize) == ATTEMPTS and {c["key"] for c in authorize} == {b["id"] + ":authorize"}
    assert all(c["status_code"] == (None if mode == "timeout" else 500) for c in authorize)
    assert calls_of(fake, b["id"], "void")[-1]["status_code"] == 200
    assert b["id"] + ":authorize" in fake.state()["voided_keys"]
    assert calls_of(fake, b["id"], "capture") == []
    assert took < 5, took


def test_timeouts_within_the_attempts_still_confirm(make_server, fake):
    s = paying_server(make_server, fake)
    fake.control("timeout", ops=["authorize"], count=ATTEMPTS - 1, delay_ms=2 * TIMEOUT_MS)
    _, r = pay(s)
    assert r.status_code == 201, r.text
    b = settled(s, r.json()["id"], {"captured"})
    assert [c["status_code"] for c in calls_of(fake, b["id"], "authorize")] == [None, None, 200]
    [auth] = auths_of(fake, b["id"])
    assert auth["status"] == "captured"
    assert counts(s, P, FROM, TO) == [(1, 0), (1, 0)]


def test_slow_within_the_timeout_confirms(make_server, fake):
    s = paying_server(make_server, fake)
    fake.control("slow", delay_ms=TIMEOUT_MS // 3)
    _, r = pay(s)
    assert r.status_code == 201, r.text
    b = settled(s, r.json()["id"], {"captured"})
    assert [c["op"] for c in calls_of(fake, b["id"])] == ["authorize", "capture"]
    assert [a["status"] for a in auths_of(fake, b["id"])] == ["captured"]
    assert counts(s, P, FROM, TO) == [(1, 0), (1, 0)]


def check_late_success(server, fake, r):
    """A payment that went through after resortd stopped waiting for it: either kept or
    undone, never both, and the counters agree with whichever it was."""
    if r.status_code == 201:
        b = settled(server, r.json()["id"], {"captured"})
    else:
        body = problem(r, 402, "payment")
        b = settled(server, body["booking_id"], {"voided"})
    auths = auths_of(fake, b["id"])
    assert len(auths) == 1, auths  # retries reused the key: one authorization at most
    if b["state"] == "confirmed":
        assert b["payment"]["state"] == "captured" and auths[0]["status"] == "captured"
        assert calls_of(fake, b["id"], "void") == calls_of(fake, b["id"], "refund") == []
        assert counts(server, P, FROM, TO) == [(1, 0), (1, 0)]
    else:
        assert b["state"] == "failed" and b["payment"]["captured"] is False
        assert auths[0]["status"] == "voided"
        assert calls_of(fake, b["id"], "capture") == []
        assert_released(server)
    return b


def test_late_success_with_attempts_left_is_kept(make_server, fake):
    s = paying_server(make_server, fake)
    fake.control("late_success", ops=["authorize"], count=1, delay_ms=3 * TIMEOUT_MS)
    _, r = pay(s)
    b = check_late_success(s, fake, r)
    assert b["state"] == "confirmed"
    # The retry was answered from the service's record of the first authorize.
    assert [c["replay"] for c in calls_of(fake, b["id"], "authorize")] == [False, True]


def test_late_success_without_attempts_left_is_undone(make_server, fake):
    s = make_server(args=["--demo", "--payment-url", fake.url, "--payment-timeout-ms",
                          str(TIMEOUT_MS), "--payment-attempts", "1"])
    set_inventory(s, P, "2027-02-27", "2027-03-05", capacity=1)
    fake.control("late_success", ops=["authorize"], delay_ms=3 * TIMEOUT_MS)
    _, r = pay(s)
    b = check_late_success(s, fake, r)
    assert b["state"] == "failed" and b["failure"] == "payment_unavailable"
    # The late answer, when it comes, changes nothing.
    time.sleep(3 * TIMEOUT_MS / 1000)
    assert get_booking(s, b["id"]) == b
    assert [a["status"] for a in auths_of(fake, b["id"])] == ["voided"]


def test_late_success_on_every_call_is_kept_or_undone_never_both(make_server, fake):
    s = paying_server(make_server, fake)
    # Every call (authorize, capture, void) goes through but answers too late.
    fake.control("late_success", delay_ms=2 * TIMEOUT_MS)
    _, r = pay(s)
    check_late_success(s, fake, r)


# ---- while the saga runs, and afterwards ----

def test_rooms_stay_held_while_the_payment_is_pending(make_server, fake):
    s = paying_server(make_server, fake, "--payment-timeout-ms", "3000", "--booking-wait-ms", "0")
    fake.control("slow", ops=["authorize"], delay_ms=1500)
    h, r = pay(s, key="pending-1")
    assert r.status_code == 202, r.text
    b = r.json()
    assert b["state"] == "payment_pending" and b["payment"]["state"] == "pending"
    assert r.headers["Location"] == f"/v1/bookings/{b['id']}"
    assert counts(s, P, FROM, TO) == [(0, 1), (0, 1)]
    # A retry while the saga runs is told so, and changes nothing.
    problem(post_booking(s, h["id"], method="http", token="tok", key="pending-1"), 409,
            "Idempotency-Key")
    # Nothing but the saga may move a pending booking.
    for action in ("cancel", "check-in", "no-show"):
        problem(booking_action(s, b["id"], action), 409)
    assert counts(s, P, FROM, TO) == [(0, 1), (0, 1)]
    done = settled(s, b["id"], {"captured"})
    assert done["state"] == "confirmed"
    assert counts(s, P, FROM, TO) == [(1, 0), (1, 0)]
    # Settled, the key answers the saga's decision, the same bytes every time.
    r1 = post_booking(s, h["id"], method="http", token="tok", key="pending-1")
    r2 = post_booking(s, h["id"], method="http", token="tok", key="pending-1")
    assert r1.status_code == r2.status_code == 201 and r1.content == r2.content
    assert r1.json()["id"] == b["id"] and r1.json()["state"] == "confirmed"
    assert len(calls_of(fake, b["id"], "authorize")) == 1


@pytest.mark.parametrize("mode", ["ok", "decline"])
def test_idempotent_replay_after_the_saga_settled(make_server, fake, mode):
    s = paying_server(make_server, fake)
    fake.control(mode, ops=["authorize"])
    h, first = pay(s, key="pay-1")
    assert first.status_code == (201 if mode == "ok" else 402), first.text
    bid = first.json()["id" if mode == "ok" else "booking_id"]
    settled(s, bid, {"captured", "declined"})
    again = post_booking(s, h["id"], method="http", token="tok", key="pay-1")
    assert again.status_code == first.status_code and again.content == first.content
    # The replay made no new booking and no new payment call.
    assert len(calls_of(fake, bid, "authorize")) == 1
    problem(post_booking(s, h["id"], method="http", token="other", key="pay-1"), 422,
            "Idempotency-Key")


def test_cancel_refunds_the_total_less_the_fee(make_server, fake):
    s = make_server(args=["--payment-url", fake.url, "--payment-timeout-ms", str(TIMEOUT_MS),
                          "--payment-attempts", str(ATTEMPTS)])
    t = today()
    pid = make_bookable(s, [{"from": iso(t), "to": iso(t + 90 * D), "amount": 120000}],
                        {"cancellation_free_days": 10, "cancellation_fee_percent": 25})
    set_inventory(s, pid, iso(t), iso(t + 60 * D), capacity=2)
    refunds = {}
    for label, frm, fee in (("inside", t + 2 * D, 240000 * 25 // 100), ("outside", t + 30 * D, 0)):
        h = hold(s, pid, frm, frm + 2 * D)
        r = post_booking(s, h["id"], method="http", token="tok")
        assert r.status_code == 201, r.text
        b = settled(s, r.json()["id"], {"captured"})
        c = booking_action(s, b["id"], "cancel")
        assert c.status_code == 200, c.text
        c = c.json()
        assert c["state"] == "cancelled"
        assert c["cancellation_fee"] == {"amount": fee, "currency": "KRW"}
        assert c["payment"]["refund_amount"] == 240000 - fee
        assert c["payment"]["state"] == "refund_pending"
        assert counts(s, pid, frm, frm + 2 * D) == [(0, 0), (0, 0)]
        done = settled(s, b["id"], {"refunded"})
        assert done["state"] == "cancelled" and done["payment"]["refund_amount"] == 240000 - fee
        assert [a["status"] for a in auths_of(fake, b["id"])] == ["refunded"]
        assert [(x["op"], x["status_code"]) for x in calls_of(fake, b["id"])] == \
            [("authorize", 200), ("capture", 200), ("refund", 200)]
        refunds[label] = done
    assert refunds["inside"]["payment"]["refund_amount"] == 180000
    assert refunds["outside"]["payment"]["refund_amount"] == 240000


def test_booking_paid_at_the_desk_never_calls_the_service(make_server, fake):
    s = paying_server(make_server, fake)
    b = book(s, P, FROM, TO)
    assert b["payment"]["state"] == "due"
    assert booking_action(s, b["id"], "cancel").json()["payment"]["state"] == "none"
    time.sleep(0.3)
    assert fake.state()["calls"] == []


def test_change_of_dates_of_an_online_payment_keeps_its_amount(make_server, fake):
    s = paying_server(make_server, fake)
    set_inventory(s, P, "2027-03-08", "2027-03-14", capacity=1)
    _, r = pay(s)  # mon, tue: 500000
    b = settled(s, r.json()["id"], {"captured"})
    # Another mon-tue costs the same: the dates move, the payment stays as it is.
    r = booking_action(s, b["id"], "change-dates", {"from": "2027-03-08", "to": "2027-03-10"})
    assert r.status_code == 200, r.text
    assert r.json()["total"]["amount"] == 500000
    assert counts(s, P, "2027-03-08", "2027-03-10") == [(1, 0), (1, 0)]
    assert_released(s)
    # Fri-sat costs more than was paid online: refused, nothing moves.
    moved = get_booking(s, b["id"])
    r = booking_action(s, b["id"], "change-dates", {"from": "2027-03-12", "to": "2027-03-14"})
    problem(r, 409)
    assert get_booking(s, b["id"]) == moved
    assert counts(s, P, "2027-03-08", "2027-03-14") == [(1, 0), (1, 0)] + [(0, 0)] * 4
    assert [c["op"] for c in calls_of(fake, b["id"])] == ["authorize", "capture"]


# ---- compensation and settlement calls are retried until they go through ----

@pytest.mark.parametrize("op", ["capture", "refund"])
def test_capture_and_refund_are_retried_with_the_same_key(make_server, fake, op):
    s = paying_server(make_server, fake)
    fake.control("error500", ops=[op], count=2)
    _, r = pay(s)
    assert r.status_code == 201, r.text
    b = settled(s, r.json()["id"], {"captured"})
    if op == "refund":
        c = booking_action(s, b["id"], "cancel")
        assert c.status_code == 200, c.text
        b = settled(s, b["id"], {"refunded"})
        assert b["payment"]["refund_amount"] == 500000  # the demo room: no fee
    calls = calls_of(fake, b["id"], op)
    assert [c["status_code"] for c in calls] == [500, 500, 200]
    assert {c["key"] for c in calls} == {f"{b['id']}:{op}"}
    assert [a["status"] for a in auths_of(fake, b["id"])] == \
        ["captured" if op == "capture" else "refunded"]


def test_a_void_that_fails_is_retried(make_server, fake):
    s = paying_server(make_server, fake)
    # Every authorize and then the first void fail; the next void goes through.
    fake.control("error500", ops=["authorize", "void"], count=ATTEMPTS + 1)
    _, r = pay(s)
    b = assert_failed_and_released(s, fake, r, "payment_unavailable", "voided")
    assert [c["status_code"] for c in calls_of(fake, b["id"], "void")] == [500, 200]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def nowhere_args():
    """Payment through a port nothing listens on: every call is refused at once."""
    return ["--demo", "--payment-url", f"http://127.0.0.1:{free_port()}", "--payment-timeout-ms",
            str(TIMEOUT_MS), "--payment-attempts", str(ATTEMPTS)]


def test_no_payment_service_listening_fails_the_booking(make_server):
    # Leak checks off: the leak of refused connections has a test of its own below.
    s = make_server(args=nowhere_args(), env={"ASAN_OPTIONS": "detect_leaks=0"})
    set_inventory(s, P, "2027-02-27", "2027-03-05", capacity=1)
    _, r = pay(s)
    body = problem(r, 402, "payment")
    b = get_booking(s, body["booking_id"])
    assert b["state"] == "failed" and b["failure"] == "payment_unavailable"
    # The void cannot reach the service either: it stays due, and is retried.
    assert b["payment"]["state"] == "void_pending"
    assert_released(s)
    # Shutting down while the void is being retried is clean (the fixture checks the exit
    # status and the sanitizers' reports).


def test_refused_payment_calls_leak_nothing(tmp_path):
    s = Server(tmp_path / "data", nowhere_args()).start()
    try:
        set_inventory(s, P, "2027-02-27", "2027-03-05", capacity=1)
        problem(pay(s)[1], 402)
    finally:
        rc = s.stop()
    assert rc == 0 and not s.sanitizer_reports(), "".join(s.logs[-30:])
