"""Build OCI / Docker test images in memory and push their exact bytes.

No Docker involved: layers are deterministic gzip'ed tars holding one
pseudo-random file (same ``seed`` and ``size`` -> same blob, so layers can be
shared between images), configs and manifests are JSON serialised with a
non-canonical indentation (so any client that re-serialises a manifest
changes its digest and gets caught).

``push()`` speaks the registry HTTP API v2 with http.client (never a proxy):
blobs by POST + monolithic PUT (HEAD first to skip existing ones), child
manifests by digest, then the top manifest by tag.  Anonymous, Basic and
Bearer (token) auth are handled from the registry's ``WWW-Authenticate``
challenge.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import http.client
import io
import json
import random
import ssl
import tarfile
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
ALL_MANIFEST_TYPES = (OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST)
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"

# Pass as ``auth=ANONYMOUS`` to force anonymous access even with a Registry object.
ANONYMOUS = False


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def manifest_digest(data: bytes) -> str:
    """Digest of a manifest's exact bytes."""
    return sha256_digest(data)


def _dumps(obj) -> bytes:
    # indent=3, as docker does: deliberately not the canonical form.
    return json.dumps(obj, indent=3).encode()


# --------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------

class Layer(NamedTuple):
    """A compressed layer blob and its diff_id; unpacks as (blob, diff_id)."""

    blob: bytes
    diff_id: str

    @property
    def digest(self) -> str:
        return sha256_digest(self.blob)

    @property
    def size(self) -> int:
        return len(self.blob)


@functools.lru_cache(maxsize=64)
def make_layer(seed, size: int = 4096) -> Layer:
    """A gzip'ed tar with one file of ``size`` pseudo-random bytes derived from ``seed``.

    Deterministic: the same (seed, size) always gives the same blob.  Random
    bytes do not compress, so the blob is a little larger than ``size``
    (use size=20 * 1024 * 1024 for a ~20 MiB blob).
    """
    payload = random.Random(f"aas-test-layer:{seed}").randbytes(size)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo(name=f"data/file-{seed}.bin")
        info.size = len(payload)
        info.mode = 0o644
        info.mtime = 0
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        tar.addfile(info, io.BytesIO(payload))
    tar_bytes = raw.getvalue()
    blob = gzip.compress(tar_bytes, compresslevel=1, mtime=0)
    return Layer(blob=blob, diff_id=sha256_digest(tar_bytes))


def _as_layer(x) -> Layer:
    if isinstance(x, Layer):
        return x
    if isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], (bytes, bytearray)):
        return Layer(bytes(x[0]), x[1])
    if isinstance(x, tuple) and len(x) == 2:
        return make_layer(x[0], x[1])
    return make_layer(x)


# --------------------------------------------------------------------------
# Images and indexes
# --------------------------------------------------------------------------

@dataclass
class Image:
    """A single-platform image: config + layers + manifest (exact bytes)."""

    kind: str                      # "oci" | "docker"
    config: bytes
    config_digest: str
    config_media_type: str
    layers: list[Layer]
    layer_media_type: str
    manifest: bytes
    media_type: str
    platform: tuple                # (os, architecture, variant or None)

    @property
    def digest(self) -> str:
        return manifest_digest(self.manifest)

    @property
    def size(self) -> int:
        return len(self.manifest)

    @property
    def blobs(self) -> dict[str, bytes]:
        out = {self.config_digest: self.config}
        for layer in self.layers:
            out[layer.digest] = layer.blob
        return out

    @property
    def children(self) -> list:
        return []

    def manifests(self) -> dict[str, tuple[str, bytes]]:
        """Every manifest of this object: digest -> (media type, bytes)."""
        return {self.digest: (self.media_type, self.manifest)}

    def platform_dict(self) -> dict:
        os_, arch, variant = (tuple(self.platform) + (None, None, None))[:3]
        d = {"architecture": arch, "os": os_}
        if variant:
            d["variant"] = variant
        return d

    def descriptor(self) -> dict:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass
class Index:
    """An OCI image index or a Docker manifest list over ``children``."""

    kind: str                      # "oci" | "docker"
    manifest: bytes
    media_type: str
    children: list = field(default_factory=list)

    @property
    def digest(self) -> str:
        return manifest_digest(self.manifest)

    @property
    def size(self) -> int:
        return len(self.manifest)

    @property
    def blobs(self) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for c in self.children:
            out.update(c.blobs)
        return out

    def manifests(self) -> dict[str, tuple[str, bytes]]:
        out: dict[str, tuple[str, bytes]] = {}
        for c in self.children:
            out.update(c.manifests())
        out[self.digest] = (self.media_type, self.manifest)
        return out

    def descriptor(self) -> dict:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}

    def child_for(self, os_: str, arch: str, variant: str | None = None) -> Image:
        """The child Image for a platform (variant None matches any variant)."""
        for c in self.children:
            if not isinstance(c, Image):
                continue
            c_os, c_arch, c_variant = (tuple(c.platform) + (None, None, None))[:3]
            if (c_os, c_arch) == (os_, arch) and (variant is None or c_variant == variant):
                return c
        raise KeyError(f"no child for {os_}/{arch}/{variant}")


