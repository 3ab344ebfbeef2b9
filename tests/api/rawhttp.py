"""Raw-socket HTTP/1.1 helpers for tests that must send bytes no client library would send.

exchange() writes bytes as given and reads until the server closes (or a deadline), then
parse_responses() splits what came back into (status, headers, body) tuples, following
Content-Length. Nothing here retries or normalises: a test sees exactly what the server sent.
Requests that act on the API carry the server's default headers as lines
(server.auth_lines()): request_bytes(lines=...), or header_block() for bytes built by hand.
"""
import json
import re
import socket
import time

STATUS_RE = re.compile(rb"HTTP/1\.[01] (\d{3}) [^\r\n]*\r\n")


def connect(port, host="127.0.0.1", source=None, timeout=5.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if source is not None:
        s.bind((source, 0))
    s.settimeout(timeout)
    s.connect((host, port))
    return s


def exchange(port, data, timeout=5.0, host="127.0.0.1"):
    """Sends data, half-closes nothing, reads until EOF or timeout; returns all bytes read."""
    s = connect(port, host=host, timeout=timeout)
    try:
        s.sendall(data)
        return read_until_close(s, timeout)
    finally:
        s.close()


def read_until_close(s, timeout=5.0):
    deadline = time.monotonic() + timeout
    out = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            break
        if not chunk:
            break
        out += chunk
    return bytes(out)


def parse_responses(raw):
    """Splits raw bytes into [(status, {lower-name: value}, body bytes)]; stops at junk."""
    out = []
    pos = 0
    while pos < len(raw):
        m = STATUS_RE.match(raw, pos)
        if not m:
            break
        end = raw.find(b"\r\n\r\n", m.end() - 2)
        if end < 0:
            break
        headers = {}
        for line in raw[m.end():end].split(b"\r\n"):
            if b":" in line:
                k, v = line.split(b":", 1)
                headers[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
        body_start = end + 4
        n = int(headers.get("content-length", "0"))
        body = raw[body_start:body_start + n]
        out.append((int(m.group(1)), headers, body))
        pos = body_start + n
    return out


def problem(resp):
    """Returns the JSON problem document of a parsed response, checking its media type."""
    status, headers, body = resp
    assert headers.get("content-type", "").startswith("application/problem+json"), (status, headers, body)
    doc = json.loads(body)
    assert doc["status"] == status, doc
    assert isinstance(doc.get("title"), str) and doc["title"], doc
    assert isinstance(doc.get("detail"), str) and doc["detail"], doc
    return doc


def header_block(lines):
    """Header lines ("Name: value" strings, e.g. server.auth_lines()) as bytes, each ending
    in CRLF, for requests built by hand."""
    return b"".join(line.encode("latin-1") + b"\r\n" for line in lines)


def request_bytes(method, target, headers=(), body=b"", host="127.0.0.1", lines=()):
    """Builds one request; headers is a sequence of (name, value) sent exactly in order,
    after Host and lines ("Name: value" strings, e.g. server.auth_lines())."""
    if isinstance(body, str):
        body = body.encode()
    if isinstance(target, str):
        target = target.encode("latin-1")
    out = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: " + host.encode()]
    out += [line.encode("latin-1") for line in lines]
    for k, v in headers:
        out.append(k.encode("latin-1") + b": " + (v if isinstance(v, bytes) else str(v).encode("latin-1")))
    return b"\r\n".join(out) + b"\r\n\r\n" + body
