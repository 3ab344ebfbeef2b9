#!/usr/bin/env python3
"""Fake external payment service for resortd tests.

resortd's `http` payment provider (config `payment_url`) calls this process
during tests instead of a real payment gateway. It serves the API from
"The payment service resortd calls" in the booking API draft:

  POST /authorize {"amount","currency","token","reference"} -> 200 authorized | 402 declined
  POST /capture   {"authorization_id","amount"}             -> 200 {"status":"captured"}
  POST /void      {"authorization_id"} | {"authorize_key"}  -> 200 {"status":"voided"}
  POST /refund    {"authorization_id","amount"}             -> 200 {"status":"refunded"}

Every call needs an Idempotency-Key header (400 without). A retry with the same
key on the same endpoint replays the first stored status and body at once; the
same key with a different body gets 422. 400 and 500 answers are not stored.
409 bodies carry the authorization's current status, e.g. {"status":"voided"}.

Tests steer failures at runtime (test-only endpoints):

  POST /_control {"mode": "ok"|"decline"|"timeout"|"error500"|"slow"|"late_success",
                  "ops": [...] (default all four), "count": N (default unlimited,
                  then back to "ok"), "delay_ms": int}
      decline      authorize answers 402 (stored like any result); other ops unaffected
      timeout      hold the request delay_ms (default 30000), close without answer; not performed
      error500     500 {"status":"error"}; not performed, not stored
      slow         perform, answer after delay_ms (default 1000)
      late_success perform and store, answer after delay_ms (default 30000), so the
                   client times out although the payment went through
      Replays of a stored result and 422 mismatches ignore the mode and do not use up count.
  GET  /_state  -> {"authorizations":[...], "calls":[{"op","key","status_code","replay"}],
                    "voided_keys":[...]}   (status_code is null for a timeout)
  POST /_reset  clears all state and sets the mode back to "ok".

Usage: payment_service.py [--port 0] [--port-file PATH]   (listens on 127.0.0.1;
with port 0 a free port is chosen; the port is printed and written to PATH).
Python 3 standard library only. Exits with status 0 on SIGTERM/SIGINT.
"""
import argparse
import json
import os
import secrets
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OPS = ("authorize", "capture", "void", "refund")
MODES = ("ok", "decline", "timeout", "error500", "slow", "late_success")
DEFAULT_DELAY_MS = {"timeout": 30000, "slow": 1000, "late_success": 30000}


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.auths = {}         # id -> authorization dict (as shown in /_state)
        self.auth_by_key = {}   # authorize Idempotency-Key -> authorization id
        self.voided_keys = []   # tombstones: authorize keys voided before any authorization
        self.idem = {}          # (op, key) -> (request body, status, response body)
        self.calls = []
        self.control = {"mode": "ok", "ops": list(OPS), "count": None, "delay_ms": 0}

    def take_mode(self, op):
        """Return (mode, delay_s) for a new (non-replayed) call, using up count."""
        c = self.control
        if c["mode"] == "ok" or op not in c["ops"] or (c["mode"] == "decline" and op != "authorize"):
            return "ok", 0
        mode, delay = c["mode"], c["delay_ms"] / 1000.0
        if c["count"] is not None:
            c["count"] -= 1
            if c["count"] <= 0:
                self.control = {"mode": "ok", "ops": list(OPS), "count": None, "delay_ms": 0}
        return mode, delay


STATE = State()


def is_pos_int(v):
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def bad(detail):
    return 400, {"status": "invalid", "detail": detail}


def do_authorize(key, b, declined):
    s = STATE
    if not is_pos_int(b.get("amount")):
        return bad("amount must be an integer > 0")
    cur = b.get("currency")
    if not (isinstance(cur, str) and len(cur) == 3 and cur.isalpha()):
        return bad("currency must be 3 letters")
    if not isinstance(b.get("token"), str) or not isinstance(b.get("reference"), str):
        return bad("token and reference must be strings")
    if key in s.voided_keys:
        return 409, {"status": "voided"}
    if declined:
        return 402, {"status": "declined", "reason": "card_declined"}
    auth = {"id": "au_" + secrets.token_hex(8), "status": "authorized", "amount": b["amount"],
            "currency": cur, "reference": b["reference"], "authorize_key": key}
    s.auths[auth["id"]] = auth
    s.auth_by_key[key] = auth["id"]
    return 200, {k: auth[k] for k in ("id", "status", "amount", "currency", "reference")}


def find_auth(b):
    aid = b.get("authorization_id")
    if not isinstance(aid, str):
        return None, bad("authorization_id must be a string")
    auth = STATE.auths.get(aid)
    if auth is None:
        return None, (404, {"status": "not_found"})
    return auth, None


