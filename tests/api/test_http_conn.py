"""resortd's own HTTP/1.1 connection layer against the real binary: chunked bodies (whole, in
pieces, malformed), 100-continue, HTTP/1.0 keep-alive rules, the absolute form of a target,
a client that half-closes after its request, and a client that pipelines without ever reading
(the server must stop reading it, not buffer without end).
"""
import json
import socket
import threading
import time

import rawhttp
from apihelp import all_resorts, metric, vm_rss_kib


def resort_body(name):
    return json.dumps({"name": name, "address": "a", "stars": 3}).encode()


def chunked_request(server, body_chunks, raw_tail=b"0\r\n\r\n"):
    head = rawhttp.request_bytes("POST", "/v1/resorts", [("Content-Type", "application/json"),
                                                         ("Transfer-Encoding", "chunked")],
                                 lines=server.auth_lines())
    return head + b"".join(body_chunks) + raw_tail


def test_chunked_body_sent_in_pieces_is_decoded(server):
    body = resort_body("chunked in pieces")
    chunks = [b"%x;note=1\r\n" % len(body[:10]) + body[:10] + b"\r\n",
              b"%x\r\n" % len(body[10:]) + body[10:] + b"\r\n"]
    data = chunked_request(server, chunks, b"0\r\nX-Trailer: t\r\n\r\n")
    s = rawhttp.connect(server.port)
    try:
        for i in range(0, len(data), 7):  # a slow client: 7 bytes at a time
            s.sendall(data[i:i + 7])
            time.sleep(0.001)
        s.sendall(rawhttp.request_bytes("GET", "/healthz", [("Connection", "close")]))
        resps = rawhttp.parse_responses(rawhttp.read_until_close(s))
    finally:
        s.close()
    assert [r[0] for r in resps] == [201, 200], resps
    assert json.loads(resps[0][2])["name"] == "chunked in pieces"
    assert "chunked in pieces" in [r["name"] for r in all_resorts(server)]


def test_chunked_framing_with_a_bare_lf_is_refused_and_writes_nothing(server):
    head_before = metric(server, "resortd_log_head_seq")
    body = resort_body("bare lf")
    data = chunked_request(server, [b"%x\n" % len(body) + body + b"\r\n"])
    data += rawhttp.request_bytes("POST", "/v1/resorts", [("Content-Type", "application/json"),
                                                          ("Content-Length", len(body))],
                                  body, lines=server.auth_lines())
    resps = rawhttp.parse_responses(rawhttp.exchange(server.port, data, timeout=3))
    assert len(resps) == 1 and resps[0][0] == 400, resps
    assert "chunk" in rawhttp.problem(resps[0])["detail"]
    assert resps[0][1]["connection"] == "close"
    assert metric(server, "resortd_log_head_seq") == head_before
    assert "bare lf" not in [r["name"] for r in all_resorts(server)]


def test_expect_100_continue(server):
    body = resort_body("after continue")
    head = rawhttp.request_bytes("POST", "/v1/resorts", [("Content-Type", "application/json"),
                                                         ("Content-Length", len(body)),
                                                         ("Expect", "100-continue")],
                                 lines=server.auth_lines())
    s = rawhttp.connect(server.port)
    try:
        s.sendall(head)
        interim = s.recv(4096)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n", interim
        s.sendall(body)
        final = b""
        while b"\r\n\r\n" not in final:
            final += s.recv(4096)
        assert final.startswith(b"HTTP/1.1 201 "), final
    finally:
        s.close()
    # Too large a body is refused at once, without inviting it.
    big = rawhttp.request_bytes("POST", "/v1/resorts", [("Content-Type", "application/json"),
                                                        ("Content-Length", 50 * 1024 * 1024),
                                                        ("Expect", "100-continue")],
                                lines=server.auth_lines())
    resps = rawhttp.parse_responses(rawhttp.exchange(server.port, big, timeout=3))
    assert [r[0] for r in resps] == [413], resps


def test_http10_closes_unless_asked_to_keep_alive(server):
    raw = rawhttp.exchange(server.port, b"GET /healthz HTTP/1.0\r\n\r\nGET /healthz HTTP/1.0\r\n\r\n")
    resps = rawhttp.parse_responses(raw)
    assert len(resps) == 1 and resps[0][0] == 200, raw  # closed after the first
    assert resps[0][1]["connection"] == "close"
    raw = rawhttp.exchange(server.port, b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                                        b"GET /healthz HTTP/1.0\r\n\r\n")
    resps = rawhttp.parse_responses(raw)
    assert [r[0] for r in resps] == [200, 200], raw
    assert resps[0][1]["connection"] == "keep-alive"
    assert resps[1][1]["connection"] == "close"


