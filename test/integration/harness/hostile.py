"""Hostile bundles, crafted in Python from a real bundle that aas-bundle packed.

A test module packs one small bundle (``pack_small``) and reads it back as a
``Crafted``: its tar entries, in archive order, and its bundle.json as a dict. A case
then adds, removes or replaces entries (any tar type: symlinks, hard links, devices,
FIFOs, duplicates, names with ``..`` or absolute ones, setuid modes, headers whose size
lies), edits bundle.json (or substitutes raw JSON text into it, for nesting bombs), and
writes the result signed by a given key (``sign=`` the trusted key, another key, or None
for an unsigned bundle), plain or zstd-compressed, with anything after the end-of-archive
marker.

The signature is what aas-bundle writes (docs/bundle-format.md, src/signing/): the 64-byte
raw Ed25519 signature of the exact bytes of bundle.json, in the entry bundle.json.sig
right after it; bundle.json's ``signer`` is ``sha256:`` + the sha256 of the public key's
DER, as ``aas-bundle keygen`` prints. ``openssl pkeyutl -sign -rawin`` gives the same
bytes (Ed25519 is deterministic; test_hostile_bundles checks it).

bundle.json lists every entry but itself and its signature in ``files`` (path, type,
mode, size and sha256 for a file; path, type, mode for a folder; path, type, target for
a symlink) and the blobs in ``blobs``; ``add(..., listed=True)`` lists an added entry the
way pack would, so that a re-signed crafted bundle is consistent and the only thing
wrong with it is the hostile part.

Also here: zstd frames written by hand (``zstd_rle_frame``: gigabytes of zeros in a few
bytes per 128 KiB), tree checksums for canary folders, and a runner of the binary that
does not need pytest's function-scoped fixtures.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import stat
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from harness import bundles, images
from harness.registry import clean_env

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BLOCK = 512
# sha256 of 2 GiB of zero bytes (hashlib over 128 x 16 MiB of zeros): the bomb's listing.
SHA256_2GIB_ZEROS = "sha256:a7c744c13cc101ed66c29f672f92455547889cc586ce6d44fe76ae824958ea51"
TWO_GIB = 2 << 30


# ---- running the binary ----------------------------------------------------------------

class Runner:
    """Runs aas-bundle like conftest's ``run_aas`` (no proxy variables, HOME an empty
    folder of its own), usable from module-scoped fixtures."""

    def __init__(self, binary: Path, home: Path):
        self.binary = Path(binary)
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)

    def env(self, extra: dict | None = None) -> dict:
        e = clean_env({"HOME": str(self.home)})
        e.pop("DOCKER_CONFIG", None)
        e.pop("REGISTRY_AUTH_FILE", None)
        if extra:
            e.update(extra)
        return e

    def __call__(self, *args, input=None, timeout=120, env=None, cwd=None, wrapper=()):
        """``wrapper`` is put before the binary (e.g. ["sh", "-c", SCRIPT, "sh"])."""
        return subprocess.run([*wrapper, str(self.binary), *map(str, args)], input=input, capture_output=True,
                              text=True, errors="replace", timeout=timeout, env=self.env(env),
                              cwd=str(cwd or self.home))


# ---- keys --------------------------------------------------------------------------------

@dataclass
class Key:
    """A key pair from ``aas-bundle keygen --out BASE``: BASE.key and BASE.pub."""
    base: Path

    @property
    def pub(self) -> Path:
        return Path(f"{self.base}.pub")

    @property
    def private(self) -> Path:
        return Path(f"{self.base}.key")

    def fingerprint(self) -> str:
        pub = serialization.load_pem_public_key(self.pub.read_bytes())
        der = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return "sha256:" + hashlib.sha256(der).hexdigest()

    def sign(self, data: bytes) -> bytes:
        key = serialization.load_pem_private_key(self.private.read_bytes(), password=None)
        return key.sign(data)


def keygen(run: Runner, base: Path) -> Key:
    p = run("keygen", "--out", base)
    assert p.returncode == 0, p.stderr
    return Key(Path(base))


# ---- packing the base bundle -----------------------------------------------------------------

SOURCE_DATE_EPOCH = "1700000000"

CHART_YAML = "apiVersion: v2\nname: web\nversion: 0.1.0\nappVersion: \"1.0\"\n"
CHART_VALUES = "image:\n  repository: shop/web\n  tag: \"1.0\"\nreplicas: 1\n"
CHART_TEMPLATE = ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n"
                  "  replicas: {{ .Values.replicas }}\n  template:\n    spec:\n      containers:\n"
                  "        - name: web\n          image: \"{{ .Values.image.repository }}:{{ .Values.image.tag }}\"\n")


def write_project(root: Path, layout: Path, *, chart_dir="charts/web", values_file="environments/prod/web-values.yaml",
                  release="web", namespace="shop", version="1.0.0", name="demo", plain_file="plain/app.yaml") -> Path:
    """A k8s folder with a plain manifest (image shop/a:1.0) and one chart release (image
    shop/web:1.0, overridden in a values file), both images read from the OCI layout
    ``layout`` (tags a and web); returns the bundle manifest's path."""
    root = Path(root)
    k8s = root / "k8s"
    (k8s / plain_file).parent.mkdir(parents=True, exist_ok=True)
    (k8s / plain_file).write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n"
        "      containers:\n        - name: a\n          image: shop/a:1.0\n")
    (k8s / "README.txt").write_text("shipped as is\n")
    chart = k8s / chart_dir
    (chart / "templates").mkdir(parents=True, exist_ok=True)
    (chart / "Chart.yaml").write_text(CHART_YAML)
    (chart / "values.yaml").write_text(CHART_VALUES)
    (chart / "templates" / "deploy.yaml").write_text(CHART_TEMPLATE)
    vf = k8s / values_file
    vf.parent.mkdir(parents=True, exist_ok=True)
    vf.write_text("replicas: 2\n")
    manifest = root / "bundle.yaml"
    manifest.write_text("\n".join([
        "apiVersion: aas-bundle/v1", "kind: Bundle", f"name: {json.dumps(name)}", f"version: {json.dumps(version)}",
        "k8s: k8s", f"manifests: [{json.dumps(plain_file)}]", "releases:",
        f"  - name: {json.dumps(release)}", f"    chart: {json.dumps(chart_dir)}",
        f"    namespace: {json.dumps(namespace)}", f"    values: [{json.dumps(values_file)}]",
        "images:",
        "  - ref: shop/a:1.0", f"    from: oci:{layout}:a",
        "  - ref: shop/web:1.0", f"    from: oci:{layout}:web",
    ]) + "\n")
    return manifest


