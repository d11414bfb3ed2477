"""Registries that misbehave: a scripted HTTP server on 127.0.0.1 standing in for one.

These cases cannot be produced with a real docker-registry: blob storage redirects
to another host, content that does not match its digest, schema 1 manifests.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import images


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Scripted:
    """A tiny registry: serves fixed manifests and blobs, optionally with Basic auth
    (user alice / password `secret-pw`), and can redirect blob GETs elsewhere."""

    def __init__(self, manifests=None, blobs=None, basic=False, redirect_blobs_to=None,
                 manifest_digest_header=None):
        self.manifests = manifests or {}     # "repo/manifests/ref" -> (media type, bytes)
        self.blobs = blobs or {}             # digest -> bytes
        self.basic = basic
        self.redirect_blobs_to = redirect_blobs_to
        self.manifest_digest_header = manifest_digest_header
        self.requests = []                   # (method, path, headers dict)
        owner = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def send(self, status, body=b"", headers=()):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def handle_any(self):
                owner.requests.append((self.command, self.path, dict(self.headers)))
                if owner.basic:
                    want = "Basic " + base64.b64encode(b"alice:secret-pw").decode()
                    if self.headers.get("Authorization") != want:
                        return self.send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"auth"}]}',
                                         [("WWW-Authenticate", 'Basic realm="scripted"')])
                if self.path == "/v2/":
                    return self.send(200, b"{}")
                parts = self.path.split("/", 2)[2] if self.path.startswith("/v2/") else ""
                if "/manifests/" in parts:
                    if parts not in owner.manifests:
                        return self.send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')
                    mt, body = owner.manifests[parts]
                    hdrs = [("Content-Type", mt)]
                    hdrs.append(("Docker-Content-Digest", owner.manifest_digest_header or sha(body)))
                    return self.send(200, body, hdrs)
                if "/blobs/" in parts:
                    digest = parts.rsplit("/", 1)[1]
                    if owner.redirect_blobs_to:
                        return self.send(307, b"", [("Location", f"{owner.redirect_blobs_to}/storage/{digest}?X-Amz-Signature=abc")])
                    if digest not in owner.blobs:
                        return self.send(404, b'{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}')
                    return self.send(200, owner.blobs[digest], [("Content-Type", "application/octet-stream")])
                if self.path.startswith("/storage/"):
                    digest = self.path.split("/")[2].split("?")[0]
                    return self.send(200, owner.blobs.get(digest, b""), [("Content-Type", "application/octet-stream")])
                return self.send(404, b"{}")

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = handle_any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        self.url = f"http://{self.host}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted():
    servers = []

    def make(**kw):
        s = Scripted(**kw)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


def image_parts(seed):
    img = images.oci_image([images.make_layer(seed, 5000)])
    return img, {f"app/manifests/1": (img.media_type, img.manifest),
                 f"app/manifests/{img.digest}": (img.media_type, img.manifest)}


def test_redirect_to_storage_drops_authorization(scripted, plain_registry, run_aas):
    img, manifests = image_parts("redirect")
    storage = scripted(blobs=img.blobs)                  # another origin: no auth
    reg = scripted(manifests=manifests, blobs=img.blobs, basic=True, redirect_blobs_to=storage.url)
    p = run_aas("copy", "--plain-http", "--from-username", "alice", "--from-password-stdin",
                f"{reg.host}/app:1", plain_registry.ref("app"), input="secret-pw\n")
    assert p.returncode == 0, p.stderr
    assert images.fetch_manifest(plain_registry, "app", "1") == img.manifest
    blob_gets = [r for r in storage.requests if r[1].startswith("/storage/")]
    assert len(blob_gets) == 2  # config + layer, fetched from storage
    for _, _, headers in blob_gets:
        assert not any(k.lower() == "authorization" for k in headers), "credentials leaked to another host"
    # ...while the registry itself did get them
    assert any("Authorization" in h for _, p_, h in reg.requests if "/blobs/" in p_)


def test_corrupt_blob_is_refused(scripted, plain_registry, run_aas):
    img, manifests = image_parts("corrupt")
    blobs = dict(img.blobs)
    layer = img.layers[0].digest
    bad = bytearray(blobs[layer])
    bad[100] ^= 0xFF
    blobs[layer] = bytes(bad)
    reg = scripted(manifests=manifests, blobs=blobs)
    p = run_aas("copy", "--plain-http", "--retries", "0", f"{reg.host}/app:1", plain_registry.ref("app"))
    assert p.returncode == 1
    assert "content hash mismatch" in p.stderr
    assert layer in p.stderr
    # Nothing was tagged at the target.
    with pytest.raises(images.RegistryError):
        images.fetch_manifest(plain_registry, "app", "1")


def test_blob_larger_than_descriptor_is_refused(scripted, plain_registry, run_aas):
    img, manifests = image_parts("toolong")
    blobs = dict(img.blobs)
    layer = img.layers[0].digest
    blobs[layer] = blobs[layer] + b"extra"
    reg = scripted(manifests=manifests, blobs=blobs)
    p = run_aas("copy", "--plain-http", "--retries", "0", f"{reg.host}/app:1", plain_registry.ref("app"))
    assert p.returncode == 1
    assert "more than the" in p.stderr


def test_manifest_not_matching_requested_digest(scripted, plain_registry, run_aas):
    img, _ = image_parts("wrongdigest")
    other = images.oci_image([images.make_layer("other", 100)])
    reg = scripted(manifests={f"app/manifests/{img.digest}": (other.media_type, other.manifest)},
                   blobs=other.blobs)
    p = run_aas("copy", "--plain-http", f"{reg.host}/app@{img.digest}", plain_registry.ref("app"))
    assert p.returncode == 1
    assert "not the one asked for" in p.stderr


def test_docker_content_digest_mismatch(scripted, plain_registry, run_aas):
    img, manifests = image_parts("dcd")
    reg = scripted(manifests=manifests, blobs=img.blobs, manifest_digest_header="sha256:" + "0" * 64)
    p = run_aas("copy", "--plain-http", f"{reg.host}/app:1", plain_registry.ref("app"))
    assert p.returncode == 1
    assert "Docker-Content-Digest" in p.stderr


def test_schema1_is_refused_clearly(scripted, plain_registry, run_aas):
    body = json.dumps({"schemaVersion": 1, "name": "app", "tag": "1", "fsLayers": [], "history": []}).encode()
    reg = scripted(manifests={"app/manifests/1": ("application/vnd.docker.distribution.manifest.v1+prettyjws", body)})
    p = run_aas("copy", "--plain-http", f"{reg.host}/app:1", plain_registry.ref("app"))
    assert p.returncode == 1
    assert "schema 1" in p.stderr


def test_accept_header_lists_all_manifest_types(scripted, plain_registry, run_aas):
    img, manifests = image_parts("accept")
    reg = scripted(manifests=manifests, blobs=img.blobs)
    p = run_aas("copy", "--plain-http", f"{reg.host}/app:1", plain_registry.ref("app"))
    assert p.returncode == 0, p.stderr
    accept = [h.get("Accept", "") for m, path, h in reg.requests if "/manifests/" in path][0]
    for mt in ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json",
               "application/vnd.oci.image.manifest.v1+json",
               "application/vnd.docker.distribution.manifest.v2+json"):
        assert mt in accept


class BearerScripted(Scripted):
    """Token auth where the registry asks for more scope on a later 401 (as registries do
    for a blob linked from another repository)."""

    def __init__(self, img):
        self.token_requests = []
        owner = self

        class TokenHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                from urllib.parse import parse_qs, urlsplit
                q = parse_qs(urlsplit(self.path).query)
                scopes = sorted(q.get("scope", []))
                owner.token_requests.append(scopes)
                body = json.dumps({"access_token": "tok:" + "|".join(scopes)}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.token_httpd = ThreadingHTTPServer(("127.0.0.1", 0), TokenHandler)
        self.token_httpd.daemon_threads = True
        threading.Thread(target=self.token_httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        realm = f"http://127.0.0.1:{self.token_httpd.server_address[1]}/token"
        super().__init__(manifests={"app/manifests/1": (img.media_type, img.manifest)}, blobs=img.blobs)
        layer = img.layers[0].digest
        base_handler = self.httpd.RequestHandlerClass

        def needs(path):
            if path == "/v2/":
                return []
            if path.endswith(layer):
                return ["repository:app:pull", "repository:base/lib:pull"]
            return ["repository:app:pull"]

        def handle_any(h):
            owner.requests.append((h.command, h.path, dict(h.headers)))
            want = needs(h.path)
            got = h.headers.get("Authorization", "")
            held = got[len("Bearer tok:"):].split("|") if got.startswith("Bearer tok:") else []
            if (h.path == "/v2/" and not got) or any(s not in held for s in want):
                missing = " ".join(s for s in want if s not in held) or "repository:app:pull"
                challenge = f'Bearer realm="{realm}",service="scripted",scope="{missing}"'
                if got:
                    challenge += ',error="insufficient_scope"'
                return h.send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"scope"}]}',
                              [("WWW-Authenticate", challenge)])
            return base_handler.handle_any(h)

        base_handler.do_GET = base_handler.do_HEAD = handle_any

    def stop(self):
        super().stop()
        self.token_httpd.shutdown()
        self.token_httpd.server_close()


def test_scope_widened_on_a_later_401(plain_registry, run_aas):
    img = images.oci_image([images.make_layer("scope", 3000)])
    reg = BearerScripted(img)
    try:
        p = run_aas("copy", "--plain-http", f"{reg.host}/app:1", plain_registry.ref("app"))
        assert p.returncode == 0, p.stderr
        assert ["repository:app:pull"] in reg.token_requests
        assert ["repository:app:pull", "repository:base/lib:pull"] in reg.token_requests
        assert images.fetch_manifest(plain_registry, "app", "1") == img.manifest
    finally:
        reg.stop()