def test_http10_with_transfer_encoding_is_refused(server):
    raw = rawhttp.exchange(server.port, b"POST /v1/resorts HTTP/1.0\r\nTransfer-Encoding: chunked"
                                        b"\r\n\r\n0\r\n\r\n", timeout=3)
    resps = rawhttp.parse_responses(raw)
    assert [r[0] for r in resps] == [400], raw


def test_absolute_form_target(server):
    raw = rawhttp.exchange(server.port, b"GET http://127.0.0.1/healthz HTTP/1.1\r\nHost: x\r\n"
                                        b"Connection: close\r\n\r\n")
    assert [r[0] for r in rawhttp.parse_responses(raw)] == [200], raw
    # The path is never taken from the query of an authority without one.
    raw = rawhttp.exchange(server.port, b"GET http://h?x=/healthz HTTP/1.1\r\nHost: x\r\n"
                                        b"Connection: close\r\n\r\n")
    assert [r[0] for r in rawhttp.parse_responses(raw)] == [400], raw


def test_half_closed_client_still_gets_its_answers(server):
    s = rawhttp.connect(server.port)
    try:
        s.sendall(rawhttp.request_bytes("GET", "/healthz") + rawhttp.request_bytes("GET", "/readyz"))
        s.shutdown(socket.SHUT_WR)
        resps = rawhttp.parse_responses(rawhttp.read_until_close(s, 5))
    finally:
        s.close()
    assert [r[0] for r in resps] == [200, 200], resps


def test_a_client_that_never_reads_is_not_buffered_without_end(make_server):
    server = make_server()
    pid = server.proc.pid
    one = rawhttp.request_bytes("GET", "/healthz")
    batch = one * 2000
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", server.port))
    s.settimeout(0.5)
    sent = 0
    rss_before = vm_rss_kib(pid)
    stop = time.monotonic() + 4
    try:
        while time.monotonic() < stop:
            try:
                sent += s.send(batch)
            except socket.timeout:
                pass  # the server stopped reading: what the test wants to see
        # The server still serves others while this client sits on its replies.
        assert server.get("/healthz").status_code == 200
        grown_mib = (vm_rss_kib(pid) - rss_before) / 1024
    finally:
        s.close()
    assert sent < 64 * 1024 * 1024, f"the server read {sent} bytes from a client that reads nothing"
    assert grown_mib < 32, f"RSS grew {grown_mib:.1f} MiB"


def test_busy_connections_are_never_cut_by_the_request_deadline(make_server):
    """Writes answered from the writer thread, on kept-alive connections, while each
    connection's deadline timer keeps firing (1 s): not one connection may be cut. (A reply
    queued for sending when the timer fired once counted as a reader too slow to take it.)"""
    server = make_server(args=["--header-deadline-s", "1"])
    auth = rawhttp.header_block(server.auth_lines())
    stop = time.monotonic() + 4.5
    failures, done = [], [0]
    lock = threading.Lock()

    def client(k):
        s = rawhttp.connect(server.port, timeout=5)
        buf = b""
        n = 0
        try:
            while time.monotonic() < stop:
                body = resort_body(f"busy {k} {n}")
                s.sendall(b"POST /v1/resorts HTTP/1.1\r\nHost: x\r\n" + auth +
                          b"Content-Type: application/json\r\nContent-Length: " +
                          str(len(body)).encode() + b"\r\n\r\n" + body)
                while True:
                    resps = rawhttp.parse_responses(buf)
                    if resps:
                        head_len = buf.index(b"\r\n\r\n") + 4
                        buf = buf[head_len + len(resps[0][2]):]
                        assert resps[0][0] == 201, resps[0]
                        break
                    chunk = s.recv(65536)
                    if not chunk:
                        raise ConnectionError(f"connection {k} cut after {n} writes")
                    buf += chunk
                n += 1
        except Exception as e:  # noqa: BLE001 - reported below
            with lock:
                failures.append(repr(e))
        finally:
            s.close()
            with lock:
                done[0] += n

    threads = [threading.Thread(target=client, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    assert done[0] > 100, done


def test_http11_needs_exactly_one_host(server):
    for head in (b"GET /healthz HTTP/1.1\r\n\r\n",
                 b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"):
        resps = rawhttp.parse_responses(rawhttp.exchange(server.port, head, timeout=3))
        assert [r[0] for r in resps] == [400], resps
        assert "Host" in rawhttp.problem(resps[0])["detail"]
        assert resps[0][1]["connection"] == "close"
    # HTTP/1.0 needs none; one Host is fine.
    raw = rawhttp.exchange(server.port, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert [r[0] for r in rawhttp.parse_responses(raw)] == [200], raw
    raw = rawhttp.exchange(server.port, b"GET /healthz HTTP/1.1\r\nhost: x\r\nConnection: close\r\n\r\n")
    assert [r[0] for r in rawhttp.parse_responses(raw)] == [200], raw