def write_layout(path: Path, seed: str = "hb", base_size: int = 4_000) -> Path:
    """An OCI layout with two small images, tags ``a`` and ``web`` (sharing a base layer
    of ``base_size`` bytes)."""
    base = images.make_layer(f"{seed}-base", base_size)
    a = images.oci_image([base, images.make_layer(f"{seed}-a", 2_000)])
    web = images.oci_image([base, images.make_layer(f"{seed}-web", 1_500)])
    images.write_oci_layout(path, {"a": a, "web": web})
    return path


def pack_small(run: Runner, root: Path, key: Key | None, *, name="b.tar", extra_args=(), **project) -> Path:
    """Packs a small bundle (two images, a plain manifest, a chart release) from an OCI
    layout, with SOURCE_DATE_EPOCH set; signed by ``key`` (None: --unsigned)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    layout = root / "layout"
    if not layout.exists():
        write_layout(layout)
    manifest = write_project(root / "proj", layout, **project)
    out = root / name
    args = ["pack", "-f", manifest, "-o", out, "--cache", root / "cache", "-q", *extra_args]
    args += ["--key", key.private] if key else ["--unsigned"]
    p = run(*args, env={"SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH}, cwd=root, timeout=180)
    assert p.returncode == 0, f"pack failed ({p.returncode}):\n{p.stderr}"
    return out


# ---- tar entries -----------------------------------------------------------------------------

@dataclass
class Entry:
    """A tar entry: its header (``info``) and its data. ``declared_size`` writes another
    size in the header than the data's (a header that lies); ``raw`` replaces the
    whole header with these bytes (a hand-made header)."""
    info: tarfile.TarInfo
    data: bytes | None = None
    declared_size: int | None = None
    raw_header: bytes | None = None

    @property
    def name(self) -> str:
        return self.info.name

    def header_bytes(self) -> bytes:
        if self.raw_header is not None:
            return self.raw_header
        ti = copy.copy(self.info)
        ti.size = len(self.data or b"") if self.declared_size is None else self.declared_size
        if not (ti.isreg()):
            ti.size = 0 if self.declared_size is None else self.declared_size
        return ti.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape")

    def to_bytes(self) -> bytes:
        data = self.data or b""
        return self.header_bytes() + data + b"\0" * (-len(data) % BLOCK)


def _ti(name: str, type_, mode: int, mtime: int = int(SOURCE_DATE_EPOCH)) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = type_
    ti.mode = mode
    ti.mtime = mtime
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    return ti


def file(name: str, data: bytes = b"", mode: int = 0o644) -> Entry:
    ti = _ti(name, tarfile.REGTYPE, mode)
    ti.size = len(data)
    return Entry(ti, data)


def folder(name: str, mode: int = 0o755) -> Entry:
    return Entry(_ti(name, tarfile.DIRTYPE, mode))


def symlink(name: str, target: str) -> Entry:
    ti = _ti(name, tarfile.SYMTYPE, 0o777)
    ti.linkname = target
    return Entry(ti)


def hardlink(name: str, target: str) -> Entry:
    ti = _ti(name, tarfile.LNKTYPE, 0o644)
    ti.linkname = target
    return Entry(ti)


def device(name: str, kind: str = "char", major: int = 1, minor: int = 3) -> Entry:
    ti = _ti(name, tarfile.CHRTYPE if kind == "char" else tarfile.BLKTYPE, 0o666)
    ti.devmajor, ti.devminor = major, minor
    return Entry(ti)


def fifo(name: str) -> Entry:
    return Entry(_ti(name, tarfile.FIFOTYPE, 0o644))


def gnu_huge_header(name: str, size: int, mode: int = 0o644) -> bytes:
    """A ustar header whose size field holds ``size`` in GNU base-256 (any size at all)."""
    ti = _ti(name, tarfile.REGTYPE, mode)
    ti.size = 0
    h = bytearray(ti.tobuf(format=tarfile.GNU_FORMAT))
    field_ = bytearray(12)
    field_[0] = 0x80
    field_[1:] = size.to_bytes(11, "big")
    h[124:136] = field_
    h[148:156] = b"        "
    chk = sum(h[:BLOCK])
    h[148:156] = f"{chk:06o}\0 ".encode()
    return bytes(h)


# ---- the crafted bundle ---------------------------------------------------------------------

def _listing(e: Entry) -> dict | None:
    """bundle.json's ``files`` record of ``e`` as pack writes it (None for a type the
    format has no record for: it is listed as an empty file instead)."""
    ti = e.info
    if ti.isdir():
        return {"path": ti.name, "type": "dir", "mode": f"{ti.mode & 0o7777:04o}"}
    if ti.issym():
        return {"path": ti.name, "type": "symlink", "target": ti.linkname}
    data = e.data if ti.isreg() else b""
    return {"path": ti.name, "type": "file", "mode": f"{ti.mode & 0o7777:04o}", "size": len(data or b""),
            "sha256": "sha256:" + hashlib.sha256(data or b"").hexdigest()}


def decompress(data: bytes) -> bytes:
    if data[:4] == ZSTD_MAGIC:
        return subprocess.run(["zstd", "-dc"], input=data, capture_output=True, check=True).stdout
    return data


def zstd_compress(data: bytes, level: int = 3) -> bytes:
    return subprocess.run(["zstd", "-q", f"-{level}", "-c"], input=data, capture_output=True, check=True).stdout


def zstd_rle_frame(n: int, byte: int = 0) -> bytes:
    """A zstd frame of ``n`` bytes equal to ``byte``, made of RLE blocks (4 bytes per
    128 KiB): 2 GiB of zeros is a 64 KiB frame. No content size, no checksum, a 128 KiB
    window."""
    out = bytearray(ZSTD_MAGIC)
    out += bytes([0x00, (17 - 10) << 3])  # frame header: no FCS, no checksum; window 2^17
    block = 128 << 10
    left = n
    while True:
        size = min(left, block)
        left -= size
        last = 1 if left == 0 else 0
        hdr = last | (1 << 1) | (size << 3)  # block type 1 = RLE
        out += hdr.to_bytes(3, "little") + bytes([byte])
        if last:
            return bytes(out)


class Crafted:
    """A bundle as entries and a bundle.json, to alter and write back.

    ``entries`` excludes bundle.json and bundle.json.sig, which ``build`` writes first
    (signed or not, as asked). ``doc`` is bundle.json parsed (key order kept)."""

    def __init__(self, entries: list[Entry], doc: dict, doc_bytes: bytes, compressed: bool):
        self.entries = entries
        self.doc = doc
        self.original_doc_bytes = doc_bytes
        self.compressed = compressed
        self.raw: dict[str, str] = {}  # JSON text substituted for '"KEY"' in bundle.json
        self.doc_bytes_override: bytes | None = None
        self.extra_first: list[Entry] = []  # entries put before bundle.json's

    @classmethod
    def read(cls, path: Path) -> "Crafted":
        data = bundles.whole_bytes(path)
        compressed = data[:4] == ZSTD_MAGIC
        tar = decompress(data)
        entries, doc_bytes = [], None
        with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as t:
            for m in t.getmembers():
                content = t.extractfile(m).read() if m.isreg() else None
                if m.name == "bundle.json":
                    doc_bytes = content
                    continue
                if m.name == "bundle.json.sig":
                    continue
                m.pax_headers = {}
                entries.append(Entry(m, content))
        assert doc_bytes is not None, f"{path}: no bundle.json"
        doc = json.loads(doc_bytes)
        return cls(entries, doc, doc_bytes, compressed)

    def copy(self) -> "Crafted":
        c = Crafted([Entry(copy.copy(e.info), e.data, e.declared_size, e.raw_header) for e in self.entries],
                    copy.deepcopy(self.doc), self.original_doc_bytes, self.compressed)
        c.raw = dict(self.raw)
        return c

    # -- entries

    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def get(self, name: str) -> Entry:
        return next(e for e in self.entries if e.name == name)

    def listing(self, path: str) -> dict:
        return next(f for f in self.doc["files"] if f["path"] == path)

    def add(self, *entries: Entry, listed: bool = True) -> "Crafted":
        """Appends entries (after the last k8s entry) and, when ``listed``, their records
        to bundle.json's files (types without a record are listed as empty files)."""
        for e in entries:
            self.entries.append(e)
            if listed and e.raw_header is None:
                self.doc["files"].append(_listing(e))
        return self

    def remove(self, name: str, unlist: bool = True) -> "Crafted":
        self.entries = [e for e in self.entries if e.name != name]
        if unlist:
            self.doc["files"] = [f for f in self.doc["files"] if f["path"] != name]
        return self

    def replace(self, name: str, new: Entry, relist: bool = True) -> "Crafted":
        """Puts ``new`` where the entry ``name`` was (and its record where its record was)."""
        i = self.names().index(name)
        self.entries[i] = new
        if relist:
            rec = _listing(new)
            self.doc["files"] = [rec if f["path"] == name else f for f in self.doc["files"]]
        return self

    def relist(self, name: str) -> "Crafted":
        """Lists the entry ``name`` as it now is."""
        rec = _listing(self.get(name))
        self.doc["files"] = [rec if f["path"] == name else f for f in self.doc["files"]]
        return self

    # -- bundle.json

    def doc_bytes(self) -> bytes:
        if self.doc_bytes_override is not None:
            return self.doc_bytes_override
        text = json.dumps(self.doc, indent=2, ensure_ascii=False) + "\n"
        for k, v in self.raw.items():
            needle = json.dumps(k)
            assert needle in text, k
            text = text.replace(needle, v)
        return text.encode("utf-8", "surrogateescape")

    def set_raw(self, setter, text: str) -> "Crafted":
        """Puts the JSON text ``text`` (not a value: any bytes) where ``setter(doc, value)``
        puts a placeholder value."""
        key = f"@@RAW{len(self.raw)}@@"
        setter(self.doc, key)
        self.raw[key] = text
        return self

    # -- writing

    def tar(self, sign: Key | None, *, trailing: bytes = b"", end: bytes = b"\0" * 1024,
            signer: str | None = None) -> bytes:
        """The tar stream: bundle.json (signer set to ``sign``'s fingerprint, or "" when
        unsigned, unless ``signer`` says otherwise), its signature when ``sign``, the
        entries, ``end`` (the end-of-archive marker) and ``trailing``."""
        if self.doc_bytes_override is None and isinstance(self.doc, dict):
            self.doc["signer"] = signer if signer is not None else (sign.fingerprint() if sign else "")
        doc = self.doc_bytes()
        out = bytearray()
        for e in self.extra_first:
            out += e.to_bytes()
        out += file("bundle.json", doc).to_bytes()
        if sign:
            out += file("bundle.json.sig", sign.sign(doc)).to_bytes()
        for e in self.entries:
            out += e.to_bytes()
        out += end + trailing
        return bytes(out)

    def write(self, path: Path, sign: Key | None, *, compressed: bool | None = None, trailing: bytes = b"",
              compressed_trailing: bytes = b"", **kw) -> Path:
        """Writes the bundle (zstd when ``compressed``, by default as it was read);
        ``trailing`` goes after the end marker inside the tar stream, ``compressed_trailing``
        after the zstd frame."""
        data = self.tar(sign, trailing=trailing, **kw)
        if self.compressed if compressed is None else compressed:
            data = zstd_compress(data) + compressed_trailing
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(data)
        return Path(path)


    def write_bomb(self, path: Path, sign: Key | None, *, name: str = "k8s/zeros.bin", size: int = TWO_GIB,
                   listed: bool = True, sha256: str | None = None) -> Path:
        """A zstd bundle whose tar ends with a regular file ``name`` of ``size`` zero bytes,
        listed in bundle.json (with ``sha256``, by default the right one for 2 GiB) when
        ``listed``. The zeros are RLE blocks, so 2 GiB takes 64 KiB of the file."""
        assert size % BLOCK == 0
        if listed:
            if sha256 is None:
                assert size == TWO_GIB, "give the sha256 of sizes other than 2 GiB"
                sha256 = SHA256_2GIB_ZEROS
            self.doc["files"].append({"path": name, "type": "file", "mode": "0644", "size": size, "sha256": sha256})
        head = self.tar(sign, end=b"")
        hdr = file(name).info
        hdr.size = size
        data = (zstd_compress(head + hdr.tobuf(format=tarfile.PAX_FORMAT)) + zstd_rle_frame(size)
                + zstd_compress(b"\0" * 1024))
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(data)
        return Path(path)

    def write_sparse_bomb(self, path: Path, sign: Key | None, *, name: str = "k8s/zeros.bin",
                          size: int = TWO_GIB) -> Path:
        """The same bomb as a plain tar, written as a sparse file (the zeros are a hole:
        ``size`` bytes to read, almost nothing on disk)."""
        self.doc["files"].append({"path": name, "type": "file", "mode": "0644", "size": size,
                                  "sha256": SHA256_2GIB_ZEROS if size == TWO_GIB else None})
        head = self.tar(sign, end=b"")
        hdr = file(name).info
        hdr.size = size
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            f.write(head + hdr.tobuf(format=tarfile.PAX_FORMAT))
            f.seek(size, os.SEEK_CUR)
            f.write(b"\0" * 1024)
        return Path(path)


def sign_mode_key(mode: str, trusted: Key, other: Key) -> Key | None:
    return {"trusted": trusted, "other": other, "unsigned": None}[mode]


# ---- canary trees ----------------------------------------------------------------------------

def tree_digest(root: Path, skip=()) -> dict[str, tuple]:
    """Every path under ``root`` (symlinks not followed) -> (type, mode, sha256 of a file's
    bytes or a symlink's target). ``skip``: relative paths whose subtree is left out."""
    root = Path(root)
    out: dict[str, tuple] = {}
    if not root.exists() and not root.is_symlink():
        return out
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel_dir = os.path.relpath(dirpath, root)
        keep = []
        for d in dirnames:
            rel = os.path.normpath(os.path.join(rel_dir, d))
            if rel in skip:
                continue
            keep.append(d)
        dirnames[:] = keep
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if rel in skip:
                continue
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", st.st_mode, os.readlink(p))
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    out[rel] = ("file", st.st_mode, hashlib.sha256(f.read()).hexdigest())
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", st.st_mode, None)
            else:
                out[rel] = ("other", st.st_mode, st.st_rdev)
    return out


def tree_diff(before: dict, after: dict) -> list[str]:
    """Human-readable differences between two ``tree_digest`` results."""
    lines = []
    for k in sorted(set(before) | set(after)):
        a, b = before.get(k), after.get(k)
        if a == b:
            continue
        if a is None:
            lines.append(f"added {k} {b[0]} mode {b[1]:o}")
        elif b is None:
            lines.append(f"removed {k}")
        else:
            lines.append(f"changed {k}: {a[0]} {a[1]:o} -> {b[0]} {b[1]:o}")
    return lines


