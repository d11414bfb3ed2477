"""A small Docker token-auth server (https://distribution.github.io/distribution/spec/auth/token/).

``GET /token?service=S&scope=repository:NAME:pull,push&scope=...`` with optional
HTTP Basic credentials answers a JSON body carrying a JWT (RS256).  The JWT
header has an ``x5c`` chain (base64 DER) whose root is the signing key's
self-signed certificate; the registry is configured with that certificate as
``auth.token.rootcertbundle`` and verifies the chain, the signature, ``iss``,
``aud`` (= service), ``exp``/``nbf`` and the ``access`` list.

The OAuth2 flavour (``POST /token`` with a form body, ``grant_type=password``)
is implemented too, so clients that try it first are served.

Access rules:
  * valid Basic credentials: every requested action is granted;
  * invalid Basic credentials: 401, always;
  * no credentials: only the ``pull`` actions of ``repository`` scopes when
    ``allow_anonymous_pull`` is true, otherwise 401.

Every request is appended to ``server.requests`` (a list of dicts) for
assertions, and every issued token's claims to ``server.issued``.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt

from .pki import SigningKey, make_signing_key

RESPONSE_MODES = ("both", "token_only", "access_token_only")


def parse_scope(scope: str):
    """``repository:a/b:pull,push`` -> ("repository", "a/b", ["pull", "push"]).

    The type may carry a class (``repository(plugin)``); the name may not
    contain ':' in practice, but anything between the first and last ':' is
    taken as the name.  Returns None for a malformed scope.
    """
    first = scope.find(":")
    last = scope.rfind(":")
    if first <= 0 or last == first:
        return None
    typ = scope[:first]
    name = scope[first + 1:last]
    actions = [a for a in scope[last + 1:].split(",") if a]
    if not name:
        return None
    return typ, name, actions


class TokenServer:
    """Token server bound to 127.0.0.1 on a free port, serving in a thread."""

    def __init__(self, username: str = "alice", password: str = "secret", *,
                 users: dict | None = None,
                 service: str = "aas-test-registry",
                 issuer: str = "aas-test-token-issuer",
                 allow_anonymous_pull: bool = False,
                 response_mode: str = "both",
                 expires_in: int = 300,
                 signing_key: SigningKey | None = None):
        if response_mode not in RESPONSE_MODES:
            raise ValueError(f"response_mode must be one of {RESPONSE_MODES}")
        self.users = dict(users) if users else {username: password}
        self.username = username
        self.password = password
        self.service = service
        self.issuer = issuer
        self.allow_anonymous_pull = allow_anonymous_pull
        self.response_mode = response_mode
        self.expires_in = expires_in
        # When set to an HTTP status, every request is answered with it (for
        # testing clients against a failing realm).
        self.fail_status: int | None = None
        self.signing_key = signing_key or make_signing_key()
        self._x5c = [base64.b64encode(self.signing_key.cert_der).decode("ascii")]
        self._key_pem = self.signing_key.key_pem
        self.requests: list[dict] = []
        self.issued: list[dict] = []
        self._lock = threading.Lock()

        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 30  # bounds idle keep-alive connections

            def log_message(self, fmt, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                server._handle(self, "GET")

            def do_POST(self):
                server._handle(self, "POST")

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.1},
                                        name=f"tokenserver-{self.port}", daemon=True)
        self._thread.start()

    # -- public attributes -------------------------------------------------
    @property
    def url(self) -> str:
        """The realm to put into the registry's ``auth.token.realm``."""
        return f"http://127.0.0.1:{self.port}/token"

    realm = url

    def write_root_cert(self, path) -> str:
        """Write the certificate the registry must trust (rootcertbundle)."""
        return str(self.signing_key.write_cert(path))

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()
            self.issued.clear()

    def make_token(self, subject: str, access: list[dict], expires_in: int | None = None) -> str:
        """Sign a token with arbitrary access (also usable directly by tests)."""
        now = int(time.time())
        exp = now + (self.expires_in if expires_in is None else expires_in)
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": exp,
            "nbf": now - 5,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        token = jwt.encode(claims, self._key_pem, algorithm="RS256",
                           headers={"x5c": self._x5c, "typ": "JWT"})
        with self._lock:
            self.issued.append(claims)
        return token

    # -- request handling --------------------------------------------------
    def _check_basic(self, header: str | None):
        """-> (present, valid, username)."""
        if not header:
            return False, False, None
        parts = header.split(None, 1)
        if len(parts) != 2 or parts[0].lower() != "basic":
            return False, False, None
        try:
            decoded = base64.b64decode(parts[1].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return True, False, None
        user, sep, pw = decoded.partition(":")
        if not sep:
            return True, False, user
        return True, self.users.get(user) == pw and user in self.users, user

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(h.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        form: dict = {}
        if method == "POST":
            length = int(h.headers.get("Content-Length") or 0)
            body = h.rfile.read(length) if length > 0 else b""
            form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)

        record = {
            "method": method,
            "path": parts.path,
            "query": query,
            "form": {k: v for k, v in form.items() if k != "password"},
            "basic_auth": False,
            "basic_auth_valid": False,
            "username": None,
            "scopes": [],
            "service": None,
            "status": None,
            "granted": [],
        }

        def finish(status: int, payload: dict, extra_headers=()):
            body = json.dumps(payload).encode()
            record["status"] = status
            with self._lock:
                self.requests.append(record)
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            for k, v in extra_headers:
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(body)

        if parts.path != "/token":
            finish(404, {"errors": [{"code": "NOT_FOUND", "message": "no such endpoint"}]})
            return
        if self.fail_status is not None:
            finish(self.fail_status, {"errors": [{"code": "UNAVAILABLE", "message": "injected failure"}]})
            return

        src = query if method == "GET" else form
        raw_scopes = []
        for s in src.get("scope", []):
            raw_scopes.extend(x for x in s.split(" ") if x)
        record["scopes"] = raw_scopes
        service = (src.get("service") or [None])[0]
        record["service"] = service

        if method == "POST":
            grant = (form.get("grant_type") or [""])[0]
            if grant != "password":
                finish(400, {"error": "unsupported_grant_type"})
                return
            user = (form.get("username") or [""])[0]
            pw = (form.get("password") or [""])[0]
            present, valid, username = True, (user in self.users and self.users[user] == pw), user
        else:
            present, valid, username = self._check_basic(h.headers.get("Authorization"))
        record["basic_auth"] = present
        record["basic_auth_valid"] = valid
        record["username"] = username

        challenge = [("WWW-Authenticate", f'Basic realm="{self.url}"')]
        if present and not valid:
            finish(401, {"errors": [{"code": "UNAUTHORIZED", "message": "invalid credentials"}]}, challenge)
            return
        if not present and not self.allow_anonymous_pull:
            finish(401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}, challenge)
            return
        if service is not None and service != self.service:
            finish(400, {"errors": [{"code": "INVALID_SERVICE", "message": f"unknown service {service!r}"}]})
            return

        access = []
        for s in raw_scopes:
            parsed = parse_scope(s)
            if parsed is None:
                continue
            typ, name, actions = parsed
            if not valid:  # anonymous: pull only, repositories only
                actions = [a for a in actions if a == "pull"] if typ.startswith("repository") else []
            if actions:
                access.append({"type": typ, "name": name, "actions": actions})
        record["granted"] = access

        subject = username if valid else ""
        token = self.make_token(subject, access)
        payload = {"expires_in": self.expires_in,
                   "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        if self.response_mode in ("both", "token_only"):
            payload["token"] = token
        if self.response_mode in ("both", "access_token_only"):
            payload["access_token"] = token
        finish(200, payload)
