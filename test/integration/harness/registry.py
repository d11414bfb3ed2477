"""Start real CNCF distribution registries (Debian's ``docker-registry`` 2.8).

``start_registry(workdir, mode)`` starts one registry process bound to
127.0.0.1 on a free port, with filesystem storage inside ``workdir``:

``plain``      HTTP, no authentication.
``tls-basic``  HTTPS with a server certificate issued by a throwaway test CA
               (``.ca_file``), htpasswd (bcrypt) auth for ``alice`` with a
               random password.
``token``      Token auth (``auth.token``) against a :class:`TokenServer`
               started alongside (``.token_server``).  Registry and realm are
               plain HTTP by default; pass ``tls=True`` to serve the registry
               over HTTPS (the realm stays HTTP).  Tokens are RS256 JWTs whose
               ``x5c`` header chain ends in the token server's self-signed
               certificate, which is the registry's ``rootcertbundle``.

The returned :class:`Registry` must be stopped with ``.stop()`` (the pytest
fixtures do it).
"""

from __future__ import annotations

import atexit
import base64
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .pki import CertificateAuthority, make_ca
from .tokenserver import TokenServer

MODES = ("plain", "tls-basic", "token")
REGISTRY_BINARY = os.environ.get("AAS_TEST_REGISTRY_BINARY", "/usr/bin/docker-registry")
DEFAULT_USER = "alice"


_live: set[subprocess.Popen] = set()


def _kill_live() -> None:
    """Last-resort cleanup at interpreter exit for registries nobody stopped."""
    for proc in list(_live):
        if proc.poll() is None:
            proc.kill()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
    _live.clear()


atexit.register(_kill_live)


def _die_with_parent() -> None:
    """preexec_fn: SIGTERM the registry when the process that started it dies
    (PR_SET_PDEATHSIG), so a killed pytest leaves no registry behind."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
    except OSError:
        pass


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(extra: dict | None = None) -> dict:
    """The environment for child processes: no proxies, no REGISTRY_* overrides."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("REGISTRY_")
           and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "ftp_proxy")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    if extra:
        env.update(extra)
    return env


def no_proxy_opener(ca_file: str | None = None, insecure: bool = False) -> urllib.request.OpenerDirector:
    """A urllib opener that never uses a proxy and trusts ``ca_file``."""
    ctx = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                       urllib.request.HTTPSHandler(context=ctx))


def htpasswd_bcrypt(path: Path, user: str, password: str) -> None:
    """Write an htpasswd file with a bcrypt entry (distribution only accepts bcrypt)."""
    htpasswd = shutil.which("htpasswd")
    if htpasswd is None:
        raise RuntimeError("htpasswd (apache2-utils) is required for tls-basic registries")
    out = subprocess.run([htpasswd, "-nbB", "-C", "5", user, password], check=True,
                         capture_output=True, text=True, timeout=30).stdout.strip()
    path.write_text(out + "\n")


