"""The OpenAPI contract (schema/openapi.yaml) as a test helper.

contract().validate(resp) checks a requests.Response against what the document declares for
(method, path template, status): the status must be declared, required headers present and
matching their schemas, the Content-Type one of the declared media types, and the body valid
against the declared schema (JSON Schema Draft 2020-12, every "#/..." $ref resolved against the
document). A request that reaches no operation is checked against x-resortd-unrouted-responses
(404 for an unknown path; 405 for a known path, with an Allow header that must list exactly the
path item's methods; 501 for a method the server implements nowhere); the checks made before
routing (400, 413, 414, 431) apply everywhere.

install(monkeypatch) makes every requests call to 127.0.0.1 in a test validate its response,
so no response a test sees escapes the contract.

router_routes() parses the route table of src/router.c and openapi_routes() lists the
document's operations, so a test can hold the two equal.
"""
import contextlib
import copy
import functools
import json
import os
import re
from urllib.parse import unquote, urlsplit

import jsonschema
import requests
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SPEC_PATH = os.path.join(ROOT, "schema", "openapi.yaml")
ROUTER_C = os.path.join(ROOT, "src", "router.c")

METHODS = ("get", "head", "post", "put", "patch", "delete", "options", "trace")
# The order router_allow_header() writes methods in.
ALLOW_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
# Answers made before a route is known; possible on any request.
TRANSPORT = {"400": "BadRequest", "413": "ContentTooLarge", "414": "UriTooLong",
             "431": "HeadersTooLarge"}


class ContractError(AssertionError):
    pass


def _media_type(value):
    """Normalizes a Content-Type for comparison: lower case, no spaces around ';'."""
    parts = [p.strip() for p in (value or "").split(";")]
    return ";".join(p.lower() for p in parts if p)


class Contract:
    def __init__(self, path=SPEC_PATH):
        with open(path, encoding="utf-8") as f:
            self.doc = yaml.safe_load(f)
        self.templates = []
        for template in self.doc["paths"]:
            names = re.findall(r"\{(\w+)\}", template)
            rx = "^" + re.sub(r"\\\{\w+\\\}", "([^/]+)", re.escape(template)) + "$"
            self.templates.append((template, re.compile(rx), names))

    # ---- $ref resolution ----

    def resolve_pointer(self, ref):
        if not ref.startswith("#/"):
            raise ContractError(f"only local references are supported: {ref}")
        node = self.doc
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise ContractError(f"dangling reference {ref}")
            node = node[part]
        return node

    def deref(self, node, depth=0):
        """Returns node with every $ref replaced by its target (siblings kept)."""
        if depth > 50:
            raise ContractError("reference cycle in the OpenAPI document")
        if isinstance(node, dict):
            if "$ref" in node:
                target = self.deref(self.resolve_pointer(node["$ref"]), depth + 1)
                siblings = {k: self.deref(v, depth + 1) for k, v in node.items() if k != "$ref"}
                if siblings and isinstance(target, dict):
                    return {**target, **siblings}
                return target
            return {k: self.deref(v, depth + 1) for k, v in node.items()}
        if isinstance(node, list):
            return [self.deref(v, depth + 1) for v in node]
        return node

    @functools.lru_cache(maxsize=None)
    def schema(self, name):
        """components/schemas/<name>, fully resolved."""
        return self.deref({"$ref": f"#/components/schemas/{name}"})

    def validate_instance(self, instance, schema, what):
        schema = copy.deepcopy(schema)
        validator = jsonschema.Draft202012Validator(
            schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
        if errors:
            msgs = "; ".join(f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}"
                             for e in errors[:5])
            raise ContractError(f"{what}: {msgs}")

    # ---- lookups ----

    def match(self, path):
        """Returns (template, params) for a decoded request path, or (None, None)."""
        for template, rx, names in self.templates:
            m = rx.match(path)
            if m:
                return template, dict(zip(names, m.groups()))
        return None, None

    def operation(self, method, template):
        return self.doc["paths"][template].get(method.lower())

    def path_methods(self, template):
        item = self.doc["paths"][template]
        return [m.upper() for m in METHODS if m in item]

    def response_spec(self, method, path, status):
        """The resolved response object the document declares, or raises ContractError."""
        status = str(status)
        template, _ = self.match(path)
        where = f"{method} {path}"
        unrouted = self.doc["x-resortd-unrouted-responses"]
        if status == "501" and (template is None or self.operation(method, template) is None):
            return self.deref(unrouted["501"])
        if template is None:
            if status == "404":
                return self.deref(unrouted["404"])
            if status in TRANSPORT:
                return self.deref({"$ref": f"#/components/responses/{TRANSPORT[status]}"})
            raise ContractError(f"{where}: no path item matches, so only 404 or {sorted(TRANSPORT)}"
                                f" may answer, got {status}")
        op = self.operation(method, template)
        if op is None:
            if status == "405":
                return self.deref(unrouted["405"])
            if status in TRANSPORT:
                return self.deref({"$ref": f"#/components/responses/{TRANSPORT[status]}"})
            raise ContractError(f"{where}: {template} has no {method} operation, so only 405 or "
                                f"{sorted(TRANSPORT)} may answer, got {status}")
        responses = op["responses"]
        if status not in responses:
            raise ContractError(f"{where} ({template}): status {status} is not declared "
                                f"(declared: {sorted(responses)})")
        return self.deref(responses[status])

    # ---- validation ----

    def validate(self, resp):
        """Checks resp against the document; raises ContractError on any drift."""
        req = resp.request
        method = req.method.upper()
        split = urlsplit(req.url)
        path = unquote(split.path or "/")
        spec = self.response_spec(method, path, resp.status_code)
        where = f"{method} {split.path} -> {resp.status_code}"
        template, _ = self.match(path)

        for name, header in (spec.get("headers") or {}).items():
            value = resp.headers.get(name)
            if value is None:
                if header.get("required"):
                    raise ContractError(f"{where}: required header {name} is missing "
                                        f"(headers: {dict(resp.headers)})")
                continue
            self.validate_instance(value, header.get("schema", {}), f"{where}: header {name}")

        if resp.status_code == 405 and template is not None:
            want = ", ".join(m for m in ALLOW_ORDER if m in self.path_methods(template))
            if resp.headers.get("Allow") != want:
                raise ContractError(f"{where}: Allow is {resp.headers.get('Allow')!r}, the "
                                    f"document's methods for {template} are {want!r}")

        content = spec.get("content")
        if method == "HEAD" or not content:
            if resp.content:
                raise ContractError(f"{where}: the document declares no body, got "
                                    f"{resp.content[:100]!r}")
            return
        ctype = _media_type(resp.headers.get("Content-Type"))
        media = {_media_type(k): v for k, v in content.items()}
        if ctype not in media:
            raise ContractError(f"{where}: Content-Type {resp.headers.get('Content-Type')!r} "
                                f"is not one of {sorted(content)}")
        schema = media[ctype].get("schema", {})
        if ctype.startswith("text/"):
            instance = resp.content.decode("utf-8")
        else:
            try:
                instance = json.loads(resp.content.decode("utf-8"))
            except ValueError as e:
                raise ContractError(f"{where}: body is not JSON ({e}): {resp.content[:200]!r}")
        self.validate_instance(instance, schema, f"{where}: body")

    def validate_body(self, instance, schema_name):
        """Validates a value (such as a request body) against components/schemas/<name>."""
        self.validate_instance(instance, self.schema(schema_name), f"instance of {schema_name}")

    # ---- routes ----

    def openapi_routes(self):
        """{(METHOD, template, role)} for every operation in the document."""
        out = set()
        for template, item in self.doc["paths"].items():
            for m in METHODS:
                if m in item:
                    out.add((m.upper(), template, item[m].get("x-resortd-role")))
        return out