def _image(kind: str, layers, platform, labels, config_media_type, layer_media_type,
           manifest_media_type, annotations) -> Image:
    layers = [_as_layer(x) for x in layers]
    os_, arch, variant = (tuple(platform) + (None, None, None))[:3]
    cfg = {
        "architecture": arch,
        "os": os_,
        "created": "1970-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["/bin/true"], "Labels": dict(labels or {})},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": f"aas-test layer {i}"}
                    for i in range(len(layers))],
    }
    if variant:
        cfg["variant"] = variant
    config = _dumps(cfg)
    manifest = {
        "schemaVersion": 2,
        "mediaType": manifest_media_type,
        "config": {"mediaType": config_media_type, "digest": sha256_digest(config),
                   "size": len(config)},
        "layers": [{"mediaType": layer_media_type, "digest": layer.digest, "size": layer.size}
                   for layer in layers],
    }
    if annotations:
        manifest["annotations"] = dict(annotations)
    return Image(kind=kind, config=config, config_digest=sha256_digest(config),
                 config_media_type=config_media_type, layers=layers,
                 layer_media_type=layer_media_type, manifest=_dumps(manifest),
                 media_type=manifest_media_type, platform=(os_, arch, variant))


def oci_image(layers, platform=("linux", "amd64", None), *, labels=None, annotations=None) -> Image:
    """OCI image manifest.  ``layers``: Layer objects, (seed, size) pairs or seeds.
    ``labels`` go into the config, so images with equal layers can still differ."""
    return _image("oci", layers, platform, labels, OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST,
                  annotations)


def docker_image(layers, platform=("linux", "amd64", None), *, labels=None) -> Image:
    """Docker schema 2 image manifest (same arguments as :func:`oci_image`)."""
    return _image("docker", layers, platform, labels, DOCKER_CONFIG, DOCKER_LAYER_GZIP,
                  DOCKER_MANIFEST, None)


def _child_entry(c) -> dict:
    d = c.descriptor()
    if isinstance(c, Image):
        d["platform"] = c.platform_dict()
    return d


def oci_index(images, *, annotations=None) -> Index:
    """OCI image index over ``images`` (platform set per Image child)."""
    body = {"schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [_child_entry(c) for c in images]}
    if annotations:
        body["annotations"] = dict(annotations)
    return Index(kind="oci", manifest=_dumps(body), media_type=OCI_INDEX, children=list(images))


def docker_manifest_list(images) -> Index:
    """Docker manifest list over ``images`` (platform set per child)."""
    body = {"schemaVersion": 2, "mediaType": DOCKER_LIST,
            "manifests": [_child_entry(c) for c in images]}
    return Index(kind="docker", manifest=_dumps(body), media_type=DOCKER_LIST,
                 children=list(images))


def multiarch(kind: str = "oci", seed="multi", layer_size: int = 4096, shared_base=None):
    """Convenience: an index (``kind`` "oci") or manifest list ("docker") with
    linux/amd64 and linux/arm64/v8 children.  ``shared_base`` (a Layer or seed)
    is put first in both children."""
    build = oci_image if kind == "oci" else docker_image
    base = [_as_layer(shared_base)] if shared_base is not None else []
    amd = build(base + [make_layer(f"{seed}-amd64", layer_size)], ("linux", "amd64", None))
    arm = build(base + [make_layer(f"{seed}-arm64", layer_size)], ("linux", "arm64", "v8"))
    return oci_index([amd, arm]) if kind == "oci" else docker_manifest_list([amd, arm])


# --------------------------------------------------------------------------
# Registry client
# --------------------------------------------------------------------------

class RegistryError(RuntimeError):
    def __init__(self, msg: str, status: int | None = None, body: bytes = b""):
        super().__init__(msg)
        self.status = status
        self.body = body


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str, default=None):
        return self.headers.get(name, default)


