"""Reading aas-bundle bundles with the standard library and the zstd CLI only, so
that the tests check pack's output with tools other than aas-bundle itself.

``project()`` writes a small k8s folder (a plain manifest naming the images) and a
bundle manifest for it.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def whole_bytes(path) -> bytes:
    """The archive bytes of a bundle: the file, or its parts concatenated when ``path``
    is a parts index."""
    path = Path(path)
    if path.name.endswith(".parts"):
        index = json.loads(path.read_text())
        return b"".join((path.parent / p["name"]).read_bytes() for p in index["parts"])
    return path.read_bytes()


def tar_bytes(path) -> bytes:
    data = whole_bytes(path)
    if data[:4] == ZSTD_MAGIC:
        data = subprocess.run(["zstd", "-dc"], input=data, capture_output=True, check=True).stdout
    return data


def members(path) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes(path)), mode="r:") as tar:
        return tar.getmembers()


def extract(path, dest) -> Path:
    """Unpacks a bundle into ``dest``, refusing names that would land outside it and
    anything but files, folders and symlinks (Debian 12's Python has no extraction
    filters)."""
    dest = Path(dest).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(tar_bytes(path)), mode="r:") as tar:
        for m in tar.getmembers():
            target = (dest / m.name).resolve()
            if m.name.startswith("/") or ".." in Path(m.name).parts or not str(target).startswith(str(dest)):
                raise ValueError(f"unsafe entry {m.name!r}")
            if not (m.isfile() or m.isdir() or m.issym()):
                raise ValueError(f"unexpected entry type {m.name!r}")
        tar.extractall(dest)
    return dest


def bundle_json_bytes(path) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes(path)), mode="r:") as tar:
        return tar.extractfile("bundle.json").read()


def bundle_json(path) -> dict:
    return json.loads(bundle_json_bytes(path))


def project(root, refs, *, extra_images=(), platforms=None, name="demo", version="1.0.0",
            mirrors=None) -> Path:
    """Writes ROOT/k8s/plain/app.yaml (a Deployment with one container per reference
    in ``refs``) and ROOT/bundle.yaml; returns the manifest path.  ``extra_images``
    are manifest ``images`` entries (dicts with ref and optional from)."""
    root = Path(root)
    plain = root / "k8s" / "plain"
    plain.mkdir(parents=True, exist_ok=True)
    containers = "".join(f"        - name: c{i}\n          image: {r}\n" for i, r in enumerate(refs))
    (plain / "app.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n"
        "    spec:\n      containers:\n" + containers)
    (root / "k8s" / "README.txt").write_text("shipped as is\n")
    lines = ["apiVersion: aas-bundle/v1", "kind: Bundle", f"name: {name}", f"version: {version}",
             "k8s: k8s", "manifests: [plain/app.yaml]"]
    if extra_images:
        lines.append("images:")
        for e in extra_images:
            lines.append(f"  - ref: {e['ref']}")
            if e.get("from"):
                lines.append(f"    from: {e['from']}")
    if platforms:
        lines.append(f"platforms: [{', '.join(platforms)}]")
    if mirrors:
        lines.append("mirrors:")
        for k, v in mirrors.items():
            lines.append(f'  {k}: "{v}"')
    manifest = root / "bundle.yaml"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest
