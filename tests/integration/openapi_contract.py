"""Check a running layerd against openapi.yaml, operation by operation.

    openapi_contract.py BASE_URL OPENAPI_YAML

BASE_URL is the server (https://127.0.0.1:PORT); it must serve the demo
store (tests/fixtures/mkdemo.sh) plus the layers test_openapi.sh adds:
"redir" and "meta" (overlay features the reader refuses: 422), "ghost"
and "badjson" (broken metadata: 500) and "big" (12 MiB, to hold export
slots and streams), with --max-exports 2 and --max-streams 3, under an
access policy whose tokens come in LAYERD_CONTRACT_TOKENS ("name=token" words): "admin" may do everything
and is sent with every request unless a case says otherwise; "lister"
may only list, "reader" only read, "narrow" list and read "base" only.
A case's header value "{token:NAME}" is "Bearer" and that token; None
leaves the header out.

Every request below is sent as GET (or another method) and, unless it is
not a GET, again as HEAD. For each answer:

- the status must be among the documented responses of the operation
  (a method without an operation, e.g. POST, is held to the GET
  operation's 405);
- the Content-Type must be one of the documented media types for that
  status (HEAD: those of the HEAD response, else of the GET's), and a
  response documented without content must have no body;
- the documented headers must be present (but Link, only sent when a
  next page exists, the digests, sent as trailers, and headers marked
  `required: false`) and match their
  schema's const, pattern or type;
- a JSON body must validate against the documented schema (JSON Schema
  2020-12, as OpenAPI 3.1 has it); an NDJSON body line by line against
  Entry;
- a case that names its expected status must get it.

Then every documented operation must have been answered at least once
with a documented status. Mismatches are listed and the exit status is
1; responses documented but never produced are listed for information.
"""

import http.client
import json
import os
import re
import socket
import ssl
import sys
import time
import urllib.parse

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

try:
    from jsonschema import RefResolver
except ImportError:  # pragma: no cover - newer jsonschema
    RefResolver = None

LONG = "a" * 9000