@dataclass
class Registry:
    mode: str
    host: str                 # "127.0.0.1:PORT"
    scheme: str               # "http" | "https"
    ca_file: str | None
    cert_dir: str | None      # directory holding only ca.crt (skopeo --*-cert-dir)
    username: str | None
    password: str | None
    storage_dir: str
    log_file: str
    config_file: str
    root_dir: str
    token_server: TokenServer | None = None
    _proc: subprocess.Popen | None = field(default=None, repr=False)
    _owns_token_server: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def port(self) -> int:
        return int(self.host.rsplit(":", 1)[1])

    @property
    def tls(self) -> bool:
        return self.scheme == "https"

    @property
    def auth(self) -> tuple[str, str] | None:
        """(username, password) for modes that need credentials, else None."""
        if self.username is None:
            return None
        return (self.username, self.password)

    def ref(self, repo: str, tag: str | None = None, digest: str | None = None) -> str:
        """``127.0.0.1:PORT/repo[:tag][@digest]``."""
        r = f"{self.host}/{repo}"
        if tag:
            r += f":{tag}"
        if digest:
            r += f"@{digest}"
        return r

    def opener(self) -> urllib.request.OpenerDirector:
        return no_proxy_opener(self.ca_file)

    def log_tail(self, lines: int = 40) -> str:
        try:
            with open(self.log_file, "r", errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
            _live.discard(proc)
        if self.token_server is not None and self._owns_token_server:
            self.token_server.stop()
            self._owns_token_server = False


def write_auth_file(path, registries) -> str:
    """Write a Docker-style ``config.json`` / containers ``auth.json`` with the
    credentials of every registry in ``registries`` that has some."""
    auths = {}
    for r in registries:
        if r.username is not None:
            token = base64.b64encode(f"{r.username}:{r.password}".encode()).decode()
            auths[r.host] = {"auth": token}
    Path(path).write_text(json.dumps({"auths": auths}, indent=2))
    return str(path)


def _wait_ready(reg: Registry, proc: subprocess.Popen, deadline: float) -> str | None:
    """Poll GET /v2/ until 200/401.  Returns None when ready, else a reason."""
    opener = no_proxy_opener(reg.ca_file)
    last_err = "no attempt"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"registry exited with status {proc.returncode}"
        try:
            with opener.open(f"{reg.url}/v2/", timeout=2) as resp:
                if resp.status == 200:
                    return None
                last_err = f"status {resp.status}"
        except urllib.error.HTTPError as e:
            if e.code == 401:
                return None
            last_err = f"status {e.code}"
        except (OSError, ssl.SSLError) as e:
            last_err = repr(e)
        time.sleep(0.05)
    return f"not ready before deadline (last: {last_err})"


_shared_ca: dict[str, CertificateAuthority] = {}


def session_ca(directory) -> CertificateAuthority:
    """One CA per process (per pytest session), created in ``directory`` on first use."""
    if "ca" not in _shared_ca:
        _shared_ca["ca"] = make_ca(Path(directory))
    return _shared_ca["ca"]


def start_registry(workdir, mode: str, *,
                   ca: CertificateAuthority | None = None,
                   tls: bool | None = None,
                   username: str = DEFAULT_USER,
                   password: str | None = None,
                   token_server: TokenServer | None = None,
                   allow_anonymous_pull: bool = False,
                   token_response_mode: str = "both",
                   token_expires_in: int = 300,
                   signing_key=None,
                   log_level: str = "info",
                   startup_timeout: float = 20.0,
                   attempts: int = 3) -> Registry:
    """Start a registry in ``mode`` (see module doc).  Raises RuntimeError with
    the tail of the registry log when it does not come up."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if not os.access(REGISTRY_BINARY, os.X_OK):
        raise RuntimeError(f"{REGISTRY_BINARY} not found (apt-get install docker-registry)")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix=f"registry-{mode}-", dir=workdir))
    storage = root / "storage"
    storage.mkdir()
    log_file = root / "registry.log"
    config_file = root / "config.yml"

    use_tls = (mode == "tls-basic") if tls is None else bool(tls)
    if mode == "tls-basic" and not use_tls:
        raise ValueError("tls-basic registries always use TLS")

    ca_file = cert_dir = None
    tls_cfg = None
    if use_tls:
        if ca is None:
            ca = session_ca(workdir / "session-ca")
        cert_dir_p = root / "certs.d"
        cert_dir_p.mkdir()
        shutil.copyfile(ca.cert_file, cert_dir_p / "ca.crt")
        cert_dir = str(cert_dir_p)
        ca_file = str(cert_dir_p / "ca.crt")
        crt, key = ca.issue_server_cert(root / "tls", "registry")
        tls_cfg = {"certificate": str(crt), "key": str(key)}

    user = pw = None
    auth_cfg = None
    owns_ts = False
    if mode == "tls-basic":
        user, pw = username, password or secrets.token_urlsafe(12)
        htpasswd_file = root / "htpasswd"
        htpasswd_bcrypt(htpasswd_file, user, pw)
        auth_cfg = {"htpasswd": {"realm": "aas-test-registry", "path": str(htpasswd_file)}}
    elif mode == "token":
        if token_server is None:
            pw = password or secrets.token_urlsafe(12)
            token_server = TokenServer(username, pw, allow_anonymous_pull=allow_anonymous_pull,
                                       response_mode=token_response_mode,
                                       expires_in=token_expires_in,
                                       signing_key=signing_key)
            owns_ts = True
        user, pw = token_server.username, token_server.password
        bundle = token_server.write_root_cert(root / "token-root.crt")
        auth_cfg = {"token": {"realm": token_server.url, "service": token_server.service,
                              "issuer": token_server.issuer, "rootcertbundle": bundle,
                              "autoredirect": False}}

    last_reason = ""
    try:
        for attempt in range(attempts):
            port = free_port()
            http_cfg = {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16),
                        "headers": {"X-Content-Type-Options": ["nosniff"]}}
            if tls_cfg:
                http_cfg["tls"] = tls_cfg
            config = {
                "version": "0.1",
                "log": {"level": log_level, "formatter": "text",
                        "fields": {"service": "registry"}, "accesslog": {"disabled": False}},
                "storage": {
                    "filesystem": {"rootdirectory": str(storage)},
                    "delete": {"enabled": True},
                    "cache": {"blobdescriptor": "inmemory"},
                    "maintenance": {"uploadpurging": {"enabled": False},
                                    "readonly": {"enabled": False}},
                    "redirect": {"disable": True},
                },
                "http": http_cfg,
                "health": {"storagedriver": {"enabled": False}},
                # Manifests naming non-distributable (foreign) layers by URL are refused by
                # default since distribution 2.7; a registry that serves such images allows them.
                "validation": {"manifests": {"urls": {"allow": ["^https?://"]}}},
            }
            if auth_cfg:
                config["auth"] = auth_cfg
            # JSON is valid YAML; it avoids quoting pitfalls.
            config_file.write_text(json.dumps(config, indent=2))

            reg = Registry(mode=mode, host=f"127.0.0.1:{port}",
                           scheme="https" if use_tls else "http",
                           ca_file=ca_file, cert_dir=cert_dir, username=user, password=pw,
                           storage_dir=str(storage), log_file=str(log_file),
                           config_file=str(config_file), root_dir=str(root),
                           token_server=token_server, _owns_token_server=owns_ts)
            with open(log_file, "ab") as logf:
                logf.write(f"--- attempt {attempt + 1}: {reg.url}\n".encode())
                logf.flush()
                proc = subprocess.Popen([REGISTRY_BINARY, "serve", str(config_file)],
                                        stdin=subprocess.DEVNULL, stdout=logf,
                                        stderr=subprocess.STDOUT, env=clean_env(),
                                        cwd=str(root), start_new_session=True,
                                        preexec_fn=_die_with_parent)
            _live.add(proc)
            reg._proc = proc
            reason = _wait_ready(reg, proc, time.monotonic() + startup_timeout)
            if reason is None:
                return reg
            # Stop this attempt but keep the token server for the next one.
            reg._owns_token_server = False
            reg.stop()
            last_reason = reason
            if "address already in use" not in reg.log_tail(10):
                break
        tail = Registry.log_tail(reg)
        raise RuntimeError(f"docker-registry ({mode}) failed to start: {last_reason}\n"
                           f"--- last lines of {log_file} ---\n{tail}")
    except BaseException:
        if owns_ts and token_server is not None:
            token_server.stop()
        raise
