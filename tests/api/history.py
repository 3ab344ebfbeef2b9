"""A history of the operations clients ran against resortd, and a checker over it.

The shape is Jepsen's: every operation is an `invoke` event followed by one completion,
`ok` (the server said yes), `fail` (the server said no: a definite 4xx, nothing more will
come of it) or `unknown` (the connection broke or timed out, or a 5xx: it may or may not
have happened). Events are numbered in the order the test saw them.

Operations (f) and their values:
  set_capacity   invoke {"nights": {date: capacity}}                   ok {"status"}
                 (the checker holds every night to its last capacity set: it assumes that
                  capacity is set before the load and never lowered during it)
  hold           invoke {"key", "stay": [dates of its nights], "qty"}   ok/fail: answer
  book           invoke {"key", "hold_id"}                              ok/fail: answer
  read_booking   invoke {"id"}             ok {"status", "state", "nights", "request_key"}
  read_hold      invoke {"id"}             ok {"status", "state", "booking_id"}
  read_inventory invoke {}                             ok {"nights": {date: {capacity, sold,
                                                                      held}}}
An answer is {"status", "content_type", "location", "body" (bytes)}; an unknown completion
is {"error"} (or an answer with a 5xx status). `hold` and `book` carry an Idempotency-Key,
and a retry with the same key is another operation with the same key: that is how the
history shows that the server gave one answer per key and how an unknown is resolved.

check(history) returns the list of what is wrong (empty: the history is good):
  * an unknown `hold` or `book` whose key never got a definite answer (unresolved);
  * two definite answers for one key that differ in a byte (status, type, Location, body);
  * two keys with one booking, or one hold booked twice, or a booking of another hold;
  * a night where the bookings the server acknowledged (201) exceed the capacity set, or
    an instant when the holds and bookings it acknowledged took more than the capacity:
    by the server's own stamps an acknowledged hold has its units from its created_at to
    its expires_at at least, and for good once a booking takes it over;
  * an acknowledged booking that the final read does not find confirmed (lost), a booking
    still payment_pending, a final inventory read whose sold differs from the confirmed
    bookings covering the night (counters != bookings) or exceeds the capacity;
  * an acknowledged hold that the final read does not find, one booked by a booking no
    answer named (or not booked by the one that was), or still held when the final
    inventory read has nothing held.
"""
import datetime
import json
import threading
import time
from dataclasses import dataclass, field

INVOKE, OK, FAIL, UNKNOWN = "invoke", "ok", "fail", "unknown"
COMPLETIONS = (OK, FAIL, UNKNOWN)
KEYED = ("hold", "book")


@dataclass
class Event:
    index: int
    op: int            # pairs an invoke with its completion
    process: object    # who ran it (client number, "staff", "resolver", ...)
    type: str          # invoke | ok | fail | unknown
    f: str
    value: dict = field(default_factory=dict)
    time: float = 0.0  # seconds since the history began


@dataclass
class Op:
    """An invoke and its completion (completion None: it never completed)."""
    invoke: Event
    completion: Event = None

    @property
    def f(self):
        return self.invoke.f

    @property
    def key(self):
        return self.invoke.value.get("key")

    @property
    def type(self):
        return self.completion.type if self.completion else UNKNOWN

    @property
    def result(self):
        return self.completion.value if self.completion else {"error": "never completed"}


