"""A fault-injecting HTTP/1.1 reverse proxy for registry tests.

The proxy listens on 127.0.0.1 (free port) and forwards every request to a
plain-HTTP ``upstream`` ("host:port" or a harness Registry) byte for byte,
Host header included, so the registry's absolute ``Location`` headers point
back at the proxy.  Bodies are streamed both ways (Content-Length, chunked,
or read-until-close responses); ``Expect: 100-continue`` is honoured.  Each
request goes over a fresh upstream connection; the client side is kept
alive when both the client and the upstream allow it.

Faults are :class:`Rule` objects, replaceable at runtime with
``proxy.set_rules([...])``.  A rule matches on ``method`` (None = any) and
``path_regex`` (``re.search`` on the request target, query included; None =
any).  Every matching rule counts the request in ``rule.matched``; the first
rule (in list order) whose count is in ``(after, after + times]`` injects
its fault (``rule.applied``); a request no rule faults is forwarded (counted
in ``rule.passed`` for each rule that matched it).

Actions:
  ``status``             answer ``status`` (default 500) with a registry-style
                         JSON error body, never forwarding; the connection
                         is closed afterwards.
  ``status_429``         answer 429 TOOMANYREQUESTS with ``Retry-After:
                         retry_after``.
  ``redirect``           answer 307 to ``location`` (``{target}`` in it is
                         replaced by the original request target).
  ``reset_before``       close the client socket without answering.
  ``reset_mid_body``     forward, send the response head and ``fraction`` of
                         the body (or ``partial_bytes``), then close.
  ``reset_request_body`` read ``fraction`` of the request body (or
                         ``partial_bytes``), pass it upstream, then close
                         both sides (a "100 Continue" is sent when asked for).
  ``stall``              like reset_mid_body, but after the partial body stop
                         sending for ``seconds`` before closing.
  ``delay``              wait ``seconds``, then forward normally.
Closes are FIN closes; ``rst=True`` makes them TCP resets.

``proxy.dead = True`` (or ``set_dead(True)``) makes the proxy reset every
open and every new connection immediately, like a dead registry.

``proxy.log`` is a list of dicts (method, target, path, status, fault) for
every request seen; status is None when no status line was sent.
"""

from __future__ import annotations

import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

ACTIONS = ("status", "status_429", "redirect", "reset_before", "reset_mid_body",
           "reset_request_body", "stall", "delay")

_ERROR_CODES = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "DENIED", 404: "NOT_FOUND",
                405: "UNSUPPORTED", 429: "TOOMANYREQUESTS", 500: "UNKNOWN",
                502: "UNAVAILABLE", 503: "UNAVAILABLE", 504: "UNAVAILABLE"}