# One request each: (method, template, path params, query, headers,
# expected status or None, note). Path params are percent-encoded here
# unless they start with "raw:" (sent as written, escapes and all).
CASES = [
    ("GET", "/layers", {}, {}, {}, 200, ""),
    ("GET", "/layers", {}, {"limit": "2"}, {}, 200, "a page with next"),
    ("GET", "/layers", {}, {"limit": "2", "after": "base"}, {}, 200, ""),
    ("GET", "/layers", {}, {"limit": "0"}, {}, 400, ""),
    ("GET", "/layers", {}, {"after": "../x"}, {}, 400, ""),
    ("GET", "/layers", {}, {"after": LONG}, {}, 414, ""),
    ("POST", "/layers", {}, {}, {}, 405, ""),
    ("GET", "/layers/{id}", {"id": "patch"}, {}, {}, 200, ""),
    ("GET", "/layers/{id}", {"id": "base"}, {}, {}, 200, "no parents"),
    ("GET", "/layers/{id}", {"id": "nope"}, {}, {}, 404, ""),
    ("GET", "/layers/{id}", {"id": "raw:%2e%2e"}, {}, {}, 400, ""),
    ("GET", "/layers/{id}", {"id": "raw:a%2Fb"}, {}, {}, 400, ""),
    ("GET", "/layers/{id}", {"id": "raw:%00"}, {}, {}, 400, ""),
    ("GET", "/layers/{id}", {"id": LONG}, {}, {}, 414, ""),
    ("GET", "/layers/{id}", {"id": "ghost"}, {}, {}, 500, ""),
    ("POST", "/layers/{id}", {"id": "patch"}, {}, {}, 405, ""),
    ("GET", "/layers/{id}/export", {"id": "patch"}, {}, {}, 200, ""),
    ("GET", "/layers/{id}/export", {"id": "patch"},
     {"compression": "gzip"}, {}, 200, ""),
    ("GET", "/layers/{id}/export", {"id": "patch"},
     {"compression": "zstd", "level": "3"}, {}, 200, ""),
    ("GET", "/layers/{id}/export", {"id": "patch"}, {},
     {"Accept": "application/vnd.docker.image.rootfs.diff.tar.gzip"}, 200, ""),
    ("GET", "/layers/{id}/export", {"id": "patch"}, {},
     {"Accept": "application/vnd.oci.image.layer.v1.tar+zstd"}, 200, ""),
    ("GET", "/layers/{id}/export", {"id": "nope"}, {}, {}, 404, ""),
    ("GET", "/layers/{id}/export", {"id": "raw:%2e%2e"}, {}, {}, 400, ""),
    ("GET", "/layers/{id}/export", {"id": "patch"},
     {"compression": "bogus"}, {}, 400, ""),
    ("GET", "/layers/{id}/export", {"id": "patch"},
     {"compression": "gzip", "level": "x"}, {}, 400, ""),
    ("GET", "/layers/{id}/export", {"id": "patch"},
     {"compression": "zstd", "level": "19"}, {}, 400, "above --max-level"),
    ("GET", "/layers/{id}/export", {"id": "patch"}, {},
     {"X-Pad": "a" * 20000}, 431, "headers over --max-header-bytes"),
    ("GET", "/healthz", {}, {}, {"X-Pad": "a" * 20000}, 431, ""),
    ("GET", "/layers/{id}/export", {"id": "patch"}, {},
     {"Accept": "text/html"}, 406, ""),
    ("GET", "/layers/{id}/export", {"id": "patch"},
     {"compression": LONG}, {}, 414, ""),
    ("GET", "/layers/{id}/export", {"id": "patch"},
     {"tar": "canonical"}, {}, 200, ""),
    ("GET", "/layers/{id}/export", {"id": "patch"},
     {"tar": "bogus"}, {}, 400, ""),
    ("GET", "/layers/{id}/export", {"id": "patch"},
     {"tar": "original"}, {}, 422, "a dir: layer has no original tar"),
    ("GET", "/layers/{id}/export", {"id": "ghost"}, {}, {}, 500, ""),
    # the blob of the first case is kept by now: Range, If-None-Match
    ("GET", "/layers/{id}/export", {"id": "patch"}, {},
     {"Range": "bytes=0-9"}, 206, "a kept blob"),
    ("GET", "/layers/{id}/export", {"id": "patch"}, {},
     {"Range": "bytes=999999999-"}, 416, "a kept blob"),
    ("GET", "/layers/{id}/export", {"id": "redir"}, {}, {}, 422,
     "refused before the status goes out"),
    ("POST", "/layers/{id}/export", {"id": "patch"}, {}, {}, 405, ""),
    ("GET", "/layers/{id}/entries", {"id": "patch"}, {}, {}, 200, ""),
    ("GET", "/layers/{id}/entries", {"id": "patch"}, {},
     {"Accept": "application/json"}, 200, ""),
    ("GET", "/layers/{id}/entries", {"id": "base"},
     {"prefix": "etc", "after": "etc/group", "limit": "3"}, {}, 200, ""),
    ("GET", "/layers/{id}/entries", {"id": "nope"}, {}, {}, 404, ""),
    ("GET", "/layers/{id}/entries", {"id": "patch"}, {"limit": "0"}, {},
     400, ""),
    ("GET", "/layers/{id}/entries", {"id": "patch"}, {"prefix": "a//b"}, {},
     400, ""),
    ("GET", "/layers/{id}/entries", {"id": "patch"}, {},
     {"Accept": "text/html"}, 406, ""),
    ("GET", "/layers/{id}/entries", {"id": "patch"}, {"prefix": LONG}, {},
     414, ""),
    ("GET", "/layers/{id}/entries", {"id": "redir"}, {}, {}, 422, ""),
    ("GET", "/layers/{id}/entries", {"id": "ghost"}, {}, {}, 500, ""),
    ("POST", "/layers/{id}/entries", {"id": "patch"}, {}, {}, 405, ""),
    ("GET", "/layers/{id}/entries/{path}",
     {"id": "patch", "path": "usr/bin/app"}, {}, {}, 200, ""),
    ("GET", "/layers/{id}/entries/{path}",
     {"id": "patch", "path": "var/lib/db"}, {}, {}, 200, "opaque dir"),
    ("GET", "/layers/{id}/entries/{path}",
     {"id": "patch", "path": "usr/share/doc/README"}, {}, {}, 200,
     "tombstone"),
    ("GET", "/layers/{id}/entries/{path}",
     {"id": "base", "path": "dev/null"}, {}, {}, 200, "device"),
    ("GET", "/layers/{id}/entries/{path}",
     {"id": "base", "path": "usr/bin/tool-alias"}, {}, {}, 200, "hardlink"),
    ("GET", "/layers/{id}/entries/{path}",
     {"id": "patch", "path": "etc/nope"}, {}, {}, 404, ""),
    ("GET", "/layers/{id}/entries/{path}",
     {"id": "patch", "path": "raw:usr/%2e%2e/etc"}, {}, {}, 400, ""),
    ("GET", "/layers/{id}/entries/{path}",
     {"id": "patch", "path": LONG}, {}, {}, 414, ""),
    ("GET", "/layers/{id}/entries/{path}",
     {"id": "redir", "path": "d"}, {}, {}, 422, ""),
    ("GET", "/layers/{id}/entries/{path}",
     {"id": "ghost", "path": "x"}, {}, {}, 500, ""),
    ("POST", "/layers/{id}/entries/{path}",
     {"id": "patch", "path": "usr/bin/app"}, {}, {}, 405, ""),
    ("GET", "/layers/{id}/files/{path}",
     {"id": "base", "path": "usr/share/data.bin"}, {}, {}, 200, "etag"),
    ("GET", "/layers/{id}/files/{path}",
     {"id": "base", "path": "usr/share/data.bin"}, {},
     {"Range": "bytes=100-199"}, 206, ""),
    ("GET", "/layers/{id}/files/{path}",
     {"id": "base", "path": "usr/share/data.bin"}, {},
     {"If-None-Match": "{etag}"}, 304, ""),
    ("GET", "/layers/{id}/files/{path}",
     {"id": "base", "path": "usr/share/data.bin"}, {},
     {"Range": "bytes=999999-"}, 416, ""),
    ("GET", "/layers/{id}/files/{path}",
     {"id": "base", "path": "etc/os-release"}, {"format": "win32-backup"}, {},
     200, ""),
    ("GET", "/layers/{id}/files/{path}",
     {"id": "patch", "path": "usr/bin/app"}, {"format": "raw"}, {}, 200, ""),
    ("GET", "/layers/{id}/files/{path}",
     {"id": "patch", "path": "var/lib/db"}, {}, {}, 409, ""),
    ("GET", "/layers/{id}/files/{path}",
     {"id": "patch", "path": "usr/share/doc/README"}, {}, {}, 404, "deleted"),
    ("GET", "/layers/{id}/files/{path}",
     {"id": "patch", "path": "etc/nope"}, {}, {}, 404, ""),
    ("GET", "/layers/{id}/files/{path}",
     {"id": "patch", "path": "usr/bin/app"}, {"format": "tar"}, {}, 400, ""),
    ("GET", "/layers/{id}/files/{path}",
     {"id": "patch", "path": "raw:usr//bin"}, {}, {}, 400, ""),
    ("GET", "/layers/{id}/files/{path}",
     {"id": "patch", "path": LONG}, {}, {}, 414, ""),
    ("GET", "/layers/{id}/files/{path}",
     {"id": "meta", "path": "f"}, {}, {}, 422, ""),
    ("GET", "/layers/{id}/files/{path}",
     {"id": "ghost", "path": "f"}, {}, {}, 500, ""),
    ("POST", "/layers/{id}/files/{path}",
     {"id": "patch", "path": "usr/bin/app"}, {}, {}, 405, ""),
    ("GET", "/healthz", {}, {}, {}, 200, ""),
    ("POST", "/healthz", {}, {}, {}, 405, ""),
    ("GET", "/readyz", {}, {}, {}, 200, ""),
    ("PUT", "/readyz", {}, {}, {}, 405, ""),
    ("GET", "/metrics", {}, {}, {}, 200, ""),
    ("DELETE", "/metrics", {}, {}, {}, 405, ""),
    ("GET", "/openapi.yaml", {}, {}, {}, 200, ""),
    ("POST", "/openapi.yaml", {}, {}, {}, 405, ""),
    # one directory level, and counts over a scope
    ("GET", "/layers/{id}/entries", {"id": "base"},
     {"prefix": "etc", "depth": "1"}, {}, 200, "one directory"),
    ("GET", "/layers/{id}/entries", {"id": "patch"}, {"depth": "0"}, {},
     400, ""),
    ("GET", "/layers/{id}/summary", {"id": "patch"}, {}, {}, 200, ""),
    ("GET", "/layers/{id}/summary", {"id": "base"},
     {"prefix": "usr", "depth": "2"}, {}, 200, ""),
    ("GET", "/layers/{id}/summary", {"id": "nope"}, {}, {}, 404, ""),
    ("GET", "/layers/{id}/summary", {"id": "patch"}, {"depth": "x"}, {},
     400, ""),
    ("GET", "/layers/{id}/summary", {"id": "patch"}, {"prefix": LONG}, {},
     414, ""),
    ("GET", "/layers/{id}/summary", {"id": "redir"}, {}, {}, 422, ""),
    ("GET", "/layers/{id}/summary", {"id": "ghost"}, {}, {}, 500, ""),
    ("POST", "/layers/{id}/summary", {"id": "patch"}, {}, {}, 405, ""),
    # the dashboard
    ("GET", "/", {}, {}, {}, 404, "curl's */*"),
    ("GET", "/", {}, {},
     {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}, 302, ""),
    ("POST", "/", {}, {}, {}, 405, ""),
    ("GET", "/ui", {}, {}, {}, 308, ""),
    ("POST", "/ui", {}, {}, {}, 405, ""),
    ("GET", "/ui/{path}", {"path": ""}, {}, {}, 200, "etag; the page"),
    ("GET", "/ui/{path}", {"path": ""}, {}, {"If-None-Match": "{etag}"},
     304, ""),
    ("POST", "/ui/{path}", {"path": ""}, {}, {}, 405, ""),
    ("GET", "/ui/{path}", {"path": "layers/base"}, {"view": "dir"}, {},
     200, "a deep link"),
    ("GET", "/ui/{path}", {"path": "assets/app.js"}, {}, {}, 200, "etag"),
    ("GET", "/ui/{path}", {"path": "assets/app.js"}, {},
     {"If-None-Match": "{etag}"}, 304, ""),
    ("GET", "/ui/{path}", {"path": "assets/style.css"}, {}, {}, 200, ""),
    ("GET", "/ui/{path}", {"path": "assets/nope.js"}, {}, {}, 404, ""),
    ("GET", "/ui/{path}", {"path": "raw:layers//x"}, {}, {}, 400, ""),
    ("GET", "/ui/{path}", {"path": "raw:assets/%2e%2e/x"}, {}, {}, 400, ""),
    ("GET", "/ui/{path}", {"path": LONG}, {}, {}, 414, ""),
    ("POST", "/ui/{path}", {"path": "assets/app.js"}, {}, {}, 405, ""),
    # every operation also answers with a traceparent it was given
    ("GET", "/layers/{id}", {"id": "app"}, {},
     {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
     200, ""),
    # access control: no or refused credentials, no grant, hidden layers
    ("GET", "/layers", {}, {}, {"Authorization": None}, 401, "none"),
    ("GET", "/layers", {}, {}, {"Authorization": "Bearer nope"}, 401, ""),
    ("GET", "/layers", {}, {}, {"Authorization": "Basic !!"}, 401, ""),
    ("GET", "/layers", {}, {}, {"Authorization": "{token:reader}"}, 403, ""),
    ("GET", "/layers", {}, {}, {"Authorization": "{token:narrow}"}, 200,
     "only base"),
    ("GET", "/metrics", {}, {}, {"Authorization": None}, 401, ""),
    ("GET", "/metrics", {}, {}, {"Authorization": "{token:lister}"}, 403, ""),
    ("GET", "/layers/{id}", {"id": "patch"}, {}, {"Authorization": None},
     401, ""),
    ("GET", "/layers/{id}", {"id": "patch"}, {},
     {"Authorization": "{token:lister}"}, 403, ""),
    ("GET", "/layers/{id}", {"id": "patch"}, {},
     {"Authorization": "{token:narrow}"}, 404, "hidden"),
    ("GET", "/layers/{id}/export", {"id": "patch"}, {},
     {"Authorization": None}, 401, ""),
    ("GET", "/layers/{id}/export", {"id": "patch"}, {},
     {"Authorization": "{token:lister}"}, 403, ""),
    ("GET", "/layers/{id}/entries", {"id": "patch"}, {},
     {"Authorization": "Bearer nope"}, 401, ""),
    ("GET", "/layers/{id}/entries", {"id": "patch"}, {},
     {"Authorization": "{token:lister}"}, 403, ""),
    ("GET", "/layers/{id}/entries/{path}",
     {"id": "patch", "path": "usr/bin/app"}, {}, {"Authorization": None},
     401, ""),
    ("GET", "/layers/{id}/entries/{path}",
     {"id": "patch", "path": "usr/bin/app"}, {},
     {"Authorization": "{token:lister}"}, 403, ""),
    ("GET", "/layers/{id}/summary", {"id": "patch"}, {},
     {"Authorization": None}, 401, ""),
    ("GET", "/layers/{id}/summary", {"id": "patch"}, {},
     {"Authorization": "{token:lister}"}, 403, ""),
    ("GET", "/layers/{id}/files/{path}",
     {"id": "base", "path": "etc/os-release"}, {}, {"Authorization": None},
     401, ""),
    ("GET", "/layers/{id}/files/{path}",
     {"id": "base", "path": "etc/os-release"}, {},
     {"Authorization": "{token:lister}"}, 403, ""),
    ("GET", "/layers/{id}/files/{path}",
     {"id": "base", "path": "etc/os-release"}, {},
     {"Authorization": "{token:reader}"}, 200, "read without list"),
    # the open operations need nothing
    ("GET", "/healthz", {}, {}, {"Authorization": None}, 200, ""),
    ("GET", "/openapi.yaml", {}, {}, {"Authorization": "Bearer nope"}, 200,
     ""),
    ("GET", "/ui/{path}", {"path": ""}, {}, {"Authorization": None}, 200, ""),
    # the Host check, on every operation
    ("GET", "/layers", {}, {}, {"Host": "evil.example"}, 421, ""),
    ("GET", "/layers/{id}", {"id": "base"}, {}, {"Host": "evil.example:443"},
     421, ""),
    ("GET", "/layers/{id}/export", {"id": "base"}, {},
     {"Host": "evil.example"}, 421, ""),
    ("GET", "/layers/{id}/entries", {"id": "base"}, {},
     {"Host": "evil.example"}, 421, ""),
    ("GET", "/layers/{id}/entries/{path}", {"id": "base", "path": "etc"}, {},
     {"Host": "evil.example"}, 421, ""),
    ("GET", "/layers/{id}/summary", {"id": "base"}, {},
     {"Host": "evil.example"}, 421, ""),
    ("GET", "/layers/{id}/files/{path}",
     {"id": "base", "path": "etc/os-release"}, {}, {"Host": "evil.example"},
     421, ""),
    ("GET", "/healthz", {}, {}, {"Host": "evil.example"}, 421, ""),
    ("GET", "/readyz", {}, {}, {"Host": "evil.example"}, 421, ""),
    ("GET", "/metrics", {}, {}, {"Host": "evil.example"}, 421, ""),
    ("GET", "/openapi.yaml", {}, {}, {"Host": "evil.example"}, 421, ""),
    ("GET", "/", {}, {}, {"Host": "evil.example"}, 421, ""),
    ("GET", "/ui", {}, {}, {"Host": "evil.example"}, 421, ""),
    ("GET", "/ui/{path}", {"path": ""}, {}, {"Host": "evil.example"}, 421, ""),
    ("GET", "/healthz", {}, {}, {"Host": "[evil]"}, 400, "malformed Host"),
    # the registry view: its own errors, methods and credentials
    ("GET", "/v2", {}, {}, {}, 200, ""),
    ("GET", "/v2", {}, {}, {"Authorization": None}, 401, ""),
    ("GET", "/v2", {}, {}, {"Authorization": "Basic eDpub3Bl"}, 401, ""),
    ("POST", "/v2", {}, {}, {}, 405, ""),
    ("GET", "/v2", {}, {}, {"Host": "evil.example"}, 421, ""),
    ("GET", "/v2/_catalog", {}, {}, {}, 200, ""),
    ("GET", "/v2/_catalog", {}, {"n": "2"}, {}, 200, "a page with next"),
    ("GET", "/v2/_catalog", {}, {"n": "x"}, {}, 400, ""),
    ("GET", "/v2/_catalog", {}, {"last": LONG}, {}, 414, ""),
    ("GET", "/v2/_catalog", {}, {}, {"Authorization": None}, 401, ""),
    ("DELETE", "/v2/_catalog", {}, {}, {}, 405, ""),
    ("GET", "/v2/{name}/tags/list", {"name": "raw:layers/app"}, {}, {},
     200, ""),
    ("GET", "/v2/{name}/tags/list", {"name": "raw:layers/app"},
     {"n": "0"}, {}, 200, ""),
    ("GET", "/v2/{name}/tags/list", {"name": "raw:layers/nope"}, {}, {},
     404, ""),
    ("GET", "/v2/{name}/tags/list", {"name": "raw:Bad/Name"}, {}, {},
     400, ""),
    ("GET", "/v2/{name}/tags/list", {"name": "raw:layers/patch"}, {},
     {"Authorization": "{token:lister}"}, 403, ""),
    ("GET", "/v2/{name}/tags/list", {"name": "raw:layers/app"}, {},
     {"Authorization": None}, 401, ""),
    ("PUT", "/v2/{name}/tags/list", {"name": "raw:layers/app"}, {}, {},
     405, ""),
    ("GET", "/v2/{name}/manifests/{reference}",
     {"name": "raw:layers/patch", "reference": "latest"}, {}, {}, 200,
     "made on the way"),
    ("GET", "/v2/{name}/manifests/{reference}",
     {"name": "raw:layers/patch", "reference": "latest"}, {}, {}, 200,
     "etag"),
    ("GET", "/v2/{name}/manifests/{reference}",
     {"name": "raw:layers/patch", "reference": "latest"}, {},
     {"If-None-Match": "{etag}"}, 304, ""),
    ("GET", "/v2/{name}/manifests/{reference}",
     {"name": "raw:layers/patch", "reference": "latest"}, {},
     {"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
     200, ""),
    ("GET", "/v2/{name}/manifests/{reference}",
     {"name": "raw:layers/patch", "reference": "v9"}, {}, {}, 404, ""),
    ("GET", "/v2/{name}/manifests/{reference}",
     {"name": "raw:layers/nope", "reference": "latest"}, {}, {}, 404, ""),
    ("GET", "/v2/{name}/manifests/{reference}",
     {"name": "raw:layers/patch", "reference": "sha256:zz"}, {}, {}, 400,
     ""),
    ("GET", "/v2/{name}/manifests/{reference}",
     {"name": "raw:layers/ghost", "reference": "latest"}, {}, {}, 500, ""),
    ("GET", "/v2/{name}/manifests/{reference}",
     {"name": "raw:layers/redir", "reference": "latest"}, {}, {}, 422,
     "refused before the status goes out"),
    ("GET", "/v2/{name}/manifests/{reference}",
     {"name": "raw:layers/patch", "reference": "latest"}, {},
     {"Authorization": None}, 401, ""),
    ("GET", "/v2/{name}/manifests/{reference}",
     {"name": "raw:layers/patch", "reference": "latest"}, {},
     {"Authorization": "{token:lister}"}, 403, ""),
    ("GET", "/v2/{name}/manifests/{reference}",
     {"name": "raw:layers/patch", "reference": "latest"}, {},
     {"Authorization": "{token:narrow}"}, 404, "hidden"),
    ("PUT", "/v2/{name}/manifests/{reference}",
     {"name": "raw:layers/patch", "reference": "latest"}, {}, {}, 405, ""),
    ("GET", "/v2/{name}/blobs/{digest}",
     {"name": "raw:layers/patch", "digest": "sha256:" + "0" * 64}, {}, {},
     404, ""),
    ("GET", "/v2/{name}/blobs/{digest}",
     {"name": "raw:layers/patch", "digest": "sha256:zz"}, {}, {}, 400, ""),
    ("GET", "/v2/{name}/blobs/{digest}",
     {"name": "raw:layers/patch", "digest": "sha256:" + "0" * 64}, {},
     {"Authorization": None}, 401, ""),
    ("DELETE", "/v2/{name}/blobs/{digest}",
     {"name": "raw:layers/patch", "digest": "sha256:" + "0" * 64}, {}, {},
     405, ""),
    ("GET", "/layers", {}, {}, {"Host": "localhost"}, 200, ""),
]

# Documented response headers a response may lack: Link (only with a
# next page) and the digests (trailers, not headers).
OPTIONAL_HEADERS = {"link", "docker-content-digest", "x-layer-diff-id"}


class Contract:
    def __init__(self, base, spec_path):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port
        with open(spec_path, encoding="utf-8") as f:
            self.spec = yaml.safe_load(f)
        if RefResolver is not None:
            self.resolver = RefResolver.from_schema(self.spec)
        else:  # pragma: no cover
            self.resolver = None
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE
        self.mismatches = []
        self.known = []
        self.answered = {}  # (template, method) -> set of statuses
        self.etag = None
        self.count = 0
        self.validators = {}
        self.tokens = dict(w.split("=", 1) for w in
                           os.environ.get("LAYERD_CONTRACT_TOKENS", "").split())
        self.default_headers = {}
        if "admin" in self.tokens:
            self.default_headers["Authorization"] = "Bearer " + self.tokens["admin"]

    def headers_of(self, headers):
        """The request's headers: the defaults, then the case's ("{token:
        NAME}" replaced, None removing)."""
        out = dict(self.default_headers)
        for k, v in headers.items():
            if v is None:
                out.pop(k, None)
                continue
            m = re.fullmatch(r"\{token:(\w+)\}", v)
            out[k] = "Bearer " + self.tokens[m.group(1)] if m else v
        return out

    # ---- the document ----

    def deref(self, node):
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not ref.startswith("#/"):
                raise ValueError("external $ref %s" % ref)
            node = self.spec
            for part in ref[2:].split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def operation(self, template, method):
        item = self.spec["paths"].get(template)
        if item is None:
            return None
        return item.get(method.lower())

    def validate(self, schema, value):
        """The first validation error's message, or None."""
        key = json.dumps(schema, sort_keys=True)
        v = self.validators.get(key)
        if v is None:
            if self.resolver is not None:
                v = Draft202012Validator(schema, resolver=self.resolver)
            else:  # pragma: no cover
                v = Draft202012Validator(schema)
            self.validators[key] = v
        try:
            v.validate(value)
        except ValidationError as e:
            where = "/".join(str(p) for p in e.absolute_path) or "(root)"
            return "%s: %s" % (where, e.message[:300])
        return None

    # ---- talking to the server ----

    def connect(self, rcvbuf):
        """A fresh TLS connection (no Nagle: a request is one write)."""
        s = socket.create_connection((self.host, self.port), timeout=20)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = http.client.HTTPSConnection(self.host, self.port,
                                           context=self.ctx, timeout=20)
        conn.sock = self.ctx.wrap_socket(s, server_hostname=self.host)
        return conn

    def send(self, method, target, headers):
        """Status, headers (lower-cased dict), body (b"" for HEAD) and
        whether the body was cut short. A fresh connection each time."""
        conn = self.connect(65536)
        headers = self.headers_of(headers)
        try:
            conn.putrequest(method, target, skip_accept_encoding=True,
                            skip_host="Host" in headers)
            for k, v in headers.items():
                conn.putheader(k, v)
            conn.endheaders()
            r = conn.getresponse()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            body, cut = b"", False
            if method != "HEAD":
                try:
                    body = r.read()
                except http.client.IncompleteRead as e:
                    body, cut = e.partial, True
            return r.status, hdrs, body, cut
        finally:
            conn.close()

    @staticmethod
    def target(template, params, query):
        path = template
        for name, value in params.items():
            if value.startswith("raw:"):
                enc = value[4:]
            else:
                enc = urllib.parse.quote(value, safe="/" if name == "path"
                                         else "")
            path = path.replace("{%s}" % name, enc)
        if query:
            path += "?" + urllib.parse.urlencode(query)
        return path

    # ---- checking one answer ----

    def miss(self, label, what):
        self.mismatches.append("%s: %s" % (label, what))

    @staticmethod
    def media(value):
        parts = [p.strip().lower() for p in value.split(";")]
        return ";".join([parts[0]] + sorted(p.replace(" ", "") for p in parts[1:] if p))

    def check_headers(self, label, documented, hdrs):
        for name, h in (documented or {}).items():
            h = self.deref(h)
            low = name.lower()
            if low not in hdrs:
                if low not in OPTIONAL_HEADERS and h.get("required") is not False:
                    self.miss(label, "documented header %s is missing" % name)
                continue
            schema = self.deref(h.get("schema", {}))
            value = hdrs[low]
            if "const" in schema and value != str(schema["const"]):
                self.miss(label, "header %s is %r, documented const %r"
                          % (name, value, schema["const"]))
            if "pattern" in schema and not re.search(schema["pattern"], value):
                self.miss(label, "header %s is %r, not matching %s"
                          % (name, value, schema["pattern"]))
            if "enum" in schema and value not in [str(v) for v in schema["enum"]]:
                self.miss(label, "header %s is %r, not one of %r"
                          % (name, value, schema["enum"]))
            if schema.get("type") == "integer" and not re.fullmatch(r"[0-9]+", value):
                self.miss(label, "header %s is %r, not an integer" % (name, value))

    def check_body(self, label, mtype, content, body):
        schema = content.get("schema")
        if mtype == "application/x-ndjson":
            for i, line in enumerate(body.split(b"\n")[:-1]):
                try:
                    doc = json.loads(line)
                except ValueError as e:
                    self.miss(label, "NDJSON line %d does not parse: %s" % (i + 1, e))
                    return
                err = self.validate({"$ref": "#/components/schemas/Entry"}, doc)
                if err:
                    self.miss(label, "NDJSON line %d is not an Entry: %s" % (i + 1, err))
                    return
            if body and not body.endswith(b"\n"):
                self.miss(label, "NDJSON does not end in a newline")
            return
        if schema is None or not (mtype.endswith("/json") or mtype.endswith("+json")):
            return
        try:
            doc = json.loads(body)
        except ValueError as e:
            self.miss(label, "%s body does not parse: %s" % (mtype, e))
            return
        err = self.validate(schema, doc)
        if err:
            self.miss(label, "body does not match the %s schema: %s" % (mtype, err))

    def check(self, method, template, params, query, headers, want, note):
        if "{etag}" in headers.values():
            headers = {k: (self.etag if v == "{etag}" else v)
                       for k, v in headers.items()}
        target = self.target(template, params, query)
        shown = target if len(target) < 120 else target[:100] + "...(%d bytes)" % len(target)
        label = "%s %s" % (method, shown)
        if headers:
            label += " [%s]" % ", ".join("%s: %s" % kv for kv in headers.items())
        self.count += 1
        try:
            status, hdrs, body, cut = self.send(method, target, headers)
        except (OSError, http.client.HTTPException) as e:
            self.miss(label, "request failed: %r" % e)
            return None
        if want is not None and status != want:
            self.miss(label, "status %d, the case expects %d" % (status, want))
        if cut and status < 300:
            self.miss(label, "the body was cut short")
        if "etag" in note and "etag" in hdrs:
            self.etag = hdrs["etag"]
        op = self.operation(template, method)
        get_op = self.operation(template, "GET")
        if op is None and method not in ("GET", "HEAD"):
            op = get_op  # other methods: the GET's 405
        if op is None:
            self.miss(label, "no %s operation documented for %s" % (method, template))
            return status
        responses = op.get("responses", {})
        doc = responses.get(str(status))
        if doc is None:
            self.miss(label, "status %d is not documented for %s %s (documented: %s)"
                      % (status, "GET" if op is get_op else method, template,
                         ", ".join(sorted(responses))))
            return status
        # the GET operation documents what other methods get (405)
        answered_as = method if op is not get_op else "GET"
        self.answered.setdefault((template, answered_as), set()).add(status)
        doc = self.deref(doc)
        self.check_headers(label, doc.get("headers"), hdrs)
        content = doc.get("content")
        if content is None and method == "HEAD":
            gdoc = (get_op or {}).get("responses", {}).get(str(status))
            content = self.deref(gdoc).get("content") if gdoc else None
        ctype = hdrs.get("content-type")
        if content is None:
            if body:
                self.miss(label, "a body (%d bytes) where none is documented" % len(body))
            return status
        if ctype is None:
            self.miss(label, "no Content-Type; documented: %s" % ", ".join(content))
            return status
        found = [m for m in content if self.media(m) == self.media(ctype)]
        if not found:
            self.miss(label, "Content-Type %r is not documented for %d (documented: %s)"
                      % (ctype, status, ", ".join(content)))
            return status
        if method != "HEAD":
            self.check_body(label, found[0], content[found[0]], body)
        return status

    # ---- the caps: two held exports, then a 503; a third stream, then
    # 503 for every kind of stream ----

    def hold(self, target="/layers/big/export"):
        """A stream whose body is not read; None if refused."""
        for _ in range(50):
            conn = self.connect(32768)
            conn.request("GET", target, headers=self.headers_of({}))
            r = conn.getresponse()
            if r.status == 200:
                return conn
            r.read()
            conn.close()
            time.sleep(0.1)  # a finished export's slot not yet given back
        return None

    def capped(self):
        # two keys: a second request of one key would wait on its fill
        # (api/blobs.c) and hold no export slot
        held = [self.hold(), self.hold("/layers/big/export?compression=gzip")]
        try:
            if None in held:
                self.miss("GET /layers/big/export", "could not hold two exports")
                return
            for _ in range(2):
                # a blob not kept yet, so one that needs an export
                self.check("GET", "/layers/{id}/export", {"id": "patch"},
                           {"compression": "zstd", "level": "1"}, {}, 503, "")
            # HEAD starts no export, so the cap does not apply
            self.check("HEAD", "/layers/{id}/export", {"id": "patch"}, {}, {},
                       200, "")
            # the server runs with --max-streams 3: one more stream fills it
            held.append(self.hold("/layers/big/files/blob"))
            if held[-1] is None:
                self.miss("GET /layers/big/files/blob", "could not hold a third stream")
                return
            self.check("GET", "/layers/{id}/entries", {"id": "patch"}, {}, {},
                       503, "past --max-streams")
            self.check("GET", "/layers/{id}/summary", {"id": "patch"}, {}, {},
                       503, "past --max-streams")
            self.check("GET", "/layers/{id}/files/{path}",
                       {"id": "base", "path": "etc/hostname"}, {}, {}, 503,
                       "past --max-streams")
            self.check("GET", "/healthz", {}, {}, {}, 200, "at the stream cap")
        finally:
            for c in held:
                if c is not None:
                    c.close()

    def run(self):
        for method, template, params, query, headers, want, note in CASES:
            status = self.check(method, template, params, query, headers,
                                want, note)
            if method == "GET":
                # HEAD mirrors GET: the same status
                self.check("HEAD", template, params, query, headers, status,
                           "")
        self.capped()
        for template, item in self.spec["paths"].items():
            for method in ("get", "head", "put", "post", "delete", "patch",
                           "options", "trace"):
                if method not in item:
                    continue
                got = self.answered.get((template, method.upper()), set())
                if not got:
                    self.miss("%s %s" % (method.upper(), template),
                              "documented operation never answered with a documented status")
                    continue
                never = sorted(set(item[method].get("responses", {})) -
                               {str(s) for s in got})
                if never:
                    print("info: %s %s: documented, not produced here: %s"
                          % (method.upper(), template, ", ".join(never)))
        for m in self.mismatches:
            print("MISMATCH %s" % m)
        ops = sum(1 for i in self.spec["paths"].values() for m in i
                  if m in ("get", "head", "post", "put", "delete", "patch"))
        print("%d requests, %d operations, %d mismatches"
              % (self.count, ops, len(self.mismatches)))
        return 1 if self.mismatches else 0


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(Contract(sys.argv[1], sys.argv[2]).run())


if __name__ == "__main__":
    main()