class History:
    """A thread-safe, append-only list of events."""

    def __init__(self):
        self.events = []
        self._lock = threading.Lock()
        self._t0 = time.monotonic()
        self.wall0 = time.time()  # wall clock at time 0, to compare with the server's stamps
        self._ops = 0

    def _add(self, op, process, type_, f, value):
        with self._lock:
            ev = Event(len(self.events), op, process, type_, f, dict(value or {}),
                       time.monotonic() - self._t0)
            self.events.append(ev)
            return ev

    def invoke(self, process, f, value=None):
        """Records the start of an operation; returns its op number for the completion."""
        with self._lock:
            self._ops += 1
            op = self._ops
        self._add(op, process, INVOKE, f, value)
        return op

    def complete(self, op, type_, value=None):
        assert type_ in COMPLETIONS, type_
        with self._lock:
            inv = next((e for e in reversed(self.events) if e.op == op and e.type == INVOKE),
                       None)
        assert inv is not None, f"op {op} was never invoked"
        return self._add(op, inv.process, type_, inv.f, value)

    def ok(self, op, value=None):
        return self.complete(op, OK, value)

    def fail(self, op, value=None):
        return self.complete(op, FAIL, value)

    def unknown(self, op, value=None):
        return self.complete(op, UNKNOWN, value)


def answer(resp):
    """The parts of an HTTP answer that a replay must repeat byte for byte."""
    return {"status": resp.status_code, "content_type": resp.headers.get("Content-Type"),
            "location": resp.headers.get("Location"), "body": resp.content}


def definite(status):
    """2xx and 4xx are the server's answer; a 5xx is not (it may or may not have acted)."""
    return 200 <= status < 500


def pair(events):
    """Pairs events into ops in invoke order; a second completion or a completion without an
    invoke is reported. Returns (ops, problems)."""
    ops, by_op, problems = [], {}, []
    for ev in sorted(events, key=lambda e: e.index):
        if ev.type == INVOKE:
            if ev.op in by_op:
                problems.append(f"op {ev.op} invoked twice (event {ev.index})")
                continue
            by_op[ev.op] = Op(ev)
            ops.append(by_op[ev.op])
        elif ev.type in COMPLETIONS:
            o = by_op.get(ev.op)
            if o is None:
                problems.append(f"event {ev.index}: {ev.type} of op {ev.op} never invoked")
            elif o.completion is not None:
                problems.append(f"op {ev.op} completed twice (events {o.completion.index}, "
                                f"{ev.index})")
            else:
                o.completion = ev
        else:
            problems.append(f"event {ev.index}: unknown type {ev.type!r}")
    return ops, problems


def _nights(frm, to):
    d, end, out = datetime.date.fromisoformat(frm), datetime.date.fromisoformat(to), []
    while d < end:
        out.append(d.isoformat())
        d += datetime.timedelta(days=1)
    return out


def _ms(stamp):
    """Milliseconds since the epoch of a server stamp like 2026-11-25T15:27:16.708Z."""
    d = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return round(d.timestamp() * 1000)


def _json(body):
    try:
        return json.loads(body)
    except (TypeError, ValueError):
        return None


def booking_nights(doc):
    """{night: units} a booking or hold document covers."""
    out = {}
    for it in (doc or {}).get("items", []):
        for n in _nights(it["from"], it["to"]):
            out[n] = out.get(n, 0) + int(it.get("qty", 1))
    return out


def _short(ans):
    body = ans.get("body")
    if isinstance(body, (bytes, bytearray)):
        body = body[:160].decode("utf-8", "replace")
    return f"{ans.get('status')} {body!r}"