def do_capture(key, b, _):
    auth, err = find_auth(b)
    if err:
        return err
    if not is_pos_int(b.get("amount")):
        return bad("amount must be an integer > 0")
    if auth["status"] in ("voided", "refunded"):
        return 409, {"status": auth["status"]}
    auth["status"] = "captured"
    return 200, {"status": "captured"}


def do_void(key, b, _):
    s = STATE
    if "authorization_id" not in b:
        akey = b.get("authorize_key")
        if not isinstance(akey, str):
            return bad("authorization_id or authorize_key required")
        if akey not in s.auth_by_key:  # authorize never happened (yet): tombstone the key
            if akey not in s.voided_keys:
                s.voided_keys.append(akey)
            return 200, {"status": "voided"}
        b = {"authorization_id": s.auth_by_key[akey]}
    auth, err = find_auth(b)
    if err:
        return err
    if auth["status"] in ("captured", "refunded"):
        return 409, {"status": auth["status"]}
    auth["status"] = "voided"
    return 200, {"status": "voided"}


def do_refund(key, b, _):
    auth, err = find_auth(b)
    if err:
        return err
    if not is_pos_int(b.get("amount")):
        return bad("amount must be an integer > 0")
    if auth["status"] != "captured":
        return 409, {"status": auth["status"]}
    auth["status"] = "refunded"
    return 200, {"status": "refunded"}


HANDLERS = {"authorize": do_authorize, "capture": do_capture, "void": do_void, "refund": do_refund}


def set_control(b):
    mode = b.get("mode")
    if mode not in MODES:
        return bad("mode must be one of " + ", ".join(MODES))
    ops = b.get("ops", list(OPS))
    if not isinstance(ops, list) or not ops or any(o not in OPS for o in ops):
        return bad("ops must be a non-empty list of " + ", ".join(OPS))
    count = b.get("count")
    if count is not None and not is_pos_int(count):
        return bad("count must be an integer > 0")
    delay = b.get("delay_ms", DEFAULT_DELAY_MS.get(mode, 0))
    if not isinstance(delay, int) or isinstance(delay, bool) or delay < 0:
        return bad("delay_ms must be an integer >= 0")
    with STATE.lock:
        STATE.control = {"mode": mode, "ops": ops, "count": count, "delay_ms": delay}
        return 200, dict(STATE.control)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # keep test output quiet
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # client gave up (e.g. after late_success); nothing to do
            self.close_connection = True

    def read_json(self):
        n = int(self.headers.get("Content-Length") or 0)
        try:
            b = json.loads(self.rfile.read(n) or b"null")
        except ValueError:
            return None
        return b if isinstance(b, dict) else None

    def do_GET(self):
        if self.path != "/_state":
            return self.reply(404, {"status": "not_found"})
        with STATE.lock:
            self.reply(200, {"authorizations": list(STATE.auths.values()),
                             "calls": list(STATE.calls), "voided_keys": list(STATE.voided_keys)})

    def do_POST(self):
        path = self.path.lstrip("/")
        body = self.read_json()
        if path == "_reset":
            with STATE.lock:
                STATE.reset()
            return self.reply(200, {"status": "reset"})
        if path == "_control":
            return self.reply(*(set_control(body) if body is not None else bad("JSON object body required")))
        if path not in OPS:
            return self.reply(404, {"status": "not_found"})
        self.operation(path, self.headers.get("Idempotency-Key"), body)

    def operation(self, op, key, body):
        replay = False
        with STATE.lock:
            stored = STATE.idem.get((op, key))
            if not key:
                mode, delay, (status, resp) = "ok", 0, bad("Idempotency-Key header required")
            elif body is None:
                mode, delay, (status, resp) = "ok", 0, bad("JSON object body required")
            elif stored:
                mode, delay, replay = "ok", 0, True
                status, resp = stored[1:] if stored[0] == body else (422, {"status": "idempotency_mismatch"})
            else:
                mode, delay = STATE.take_mode(op)
                if mode == "timeout":
                    status, resp = None, None
                elif mode == "error500":
                    status, resp = 500, {"status": "error"}
                else:
                    status, resp = HANDLERS[op](key, body, mode == "decline")
                    if status not in (400, 500):
                        STATE.idem[(op, key)] = (body, status, resp)
            STATE.calls.append({"op": op, "key": key, "status_code": status, "replay": replay})
        if mode in ("timeout", "slow", "late_success"):
            time.sleep(delay)
        if mode == "timeout":
            self.close_connection = True  # close without any response
            return
        self.reply(status, resp)


def main():
    ap = argparse.ArgumentParser(description="Fake payment service for resortd tests")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    args = ap.parse_args()

    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True  # held (timeout/slow) requests never block exit
    port = srv.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)  # readers never see a partial file
    print(port, flush=True)

    stop = lambda *_: threading.Thread(target=srv.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    srv.serve_forever()
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