def make_canary(root: Path) -> Path:
    """A folder of files an attacker would like to change: victim.txt, a sub-folder
    ``x/`` with victim.txt, ``outside/f`` and ``dry-target/`` (where a planted dry-run
    symlink points)."""
    root = Path(root)
    (root / "x").mkdir(parents=True, exist_ok=True)
    (root / "victim.txt").write_text("victim, untouched\n")
    (root / "x" / "victim.txt").write_text("victim, untouched\n")
    (root / "outside").mkdir(exist_ok=True)
    (root / "outside" / "f").write_text("untouched\n")
    (root / "dry-target").mkdir(exist_ok=True)
    (root / "dry-target" / "keep.txt").write_text("keep\n")
    return root


# ---- measuring what a process writes ------------------------------------------------------

def run_measured(cmd: list[str], env: dict, cwd: Path, timeout: float = 120, watch=()) -> dict:
    """Runs ``cmd`` and returns {"rc", "stderr", "stdout", "wchar", "write_bytes", "rchar",
    "peak_du"}: the process's /proc/PID/io counters read once it has exited (before it is
    reaped, so they are final) and the largest total size of the files under the
    ``watch`` folders seen while polling."""
    import signal
    import time

    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=str(cwd))
    out_chunks, err_chunks = [], []
    import threading

    def pump(src, sink):
        for chunk in iter(lambda: src.read(65536), b""):
            sink.append(chunk)

    threads = [threading.Thread(target=pump, args=(p.stdout, out_chunks), daemon=True),
               threading.Thread(target=pump, args=(p.stderr, err_chunks), daemon=True)]
    for t in threads:
        t.start()
    peak = 0
    io_last: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    timed_out = False
    while True:
        try:
            with open(f"/proc/{p.pid}/io") as f:
                io_last = {k: int(v) for k, v in (line.split(": ") for line in f.read().splitlines())}
        except (OSError, ValueError):
            pass
        peak = max(peak, sum(du(w) for w in watch))
        # Exited? (WNOWAIT: the zombie stays, so /proc/PID/io holds the final counts.)
        res = os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if res is not None:
            try:
                with open(f"/proc/{p.pid}/io") as f:
                    io_last = {k: int(v) for k, v in (line.split(": ") for line in f.read().splitlines())}
            except (OSError, ValueError):
                pass
            break
        if time.monotonic() > deadline:
            timed_out = True
            os.kill(p.pid, signal.SIGKILL)
        time.sleep(0.01)
    rc = p.wait()
    for t in threads:
        t.join(5)
    peak = max(peak, sum(du(w) for w in watch))
    return {"rc": rc, "timed_out": timed_out, "stdout": b"".join(out_chunks).decode(errors="replace"),
            "stderr": b"".join(err_chunks).decode(errors="replace"), "wchar": io_last.get("wchar", -1),
            "write_bytes": io_last.get("write_bytes", -1), "rchar": io_last.get("rchar", -1), "peak_du": peak}


def du(root: Path) -> int:
    """Bytes allocated to the files under ``root`` (st_blocks, so sparse holes count 0)."""
    total = 0
    root = Path(root)
    if not root.exists():
        return 0
    for dirpath, _dirs, files in os.walk(root, followlinks=False):
        for n in files:
            try:
                total += os.lstat(os.path.join(dirpath, n)).st_blocks * 512
            except OSError:
                pass
    return total