def _parse_challenge(value: str):
    """'Bearer realm="x",service="y",scope="z"' -> ("bearer", {...})."""
    scheme, _, rest = value.strip().partition(" ")
    params = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " ,":
            i += 1
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq].strip().lower()
        i = eq + 1
        if i < n and rest[i] == '"':
            i += 1
            val = []
            while i < n and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < n:
                    i += 1
                val.append(rest[i])
                i += 1
            i += 1
            params[key] = "".join(val)
        else:
            end = rest.find(",", i)
            end = n if end < 0 else end
            params[key] = rest[i:end].strip()
            i = end
    return scheme.lower(), params


class RegistryClient:
    """Minimal registry API v2 client with Basic / Bearer auth.

    ``registry``: a harness Registry (its url, ca_file and credentials are
    used), an URL ("http://127.0.0.1:5000"), or "host:port" (HTTPS when
    ``ca_file`` is given, else HTTP).  ``auth``: (user, password), None
    (the Registry object's credentials if any, else anonymous) or ANONYMOUS.
    """

    def __init__(self, registry, auth=None, ca_file: str | None = None, timeout: float = 60.0):
        if hasattr(registry, "url"):
            base = registry.url
            ca_file = ca_file or getattr(registry, "ca_file", None)
            if auth is None:
                auth = getattr(registry, "auth", None)
        else:
            base = str(registry)
            if "://" not in base:
                base = ("https://" if ca_file else "http://") + base
        self.base = base.rstrip("/")
        u = urllib.parse.urlsplit(self.base)
        self.scheme, self.netloc = u.scheme, u.netloc
        self.auth = auth or None
        self.timeout = timeout
        self.ssl_context = ssl.create_default_context(cafile=ca_file) if ca_file else \
            ssl.create_default_context()
        self._authorization: str | None = None
        self.token_fetches = 0

    # -- plumbing ---------------------------------------------------------
    def _raw(self, method: str, url: str, body: bytes | None, headers: dict) -> Response:
        u = urllib.parse.urlsplit(url)
        if u.scheme == "https":
            conn = http.client.HTTPSConnection(u.netloc, timeout=self.timeout,
                                               context=self.ssl_context)
        else:
            conn = http.client.HTTPConnection(u.netloc, timeout=self.timeout)
        try:
            target = u.path or "/"
            if u.query:
                target += "?" + u.query
            conn.request(method, target, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            return Response(resp.status, resp.headers, data)
        finally:
            conn.close()

    def _basic(self) -> str:
        user, pw = self.auth
        return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()

    def _fetch_token(self, params: dict) -> str:
        realm = params.get("realm")
        if not realm:
            raise RegistryError("Bearer challenge without realm")
        q = []
        if params.get("service"):
            q.append(("service", params["service"]))
        for s in (params.get("scope") or "").split(" "):
            if s:
                q.append(("scope", s))
        url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(q)
        headers = {"Authorization": self._basic()} if self.auth else {}
        self.token_fetches += 1
        r = self._raw("GET", url, None, headers)
        if r.status != 200:
            raise RegistryError(f"token request to {realm} failed: {r.status} {r.body[:200]!r}",
                                r.status, r.body)
        doc = json.loads(r.body)
        tok = doc.get("token") or doc.get("access_token")
        if not tok:
            raise RegistryError("token response without token/access_token")
        return tok

    def request(self, method: str, path_or_url: str, body: bytes | None = None,
                headers: dict | None = None) -> Response:
        """Send a request, answering one auth challenge if the registry asks."""
        url = path_or_url if "://" in path_or_url else self.base + path_or_url
        hdrs = dict(headers or {})
        if self._authorization:
            hdrs["Authorization"] = self._authorization
        r = self._raw(method, url, body, hdrs)
        if r.status != 401:
            return r
        challenge = r.header("WWW-Authenticate")
        if not challenge:
            return r
        scheme, params = _parse_challenge(challenge)
        if scheme == "basic":
            if not self.auth:
                return r
            self._authorization = self._basic()
        elif scheme == "bearer":
            try:
                self._authorization = "Bearer " + self._fetch_token(params)
            except RegistryError as e:
                if e.status in (401, 403):
                    return r
                raise
        else:
            return r
        hdrs["Authorization"] = self._authorization
        return self._raw(method, url, body, hdrs)

    def _check(self, r: Response, what: str, ok=(200, 201, 202, 204)) -> Response:
        if r.status not in ok:
            raise RegistryError(f"{what}: HTTP {r.status}: {r.body[:300]!r}", r.status, r.body)
        return r

    # -- API ----------------------------------------------------------------
    def ping(self) -> int:
        return self.request("GET", "/v2/").status

    def blob_exists(self, repo: str, digest: str) -> bool:
        return self.request("HEAD", f"/v2/{repo}/blobs/{digest}").status == 200

    def push_blob(self, repo: str, data: bytes, digest: str | None = None) -> str:
        digest = digest or sha256_digest(data)
        if self.blob_exists(repo, digest):
            return digest
        r = self._check(self.request("POST", f"/v2/{repo}/blobs/uploads/",
                                     body=b"", headers={"Content-Length": "0"}),
                        f"start upload to {repo}", ok=(202,))
        loc = r.header("Location")
        if not loc:
            raise RegistryError("upload start without Location")
        loc = urllib.parse.urljoin(self.base + "/", loc)
        loc += ("&" if "?" in loc else "?") + urllib.parse.urlencode({"digest": digest})
        self._check(self.request("PUT", loc, body=data,
                                 headers={"Content-Type": "application/octet-stream",
                                          "Content-Length": str(len(data))}),
                    f"upload {digest} to {repo}", ok=(201,))
        return digest

    def push_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        r = self._check(self.request("PUT", f"/v2/{repo}/manifests/{ref}", body=data,
                                     headers={"Content-Type": media_type,
                                              "Content-Length": str(len(data))}),
                        f"put manifest {repo}:{ref}", ok=(201,))
        digest = manifest_digest(data)
        got = r.header("Docker-Content-Digest")
        if got and got != digest:
            raise RegistryError(f"registry computed {got}, expected {digest}")
        return digest

    def get_manifest(self, repo: str, ref: str, accept=ALL_MANIFEST_TYPES) -> Response:
        return self._check(self.request("GET", f"/v2/{repo}/manifests/{ref}",
                                        headers={"Accept": ", ".join(accept)}),
                           f"get manifest {repo}:{ref}", ok=(200,))

    def manifest_exists(self, repo: str, ref: str) -> bool:
        return self.request("HEAD", f"/v2/{repo}/manifests/{ref}",
                            headers={"Accept": ", ".join(ALL_MANIFEST_TYPES)}).status == 200

    def get_blob(self, repo: str, digest: str) -> bytes:
        return self._check(self.request("GET", f"/v2/{repo}/blobs/{digest}"),
                           f"get blob {digest}", ok=(200,)).body

    def list_tags(self, repo: str) -> list[str]:
        r = self._check(self.request("GET", f"/v2/{repo}/tags/list"), f"tags of {repo}", ok=(200,))
        return json.loads(r.body).get("tags") or []

    def delete_manifest(self, repo: str, digest: str) -> None:
        self._check(self.request("DELETE", f"/v2/{repo}/manifests/{digest}"),
                    f"delete {repo}@{digest}", ok=(202,))

    def push(self, repo: str, tag: str | None, obj) -> str:
        """Push ``obj`` (Image or Index): blobs, child manifests by digest, then the
        top manifest by ``tag`` (or by digest when tag is None).  Returns its digest."""
        for digest, data in obj.blobs.items():
            self.push_blob(repo, data, digest)
        for digest, (mt, data) in obj.manifests().items():
            if digest != obj.digest:
                self.push_manifest(repo, digest, data, mt)
        return self.push_manifest(repo, tag or obj.digest, obj.manifest, obj.media_type)


def push(registry, repo: str, tag: str | None, obj, auth=None, ca_file: str | None = None) -> str:
    """Push ``obj`` to ``registry`` (see :class:`RegistryClient`); returns the top digest."""
    return RegistryClient(registry, auth=auth, ca_file=ca_file).push(repo, tag, obj)


def fetch_manifest(registry, repo: str, ref: str, auth=None, ca_file: str | None = None) -> bytes:
    """The exact manifest bytes the registry serves for ``repo:ref``."""
    return RegistryClient(registry, auth=auth, ca_file=ca_file).get_manifest(repo, ref).body


# --------------------------------------------------------------------------
# OCI image layout
# --------------------------------------------------------------------------

def _write_blob(root: Path, digest: str, data: bytes) -> None:
    algo, hexd = digest.split(":", 1)
    p = root / "blobs" / algo / hexd
    if not p.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def write_oci_layout(directory, items) -> Path:
    """Write an OCI image layout holding ``items`` (dict tag -> obj, or an
    iterable of (tag, obj); tag None = untagged).  Usable as
    ``skopeo copy oci:DIR:TAG ...`` -- skopeo 1.9 only resolves tags whose
    top-level descriptor has an OCI media type, so put Docker-typed
    objects in a layout only to test other consumers."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    pairs = list(items.items()) if isinstance(items, dict) else list(items)
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    entries = []
    for tag, obj in pairs:
        for digest, data in obj.blobs.items():
            _write_blob(root, digest, data)
        for digest, (_mt, data) in obj.manifests().items():
            _write_blob(root, digest, data)
        d = obj.descriptor()
        if tag:
            d["annotations"] = {REF_NAME_ANNOTATION: tag}
        entries.append(d)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    (root / "index.json").write_text(json.dumps(index, indent=2))
    return root


# --------------------------------------------------------------------------
# docker save archives
# --------------------------------------------------------------------------

OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def _docker_full_name(tag: str) -> str:
    """Docker's normalisation: "busybox" -> "docker.io/library/busybox:latest"."""
    first, _, rest = tag.partition("/")
    if not rest or not ("." in first or ":" in first or first == "localhost"):
        tag = "docker.io/" + (tag if rest else "library/" + tag)
    return tag if ":" in tag.rsplit("/", 1)[1] else tag + ":latest"


def write_docker_archive(path, image: Image, repo_tags, layout: str = "classic") -> dict:
    """Write ``image`` as a ``docker save`` tar at ``path``; returns {"path": Path}
    (and "manifest_digest", the archive's own manifest, for layout="oci").

    ``layout="classic"``: manifest.json [{Config, RepoTags, Layers}], the config
    as ``<hex>.json`` and each layer, gunzipped, as ``<n>/layer.tar`` (so its
    digest is the config's diff_id).  ``layout="oci"`` (Docker 25+): the same
    uncompressed layers and the config under blobs/sha256/, an OCI manifest over
    them, oci-layout, index.json with one entry per tag (annotations
    io.containerd.image.name = the full name, org.opencontainers.image.ref.name =
    the tag) and a manifest.json whose paths point into blobs/sha256/.
    Deterministic: same arguments, same bytes."""
    path = Path(path)
    tags = [repo_tags] if isinstance(repo_tags, str) else list(repo_tags)
    layer_tars = [gzip.decompress(layer.blob) for layer in image.layers]
    members: list[tuple[str, bytes]] = []
    out = {"path": path}
    if layout == "classic":
        config_name = image.config_digest.split(":", 1)[1] + ".json"
        layer_names = [f"{n}/layer.tar" for n in range(len(layer_tars))]
        members.append((config_name, image.config))
        members.extend(zip(layer_names, layer_tars))
    elif layout == "oci":
        blob = lambda data: "blobs/sha256/" + hashlib.sha256(data).hexdigest()  # noqa: E731
        config_name = blob(image.config)
        layer_names = [blob(t) for t in layer_tars]
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": image.config_digest, "size": len(image.config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": sha256_digest(t), "size": len(t)} for t in layer_tars],
        }, separators=(",", ":")).encode()
        entries = [{"mediaType": OCI_MANIFEST, "digest": manifest_digest(manifest), "size": len(manifest),
                    "annotations": {"io.containerd.image.name": _docker_full_name(tag),
                                    REF_NAME_ANNOTATION: _docker_full_name(tag).rsplit(":", 1)[1]}}
                   for tag in tags]
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries},
                           separators=(",", ":")).encode()
        members.append(("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'))
        members.append(("index.json", index))
        members.append((blob(manifest), manifest))
        members.append((config_name, image.config))
        members.extend(zip(layer_names, layer_tars))
        out["manifest_digest"] = manifest_digest(manifest)
    else:
        raise ValueError(f"layout must be 'classic' or 'oci', not {layout!r}")
    save = [{"Config": config_name, "RepoTags": tags, "Layers": layer_names}]
    members.append(("manifest.json", json.dumps(save, separators=(",", ":")).encode()))

    path.parent.mkdir(parents=True, exist_ok=True)
    seen = set()
    with tarfile.open(path, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            if name in seen:  # a layer shared twice in one image
                continue
            seen.add(name)
            info = tarfile.TarInfo(name=name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return out


def read_oci_blob(directory, digest: str) -> bytes:
    algo, hexd = digest.split(":", 1)
    return (Path(directory) / "blobs" / algo / hexd).read_bytes()


def read_oci_index(directory) -> dict:
    return json.loads((Path(directory) / "index.json").read_text())


def verify_oci_layout(directory) -> list[str]:
    """Check every blob's name matches its content; returns the list of problems."""
    problems = []
    blobs = Path(directory) / "blobs"
    for algo_dir in sorted(blobs.iterdir()) if blobs.is_dir() else []:
        for p in sorted(algo_dir.iterdir()):
            h = hashlib.new(algo_dir.name)
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            if h.hexdigest() != p.name:
                problems.append(f"{algo_dir.name}:{p.name} has digest {h.hexdigest()}")
    return problems

