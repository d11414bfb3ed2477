"""Run skopeo against the harness registries with the right flags.

Each :class:`Skopeo` owns a private policy.json (insecureAcceptAnything),
an empty registries.conf, an empty auth file and a tmpdir, so the host's
/etc/containers and ~/.docker never influence a test.  Per registry:

  plain / token (HTTP)  --tls-verify=false          (skopeo then uses HTTP)
  TLS                   --tls-verify=true --cert-dir DIR   (DIR holds only ca.crt)
  credentials           --creds user:password, otherwise --no-creds

(with the ``src-`` / ``dest-`` prefixes for ``copy``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from .images import manifest_digest
from .registry import clean_env

SKOPEO = shutil.which("skopeo") or "/usr/bin/skopeo"


def docker_ref(registry, repo: str, tag: str | None = None, digest: str | None = None) -> str:
    """``docker://127.0.0.1:PORT/repo[:tag][@digest]``."""
    r = f"docker://{registry.host}/{repo}"
    if tag:
        r += f":{tag}"
    if digest:
        r += f"@{digest}"
    return r


def registry_flags(registry, prefix: str = "", anonymous: bool = False) -> list[str]:
    """TLS and credential flags for ``registry``; prefix is "", "src-" or "dest-"."""
    if registry is None:
        return []
    flags = []
    if getattr(registry, "tls", False):
        flags.append(f"--{prefix}tls-verify=true")
        if getattr(registry, "cert_dir", None):
            flags += [f"--{prefix}cert-dir", registry.cert_dir]
    else:
        flags.append(f"--{prefix}tls-verify=false")
    if getattr(registry, "username", None) and not anonymous:
        flags += [f"--{prefix}creds", f"{registry.username}:{registry.password}"]
    else:
        flags.append(f"--{prefix}no-creds")
    return flags


class SkopeoError(RuntimeError):
    pass


class Skopeo:
    def __init__(self, workdir, command_timeout: int = 90):
        self.dir = Path(workdir) / "skopeo"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.policy = self.dir / "policy.json"
        self.policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
        self.registries_conf = self.dir / "registries.conf"
        self.registries_conf.write_text("unqualified-search-registries = []\n")
        self.registries_d = self.dir / "registries.d"
        self.registries_d.mkdir(exist_ok=True)
        self.auth_file = self.dir / "auth.json"
        self.auth_file.write_text('{"auths": {}}\n')
        self.tmpdir = self.dir / "tmp"
        self.tmpdir.mkdir(exist_ok=True)
        self.command_timeout = command_timeout
        self.history: list[list[str]] = []

    def env(self) -> dict:
        return clean_env({"CONTAINERS_REGISTRIES_CONF": str(self.registries_conf),
                          "REGISTRY_AUTH_FILE": str(self.auth_file),
                          "TMPDIR": str(self.tmpdir)})

    def run(self, *args: str, check: bool = True, timeout: float | None = None) -> subprocess.CompletedProcess:
        """Run ``skopeo <global flags> args...``; stdout is bytes, stderr text."""
        cmd = [SKOPEO, "--policy", str(self.policy), "--registries.d", str(self.registries_d),
               "--tmpdir", str(self.tmpdir), "--command-timeout", f"{self.command_timeout}s",
               *args]
        self.history.append(cmd)
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, env=self.env(),
                           timeout=timeout or self.command_timeout + 30)
        p.stderr = p.stderr.decode("utf-8", "replace")
        if check and p.returncode != 0:
            raise SkopeoError(f"skopeo {' '.join(args)} failed ({p.returncode}):\n{p.stderr}")
        return p

    def copy(self, src: str, dst: str, src_registry=None, dst_registry=None, *,
             all: bool = True, preserve_digests: bool = True, extra=(), check: bool = True,
             src_anonymous: bool = False, dst_anonymous: bool = False) -> subprocess.CompletedProcess:
        args = ["copy"]
        if all:
            args.append("--all")
        if preserve_digests:
            args.append("--preserve-digests")
        args += registry_flags(src_registry, "src-", src_anonymous)
        args += registry_flags(dst_registry, "dest-", dst_anonymous)
        args += list(extra)
        args += [src, dst]
        return self.run(*args, check=check)

    def inspect_raw(self, ref: str, registry=None, *, anonymous: bool = False) -> bytes:
        """The raw manifest bytes of ``ref`` (``docker://...`` or ``oci:DIR:TAG``)."""
        return self.run("inspect", "--raw", *registry_flags(registry, "", anonymous), ref).stdout

    def digest(self, ref: str, registry=None, *, anonymous: bool = False) -> str:
        return manifest_digest(self.inspect_raw(ref, registry, anonymous=anonymous))

    def inspect(self, ref: str, registry=None, *, anonymous: bool = False, extra=()) -> dict:
        out = self.run("inspect", *registry_flags(registry, "", anonymous), *extra, ref).stdout
        return json.loads(out)

    def list_tags(self, ref: str, registry=None) -> list[str]:
        out = self.run("list-tags", *registry_flags(registry), ref).stdout
        return json.loads(out).get("Tags") or []