def check(history):
    """Everything wrong with history (a History or a list of events); [] when it is good."""
    events = history.events if isinstance(history, History) else list(history)
    ops, problems = pair(events)

    # 1. Every keyed operation: resolved, and one answer per key, byte for byte.
    by_key = {}
    for o in ops:
        if o.f in KEYED:
            if not o.key:
                problems.append(f"op {o.invoke.op}: a {o.f} without an Idempotency-Key")
                continue
            by_key.setdefault((o.f, o.key), []).append(o)
    final = {}  # (f, key) -> the key's definite answer
    for (f, key), kops in by_key.items():
        answers = [o for o in kops if o.type in (OK, FAIL)]
        for o in answers:
            if not definite(o.result.get("status", 0)):
                problems.append(f"{f} {key}: op {o.invoke.op} is {o.type} with status "
                                f"{o.result.get('status')}, not a definite answer")
        if not answers:
            problems.append(f"unresolved: {f} {key} had {len(kops)} operations, none with a "
                            f"definite answer (last: {kops[-1].result})")
            continue
        first = answers[0].result
        for o in answers[1:]:
            if any(o.result.get(k) != first.get(k) for k in ("status", "content_type",
                                                              "location", "body")):
                problems.append(f"replay differs: {f} {key}: op {answers[0].invoke.op} got "
                                f"{_short(first)}, op {o.invoke.op} got {_short(o.result)}")
        invoked = {json.dumps(o.invoke.value, sort_keys=True) for o in kops}
        if len(invoked) > 1:
            problems.append(f"{f} {key}: one key sent with different requests: {invoked}")
        final[(f, key)] = (answers[0], first)

    # 2. Bookings: one per key, one per hold, of the hold asked for, never pending.
    booked = {}      # booking id -> (key, document)
    hold_of = {}     # hold id -> booking id
    for (f, key), (o, ans) in final.items():
        if f != "book" or ans["status"] not in (200, 201, 202):
            continue
        doc = _json(ans["body"]) or {}
        bid = doc.get("id")
        if not bid:
            problems.append(f"book {key}: {ans['status']} without a booking id")
            continue
        if bid in booked:
            problems.append(f"booking {bid} answered for two keys: {booked[bid][0]} and {key}")
        booked[bid] = (key, doc)
        want = o.invoke.value.get("hold_id")
        if doc.get("hold_id") != want:
            problems.append(f"book {key} asked for hold {want}, got booking {bid} of hold "
                            f"{doc.get('hold_id')}")
        if doc.get("hold_id") in hold_of and hold_of[doc["hold_id"]] != bid:
            problems.append(f"hold {doc['hold_id']} booked twice: {hold_of[doc['hold_id']]} "
                            f"and {bid}")
        hold_of[doc.get("hold_id")] = bid
        if ans["status"] != 201 or doc.get("state") != "confirmed":
            problems.append(f"book {key}: answered {ans['status']} {doc.get('state')}, a desk "
                            f"booking is confirmed (201) at once")

    # 3. No night sold past its capacity, counting only what the server acknowledged.
    capacity = {}
    for o in ops:
        if o.f == "set_capacity" and o.type == OK:
            capacity.update(o.invoke.value["nights"])
        elif o.f == "set_capacity" and o.type == UNKNOWN:
            problems.append(f"unresolved: set_capacity op {o.invoke.op} {o.invoke.value}")
    sold = {}
    for bid, (key, doc) in booked.items():
        if doc.get("state") in ("confirmed", "checked_in", "no_show"):
            for n, q in booking_nights(doc).items():
                sold[n] = sold.get(n, 0) + q
    for n, q in sorted(sold.items()):
        if n not in capacity:
            problems.append(f"night {n}: {q} sold, but no capacity was ever set")
        elif q > capacity[n]:
            problems.append(f"oversold: night {n} has {q} acknowledged bookings, capacity "
                            f"{capacity[n]}")

    # 3b. No instant with more units taken than there are, holds included.
    holds = {}
    for (f, key), (o, ans) in final.items():
        if f == "hold" and ans["status"] == 201:
            doc = _json(ans["body"]) or {}
            if doc.get("id"):
                holds[doc["id"]] = doc
    marks = {}  # night -> [(ms, +/-units, hold id, stamp)]
    for hid, doc in holds.items():
        try:
            start, end = _ms(doc["created_at"]), _ms(doc["expires_at"])
        except (KeyError, TypeError, ValueError):
            problems.append(f"hold {hid}: answer without created_at/expires_at")
            continue
        for n, q in booking_nights(doc).items():
            marks.setdefault(n, []).append((start, q, hid, doc["created_at"]))
            if hid not in hold_of:  # never booked: its units come back when it expires
                marks[n].append((end, -q, hid, doc["expires_at"]))
    for n, ms in sorted(marks.items()):
        taken, worst = 0, None
        for _, q, hid, stamp in sorted(ms, key=lambda m: (m[0], m[1])):  # ends first on a tie
            taken += q
            if n in capacity and taken > capacity[n] and worst is None:
                worst = (stamp, taken, hid)
        if worst:
            problems.append(f"overcommitted: night {n} had {worst[1]} units held or sold > "
                            f"capacity {capacity[n]} at {worst[0]} (hold {worst[2]})")

    # 4. The final reads: nothing acknowledged lost, no saga left, counters == bookings.
    reads = {}
    for o in ops:
        if o.f == "read_booking" and o.type == OK:
            reads[o.invoke.value["id"]] = o.result  # the last read wins
    for bid in booked:
        r = reads.get(bid)
        if r is None:
            problems.append(f"booking {bid} ({booked[bid][0]}) was acknowledged but never "
                            f"read at the end")
        elif r.get("status") != 200:
            problems.append(f"lost: booking {bid} ({booked[bid][0]}) was acknowledged, the "
                            f"final read answered {r.get('status')}")
        elif r.get("state") != "confirmed":
            problems.append(f"booking {bid} was acknowledged confirmed, the final read says "
                            f"{r.get('state')}")
        elif r.get("request_key", booked[bid][0]) != booked[bid][0]:
            problems.append(f"booking {bid} was answered for key {booked[bid][0]}, it "
                            f"records key {r.get('request_key')}")
    for bid, r in reads.items():
        if r.get("state") == "payment_pending":
            problems.append(f"saga unfinished: booking {bid} is still payment_pending")
    inv = [o for o in ops if o.f == "read_inventory" and o.type == OK]
    if inv:
        last = inv[-1].result["nights"]
        counted = {}
        for bid, r in reads.items():
            if r.get("status") == 200 and r.get("state") in ("confirmed", "checked_in",
                                                               "no_show"):
                for n, q in (r.get("nights") or {}).items():
                    counted[n] = counted.get(n, 0) + q
        for n, day in sorted(last.items()):
            if day["sold"] > day["capacity"]:
                problems.append(f"oversold: the final read of night {n} has sold "
                                f"{day['sold']} > capacity {day['capacity']}")
            if day["sold"] != counted.get(n, 0):
                problems.append(f"counters != bookings: night {n} has sold {day['sold']}, "
                                f"the bookings read cover it {counted.get(n, 0)} times")
    # 5. Holds: every acknowledged one is still there and ended the way the answers say.
    hold_reads = {}
    for o in ops:
        if o.f == "read_hold" and o.type == OK:
            hold_reads[o.invoke.value["id"]] = o.result
    acked_holds = set()
    for (f, key), (o, ans) in final.items():
        if f == "hold" and ans["status"] == 201:
            acked_holds.add((_json(ans["body"]) or {}).get("id"))
    none_held = bool(inv) and all(d["held"] == 0 for d in inv[-1].result["nights"].values())
    for hid in sorted(acked_holds, key=str):
        r = hold_reads.get(hid)
        if r is None:
            continue  # holds are read only when the history says so
        if r.get("status") != 200:
            problems.append(f"lost: hold {hid} was acknowledged, the final read answered "
                            f"{r.get('status')}")
            continue
        want = hold_of.get(hid)
        if want is not None and (r.get("state") != "booked" or r.get("booking_id") != want):
            problems.append(f"hold {hid} was booked by {want}, the final read says "
                            f"{r.get('state')} {r.get('booking_id')}")
        elif want is None and r.get("state") == "booked":
            problems.append(f"hold {hid} is booked by {r.get('booking_id')}, a booking no "
                            f"answer named")
        elif r.get("state") == "held" and none_held:
            problems.append(f"hold {hid} is still held, the inventory holds nothing")
    return problems


def summary(history):
    """Counts of ops by f and completion type, for the test's report line."""
    events = history.events if isinstance(history, History) else list(history)
    ops, _ = pair(events)
    out = {}
    for o in ops:
        k = f"{o.f}:{o.type}"
        out[k] = out.get(k, 0) + 1
    return dict(sorted(out.items()))