ROUTE_ROW_RE = re.compile(
    r"\{\s*(?P<methods>METHOD_\w+(?:\s*\|\s*METHOD_\w+)*)\s*,\s*\"(?P<pattern>[^\"]+)\"\s*,"
    r"\s*(?P<handler>\w+)\s*,\s*ROLE_(?P<role>\w+)\s*,", re.S)


def router_routes(path=ROUTER_C):
    """{(METHOD, pattern, role)} for every row of router_routes[] in src/router.c."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"const struct route router_routes\[\]\s*=\s*\{(.*?)\n\};", text, re.S)
    if m is None:
        raise ContractError("cannot find router_routes[] in src/router.c")
    table = m.group(1)
    rows = list(ROUTE_ROW_RE.finditer(table))
    # Every row opening "{METHOD_" must have parsed, or the regex has fallen behind the table.
    if len(rows) != len(re.findall(r"\{\s*METHOD_", table)):
        raise ContractError("a row of router_routes[] did not parse")
    out = set()
    for row in rows:
        for meth in re.findall(r"METHOD_(\w+)", row.group("methods")):
            out.add((meth, row.group("pattern"), row.group("role").lower()))
    return out


@functools.lru_cache(maxsize=None)
def contract():
    return Contract()


_suspended = [0]


@contextlib.contextmanager
def suspended():
    """Within the block install()'s automatic validation is off: for a test that checks one
    property of a response and leaves another to the test that owns it."""
    _suspended[0] += 1
    try:
        yield
    finally:
        _suspended[0] -= 1


def install(monkeypatch, hosts=("127.0.0.1", "localhost")):
    """Validates every response of a requests call to hosts while the test runs."""
    orig = requests.Session.send
    c = contract()

    def send(self, request, **kw):
        resp = orig(self, request, **kw)
        if urlsplit(request.url).hostname in hosts and not _suspended[0]:
            c.validate(resp)
        return resp

    monkeypatch.setattr(requests.Session, "send", send)