_REASONS = {200: "OK", 307: "Temporary Redirect", 400: "Bad Request", 401: "Unauthorized",
            403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable", 504: "Gateway Timeout"}

CLIENT_IDLE_TIMEOUT = 30.0
UPSTREAM_TIMEOUT = 60.0
MAX_HEAD = 64 * 1024


@dataclass
class Rule:
    method: str | None = None
    path_regex: str | None = None
    action: str = "status"
    times: int | None = 1          # how many matches get the fault; None = all
    after: int = 0                 # skip the first N matches
    status: int = 500
    retry_after: int | float = 1
    seconds: float = 5.0           # stall / delay duration
    fraction: float = 0.5          # share of the body passed before a reset/stall
    partial_bytes: int | None = None  # absolute byte count, overrides fraction
    location: str | None = None
    rst: bool = False
    body: bytes | None = None      # custom body for status actions
    matched: int = field(default=0, compare=False)
    applied: int = field(default=0, compare=False)
    passed: int = field(default=0, compare=False)

    def __post_init__(self):
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r}; one of {ACTIONS}")
        self._re = re.compile(self.path_regex) if self.path_regex else None

    def matches(self, method: str, target: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return self._re is None or self._re.search(target) is not None

    def partial(self, total: int | None) -> int:
        if self.partial_bytes is not None:
            return self.partial_bytes
        if total is None:
            return 1024
        return int(total * self.fraction)


class _Limit(Exception):
    """The byte budget of a partial transfer is used up."""


class _Closed(Exception):
    """A peer closed or the transfer failed."""


class _NotHttp(Exception):
    """The client sent something that is not an HTTP/1 request."""


class _Stream:
    """Buffered reader over a socket."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = b""

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except (OSError, socket.timeout):
            return False
        if not data:
            return False
        self.buf += data
        return True

    def read_head(self) -> bytes | None:
        """The next message head, or None on EOF / timeout / garbage.  Raises
        _NotHttp when the peer does not speak HTTP (e.g. a TLS ClientHello)."""
        while b"\r\n\r\n" not in self.buf:
            self.buf = self.buf.lstrip(b"\r\n")  # stray CRLFs between requests
            if self.buf and not (65 <= self.buf[0] <= 90):  # methods start A-Z
                raise _NotHttp()
            if len(self.buf) > MAX_HEAD or not self._fill():
                return None
        i = self.buf.index(b"\r\n\r\n") + 4
        head, self.buf = self.buf[:i], self.buf[i:]
        return head

    def readline(self) -> bytes:
        while b"\n" not in self.buf:
            if len(self.buf) > MAX_HEAD or not self._fill():
                raise _Closed("eof in line")
        i = self.buf.index(b"\n") + 1
        line, self.buf = self.buf[:i], self.buf[i:]
        return line

    def read_some(self, n: int) -> bytes:
        if not self.buf and not self._fill():
            return b""
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


class _Sink:
    """Writes to a socket, optionally raising _Limit after ``limit`` bytes."""

    def __init__(self, sock: socket.socket, limit: int | None = None):
        self.sock = sock
        self.limit = limit
        self.sent = 0

    def send(self, data: bytes) -> None:
        if self.limit is not None:
            allowed = self.limit - self.sent
            if len(data) >= allowed and (len(data) > allowed or allowed == 0):
                if allowed > 0:
                    self._sendall(data[:allowed])
                    self.sent += allowed
                raise _Limit()
        self._sendall(data)
        self.sent += len(data)

    def _sendall(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise _Closed(str(e)) from e


class _Head:
    def __init__(self, raw: bytes):
        self.raw = raw
        lines = raw.decode("latin-1").split("\r\n")
        self.start = lines[0]
        self.headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            self.headers.append((name.strip().lower(), value.strip()))

    def get(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def has_token(self, name: str, token: str) -> bool:
        v = self.get(name)
        return v is not None and token in [t.strip().lower() for t in v.split(",")]

    def framing(self) -> tuple:
        if self.has_token("transfer-encoding", "chunked"):
            return ("chunked", None)
        cl = self.get("content-length")
        if cl is not None:
            return ("length", int(cl))
        return None


def _relay(src: _Stream, sink: _Sink, framing: tuple) -> None:
    kind, n = framing
    if kind == "length":
        remaining = n
        while remaining > 0:
            data = src.read_some(min(remaining, 65536))
            if not data:
                raise _Closed("eof in body")
            sink.send(data)
            remaining -= len(data)
    elif kind == "chunked":
        while True:
            line = src.readline()
            sink.send(line)
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers up to the empty line
                    t = src.readline()
                    sink.send(t)
                    if t in (b"\r\n", b"\n"):
                        return
            remaining = size + 2  # data + CRLF
            while remaining > 0:
                data = src.read_some(min(remaining, 65536))
                if not data:
                    raise _Closed("eof in chunk")
                sink.send(data)
                remaining -= len(data)
    elif kind == "close":
        while True:
            data = src.read_some(65536)
            if not data:
                return
            sink.send(data)


def _close(sock: socket.socket | None, rst: bool = False) -> None:
    if sock is None:
        return
    try:
        if rst:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class FaultProxy:
    def __init__(self, upstream, rules=None):
        host = getattr(upstream, "host", upstream)
        if getattr(upstream, "scheme", "http") != "http":
            raise ValueError("FaultProxy needs a plain-HTTP upstream")
        uh, _, up = str(host).rpartition(":")
        self.upstream = (uh.strip("[]"), int(up))
        # Stand-in attributes so the proxy can be used wherever a Registry is.
        self.registry = upstream if hasattr(upstream, "host") else None
        self.mode = getattr(upstream, "mode", "plain")
        self.username = getattr(upstream, "username", None)
        self.password = getattr(upstream, "password", None)
        self.token_server = getattr(upstream, "token_server", None)
        self.log: list[dict] = []
        self._rules: list[Rule] = list(rules or [])
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._dead = False
        self._conns: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind(("127.0.0.1", 0))
        self._lsock.listen(64)
        self._lsock.settimeout(0.2)
        self.port = self._lsock.getsockname()[1]
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True,
                                               name=f"faultproxy-{self.port}")
        self._accept_thread.start()

    # -- public API ---------------------------------------------------------
    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    scheme = "http"
    ca_file = None
    cert_dir = None
    tls = False

    @property
    def auth(self) -> tuple[str, str] | None:
        return None if self.username is None else (self.username, self.password)

    def ref(self, repo: str, tag: str | None = None, digest: str | None = None) -> str:
        r = f"{self.host}/{repo}"
        if tag:
            r += f":{tag}"
        if digest:
            r += f"@{digest}"
        return r

    @property
    def rules(self) -> list[Rule]:
        return list(self._rules)

    def set_rules(self, rules) -> None:
        with self._lock:
            self._rules = list(rules)

    def add_rule(self, rule: Rule) -> Rule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear_rules(self) -> None:
        self.set_rules([])

    @property
    def dead(self) -> bool:
        return self._dead

    @dead.setter
    def dead(self, value: bool) -> None:
        self.set_dead(value)

    def set_dead(self, value: bool = True) -> None:
        self._dead = bool(value)
        if self._dead:
            with self._lock:
                conns = list(self._conns)
            for c in conns:
                _close(c, rst=True)

    def requests(self, method: str | None = None, path_regex: str | None = None) -> list[dict]:
        """Log entries filtered by method and ``re.search`` on the target."""
        rx = re.compile(path_regex) if path_regex else None
        with self._lock:
            entries = list(self.log)
        return [e for e in entries
                if (method is None or e["method"] == method)
                and (rx is None or rx.search(e["target"]))]

    def stop(self) -> None:
        self._stop.set()
        _close(self._lsock)
        self._accept_thread.join(timeout=5)
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            _close(c, rst=True)
        for t in list(self._threads):
            t.join(timeout=5)

    # -- internals ------------------------------------------------------------
    def _record(self, method, target, status, fault) -> None:
        with self._lock:
            self.log.append({"method": method, "target": target,
                             "path": target.split("?", 1)[0], "status": status,
                             "fault": fault, "time": time.time()})

    def _pick(self, method: str, target: str):
        chosen = None
        with self._lock:
            matching = [r for r in self._rules if r.matches(method, target)]
            for r in matching:
                r.matched += 1
                if chosen is None and r.matched > r.after and (
                        r.times is None or r.matched <= r.after + r.times):
                    chosen = r
            for r in matching:
                if r is chosen:
                    r.applied += 1
                else:
                    r.passed += 1
        return chosen

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                csock, _ = self._lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            if self._dead:
                _close(csock, rst=True)
                continue
            csock.settimeout(CLIENT_IDLE_TIMEOUT)
            t = threading.Thread(target=self._serve, args=(csock,), daemon=True)
            with self._lock:
                self._conns.add(csock)
                self._threads = [x for x in self._threads if x.is_alive()]
                self._threads.append(t)
            t.start()

    def _serve(self, csock: socket.socket) -> None:
        client = _Stream(csock)
        try:
            while not self._stop.is_set() and not self._dead:
                raw = client.read_head()
                if raw is None:
                    break
                if not self._one(csock, client, raw):
                    break
        except _NotHttp:
            # Like Go's server: a plain 400, so that clients probing with TLS
            # first (skopeo --tls-verify=false) fall back to HTTP at once.
            try:
                csock.sendall(b"HTTP/1.0 400 Bad Request\r\nConnection: close\r\n"
                              b"Content-Length: 0\r\n\r\n")
            except OSError:
                pass
        except (_Closed, OSError, ValueError):
            pass
        finally:
            with self._lock:
                self._conns.discard(csock)
            _close(csock)

    def _error_response(self, status: int, method: str, rule: Rule, extra=()) -> bytes:
        if rule.body is not None:
            body = rule.body
        else:
            code = _ERROR_CODES.get(status, "UNKNOWN")
            body = (b'{"errors":[{"code":"%s","message":"injected fault %d",'
                    b'"detail":"aas-test fault proxy"}]}\n' % (code.encode(), status))
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
                 "Content-Type: application/json; charset=utf-8",
                 "Docker-Distribution-Api-Version: registry/2.0",
                 f"Content-Length: {len(body)}", "Connection: close"]
        lines.extend(f"{k}: {v}" for k, v in extra)
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head if method == "HEAD" else head + body

    def _one(self, csock: socket.socket, client: _Stream, raw: bytes) -> bool:
        """Handle one request; returns whether the client connection stays open."""
        req = _Head(raw)
        parts = req.start.split(" ")
        if len(parts) != 3:
            return False
        method, target, version = parts
        req_framing = req.framing() or ("length", 0)
        has_body = req_framing != ("length", 0)
        expect = has_body and req.has_token("expect", "100-continue")
        rule = self._pick(method, target)
        action = rule.action if rule else None
        csink = _Sink(csock)

        if action in ("status", "status_429", "redirect"):
            if has_body and not expect:
                _relay(client, _Sink(_NullSock()), req_framing)
            if action == "status":
                resp, status = self._error_response(rule.status, method, rule), rule.status
            elif action == "status_429":
                status = 429
                resp = self._error_response(429, method, rule, [("Retry-After", str(rule.retry_after))])
            else:
                status = 307
                loc = (rule.location or "").replace("{target}", target)
                resp = self._error_response(307, method, rule, [("Location", loc)])
            csink.send(resp)
            self._record(method, target, status, action)
            return False
        if action == "reset_before":
            self._record(method, target, None, action)
            _close(csock, rst=rule.rst)
            return False
        if action == "delay":
            self._stop.wait(rule.seconds)

        up = None
        try:
            try:
                up = socket.create_connection(self.upstream, timeout=UPSTREAM_TIMEOUT)
            except OSError:
                self._record(method, target, 502, "upstream_unreachable")
                csink.send(self._error_response(502, method, Rule()))
                return False
            upstream = _Stream(up)
            usink = _Sink(up)
            usink.send(raw)

            if action == "reset_request_body":
                if expect:
                    csink.send(b"HTTP/1.1 100 Continue\r\n\r\n")
                total = req_framing[1] if req_framing[0] == "length" else None
                try:
                    _relay(client, _Sink(up, rule.partial(total)), req_framing)
                except _Limit:
                    pass
                self._record(method, target, None, action)
                _close(csock, rst=rule.rst)
                return False

            body_sent = not has_body
            if has_body and not expect:
                _relay(client, usink, req_framing)
                body_sent = True
            while True:
                rraw = upstream.read_head()
                if rraw is None:
                    self._record(method, target, None, "upstream_closed")
                    return False
                resp = _Head(rraw)
                status = int(resp.start.split(" ")[1])
                if 100 <= status < 200 and status != 101:
                    csink.send(rraw)  # interim response: forward it
                    if status == 100 and not body_sent:
                        _relay(client, usink, req_framing)
                        body_sent = True
                    continue
                break

            if method == "HEAD" or status in (204, 304):
                framing = ("length", 0)
            else:
                framing = resp.framing() or ("close", None)
            keep = (version == "HTTP/1.1" and body_sent and framing[0] != "close"
                    and not req.has_token("connection", "close")
                    and not resp.has_token("connection", "close"))

            if action in ("reset_mid_body", "stall"):
                csink.send(rraw)
                total = framing[1] if framing[0] == "length" else None
                try:
                    _relay(upstream, _Sink(csock, rule.partial(total)), framing)
                except _Limit:
                    pass
                self._record(method, target, status, action)
                if action == "stall":
                    self._stop.wait(rule.seconds)
                _close(csock, rst=rule.rst)
                return False

            csink.send(rraw)
            _relay(upstream, csink, framing)
            self._record(method, target, status, action)
            return keep
        finally:
            _close(up)


class _NullSock:
    """Discards data (used to drain request bodies that are not forwarded)."""

    def sendall(self, data: bytes) -> None:
        pass
