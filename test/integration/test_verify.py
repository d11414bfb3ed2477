"""`aas-bundle verify` and `aas-bundle inspect` on bundles packed from OCI layouts (no
registry needed), then altered with Python's tarfile and the zstd CLI: the tamper matrix,
the malicious-archive matrix, split bundles and signatures.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from harness import bundles, images

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def assert_rc(p, rc):
    assert p.returncode == rc, f"exit {p.returncode}, expected {rc}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"


class Made:
    """A packed bundle and what went into it."""

    def __init__(self, out: Path, key: Path, other: Path, a, b, multi):
        self.out = out
        self.key = key        # base name: key.pub / key.key
        self.other = other    # a second key pair
        self.a, self.b, self.multi = a, b, multi

    @property
    def pub(self) -> Path:
        return Path(f"{self.key}.pub")


def make_bundle(run_aas, workdir: Path, name="b.tar", split=None, extra_layer=0) -> Made:
    key = workdir / "signer"
    other = workdir / "other"
    if not Path(f"{key}.pub").exists():
        assert_rc(run_aas("keygen", "--out", key), 0)
        assert_rc(run_aas("keygen", "--out", other), 0)
    base = images.make_layer("vf-base", 20_000)
    layers_a = [base, images.make_layer("vf-a", 6_000)]
    if extra_layer:
        layers_a.append(images.make_layer("vf-big", extra_layer))
    a = images.oci_image(layers_a)
    b = images.docker_image([base, images.make_layer("vf-b", 4_000)])
    multi = images.multiarch("oci", seed="vf-multi", layer_size=3_000)
    layout = images.write_oci_layout(workdir / "layout", {"1.0": a, "2.0": multi})
    dlayout = workdir / "dlayout"
    images.write_oci_layout(dlayout, {"3.0": b})
    refs = ["shop/a:1.0", "shop/multi:2.0", "shop/b:3.0"]
    manifest = bundles.project(workdir / "proj", refs, extra_images=[
        {"ref": "shop/a:1.0", "from": f"oci:{layout}:1.0"},
        {"ref": "shop/multi:2.0", "from": f"oci:{layout}:2.0"},
        {"ref": "shop/b:3.0", "from": f"oci:{dlayout}:3.0"},
    ])
    values = workdir / "proj" / "k8s" / "environments" / "production"
    values.mkdir(parents=True, exist_ok=True)
    (values / "minio-values.yaml").write_text("mode: standalone\npersistence:\n  size: 10Gi\n")
    out = workdir / "o" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    args = ["pack", "-f", manifest, "-o", out, "--cache", workdir / "cache", "--key", f"{key}.key", "-q"]
    if split:
        args += ["--split-size", split]
    assert_rc(run_aas(*args, timeout=180), 0)
    return Made(out, key, other, a, b, multi)


@pytest.fixture
def made(run_aas, workdir) -> Made:
    return make_bundle(run_aas, workdir)


def verify(run_aas, bundle, *args, key=None):
    extra = ["--key", key] if key else []
    return run_aas("verify", bundle, *extra, *args, timeout=120)


def verify_json(run_aas, bundle, key=None):
    p = verify(run_aas, bundle, "--json", key=key)
    assert p.returncode in (0, 1), p.stderr
    return p, json.loads(p.stdout)


def messages(p) -> str:
    return p.stderr


# ---- rewriting tars --------------------------------------------------------------------

def read_tar(path: Path):
    data = path.read_bytes()
    zst = data[:4] == ZSTD_MAGIC
    if zst:
        data = subprocess.run(["zstd", "-dc"], input=data, capture_output=True, check=True).stdout
    return data, zst


def write_stream(path: Path, data: bytes, zst: bool):
    if zst:
        data = subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True, check=True).stdout
    path.write_bytes(data)


def flip(path: Path, member: str, at: int = 10):
    """Flips one byte of `member`'s data (in the tar stream, recompressed if needed)."""
    data, zst = read_tar(path)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as t:
        m = t.getmember(member)
        off = m.offset_data + min(at, m.size - 1)
    buf = bytearray(data)
    buf[off] ^= 0x01
    write_stream(path, bytes(buf), zst)


def rewrite(path: Path, edit):
    """Rewrites the archive: `edit(list of (TarInfo, bytes|None))` returns the new list."""
    data, zst = read_tar(path)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as t:
        items = [(m, t.extractfile(m).read() if m.isfile() else None) for m in t.getmembers()]
    items = edit(items)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        for m, content in items:
            t.addfile(m, io.BytesIO(content) if content is not None else None)
    write_stream(path, raw.getvalue(), zst)


def info(name, data=b"", **kw) -> tuple[tarfile.TarInfo, bytes | None]:
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = kw.pop("mode", 0o644)
    for k, v in kw.items():
        setattr(ti, k, v)
    if ti.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
        ti.size = 0
        return ti, None
    return ti, data


def doc_of(made: Made) -> dict:
    return bundles.bundle_json(made.out)


def blob_of_kind(doc, kind, ref):
    """A blob of `kind` used by the image `ref` only."""
    for b in doc["blobs"]:
        if b["kind"] == kind and b["images"] == [ref]:
            return b["digest"]
    raise KeyError((kind, ref))


def blob_member(digest: str) -> str:
    return "images/blobs/sha256/" + digest.split(":")[1]


# ---- the untouched bundle --------------------------------------------------------------

@pytest.mark.parametrize("name", ["b.tar", "b.tar.zst"])
def test_untouched_bundle_passes(run_aas, workdir, name):
    m = make_bundle(run_aas, workdir, name)
    p = verify(run_aas, m.out, key=m.pub)
    assert_rc(p, 0)
    assert "intact" in p.stdout and "authentic" in p.stdout and m.pub.name in p.stdout
    p, j = verify_json(run_aas, m.out, key=m.pub)
    assert j["ok"] and j["authentic"] and j["signature"] == "valid" and j["problems"] == []
    doc = doc_of(m)
    assert j["blobs_checked"] == len(doc["blobs"])
    assert j["files_checked"] == len(doc["files"])
    assert j["images"] == 3


def test_without_key_says_authenticity_was_not_checked(run_aas, made):
    p = verify(run_aas, made.out)
    assert_rc(p, 0)
    assert "authenticity NOT checked" in p.stdout
    _, j = verify_json(run_aas, made.out)
    assert j["ok"] and not j["authentic"] and j["signature"] == "not checked"


# ---- the tamper matrix -----------------------------------------------------------------

def tampered(run_aas, made, change):
    change(made)
    p = verify(run_aas, made.out, key=made.pub)
    assert_rc(p, 1)
    _, j = verify_json(run_aas, made.out, key=made.pub)
    assert not j["ok"]
    # --json gives the same findings as the text
    for pr in j["problems"]:
        assert pr["message"] in p.stderr
    return p, j


@pytest.mark.parametrize("kind", ["layer", "config", "manifest"])
def test_flipped_blob_byte(run_aas, made, kind):
    doc = doc_of(made)
    d = blob_of_kind(doc, kind, "docker.io/shop/a:1.0")
    p, j = tampered(run_aas, made, lambda m: flip(m.out, blob_member(d)))
    assert f"blob {d} ({kind} of docker.io/shop/a:1.0): content hash mismatch" in p.stderr
    assert [x["subject"] for x in j["problems"]] == [d]


def test_shared_layer_names_every_image(run_aas, made):
    base = images.make_layer("vf-base", 20_000).digest
    p, _ = tampered(run_aas, made, lambda m: flip(m.out, blob_member(base), at=5000))
    assert f"blob {base} (layer of docker.io/shop/a:1.0 and docker.io/shop/b:3.0): content hash mismatch" in p.stderr


def test_flipped_index_json(run_aas, made):
    p, _ = tampered(run_aas, made, lambda m: flip(m.out, "images/index.json", at=40))
    assert "images/index.json: modified (same size, but sha256" in p.stderr


def test_flipped_values_file(run_aas, made):
    path = "k8s/environments/production/minio-values.yaml"
    p, _ = tampered(run_aas, made, lambda m: flip(m.out, path, at=3))
    assert f"{path}: modified (same size" in p.stderr


def test_values_file_with_another_size(run_aas, made):
    path = "k8s/environments/production/minio-values.yaml"
    orig = len("mode: standalone\npersistence:\n  size: 10Gi\n")

    def grow(items):
        out = []
        for m, data in items:
            if m.name == path:
                data = data + b"  storageClass: fast\n"
                m.size = len(data)
            out.append((m, data))
        return out

    p, _ = tampered(run_aas, made, lambda m: rewrite(m.out, grow))
    assert f"{path}: modified (size {orig + 21}, expected {orig})" in p.stderr


def test_flipped_bundle_json(run_aas, made):
    def change(m):
        data, zst = read_tar(m.out)
        i = data.index(b'"name": "demo"')
        buf = bytearray(data)
        buf[i + 10] ^= 0x01  # demo -> eemo: still valid JSON, same size
        write_stream(m.out, bytes(buf), zst)

    p, j = tampered(run_aas, made, change)
    assert f"signature does not match key {made.pub.name}" in p.stderr
    assert j["signature"] == "invalid"


def test_flipped_signature(run_aas, made):
    p, j = tampered(run_aas, made, lambda m: flip(m.out, "bundle.json.sig", at=7))
    assert f"signature does not match key {made.pub.name}" in p.stderr
    assert len(j["problems"]) == 1


def test_signed_with_another_key(run_aas, made):
    p = verify(run_aas, made.out, key=f"{made.other}.pub")
    assert_rc(p, 1)
    assert "signature does not match key other.pub" in p.stderr
    assert "bundle.json names signer sha256:" in p.stderr


def test_resigned_with_another_key(run_aas, made):
    """bundle.json signed again with a key that is not the one trusted."""
    def resign(items):
        doc = next(d for m, d in items if m.name == "bundle.json")
        (made.out.parent / "doc.json").write_bytes(doc)
        subprocess.run(["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", f"{made.other}.key",
                        "-in", made.out.parent / "doc.json", "-out", made.out.parent / "doc.sig"], check=True)
        sig = (made.out.parent / "doc.sig").read_bytes()
        out = []
        for m, d in items:
            if m.name == "bundle.json.sig":
                d = sig
            out.append((m, d))
        return out

    p, _ = tampered(run_aas, made, lambda m: rewrite(m.out, resign))
    assert "signature does not match key signer.pub" in p.stderr


def test_dropped_file_and_blob(run_aas, made):
    doc = doc_of(made)
    layer = blob_of_kind(doc, "layer", "docker.io/shop/b:3.0")
    layer = next(b["digest"] for b in doc["blobs"]
                 if b["kind"] == "layer" and b["images"] == ["docker.io/shop/b:3.0"])
    drop = {"k8s/README.txt", blob_member(layer)}
    p, _ = tampered(run_aas, made, lambda m: rewrite(m.out, lambda it: [x for x in it if x[0].name not in drop]))
    assert "k8s/README.txt: missing" in p.stderr
    assert f"blob {layer} (layer of docker.io/shop/b:3.0): missing" in p.stderr


def test_added_file(run_aas, made):
    p, _ = tampered(run_aas, made, lambda m: rewrite(m.out, lambda it: it + [info("k8s/extra.yaml", b"kind: Secret\n")]))
    assert "k8s/extra.yaml: a file in the archive but not listed in bundle.json" in p.stderr


def test_added_blob(run_aas, made):
    data = b"not in any image"
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    p, _ = tampered(run_aas, made, lambda m: rewrite(m.out, lambda it: it + [info(blob_member(d), data)]))
    assert f"blob {d}: in the archive but not listed in bundle.json" in p.stderr


def test_blob_dropped_from_bundle_json_and_archive(run_aas, workdir, made):
    """An unsigned bundle whose bundle.json and archive both lack a layer: the layout's
    manifests still reference it."""
    doc = doc_of(made)
    layer = next(b["digest"] for b in doc["blobs"] if b["kind"] == "layer" and b["images"] == ["docker.io/shop/b:3.0"])

    def edit(items):
        out = []
        for m, d in items:
            if m.name == "bundle.json.sig" or m.name == blob_member(layer):
                continue
            if m.name == "bundle.json":
                j = json.loads(d)
                j["blobs"] = [b for b in j["blobs"] if b["digest"] != layer]
                d = (json.dumps(j, indent=2) + "\n").encode()
                m.size = len(d)
            out.append((m, d))
        return out

    rewrite(made.out, edit)
    p = verify(run_aas, made.out)
    assert_rc(p, 1)
    assert f"blob {layer} (blob of docker.io/shop/b:3.0): missing: manifest sha256:" in p.stderr
    p = verify(run_aas, made.out, key=made.pub)
    assert "the bundle is unsigned" in p.stderr


@pytest.mark.parametrize("name", ["b.tar", "b.tar.zst"])
def test_truncated_archive(run_aas, workdir, name):
    m = make_bundle(run_aas, workdir, name)
    data = m.out.read_bytes()
    m.out.write_bytes(data[: len(data) * 2 // 3])
    p = verify(run_aas, m.out, key=m.pub)
    assert_rc(p, 1)
    assert str(m.out) in p.stderr
    assert "truncated" in p.stderr.lower()
    if name == "b.tar":  # the cut is past bundle.json: what follows is named as unchecked
        assert "were not checked" in p.stderr


def test_every_problem_is_reported(run_aas, made):
    doc = doc_of(made)
    layer = blob_of_kind(doc, "layer", "docker.io/shop/a:1.0")

    def change(m):
        flip(m.out, blob_member(layer))
        flip(m.out, "k8s/plain/app.yaml", at=3)
        flip(m.out, "bundle.json.sig")
        rewrite(m.out, lambda it: [x for x in it if x[0].name != "k8s/README.txt"]
                + [info("k8s/added.txt", b"x")])

    # With a key, the broken signature stops the pass: nothing else of an unauthenticated
    # bundle is read (the trust order).
    p, j = tampered(run_aas, made, change)
    assert [x["kind"] for x in j["problems"]] == ["signature"], j["problems"]
    assert "nothing after bundle.json was read" in p.stderr
    # Without one, integrity only: every other problem, each named.
    p, j = verify_json(run_aas, made.out)
    assert len(j["problems"]) == 4, j["problems"]
    assert {x["kind"] for x in j["problems"]} == {"blob", "file", "missing", "unlisted"}


# ---- malicious archives ----------------------------------------------------------------

def snapshot(root: Path) -> set:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


MALICIOUS = {
    "traversal": (lambda: info("../evil.txt", b"pwned"), 'entry "../evil.txt"', 'has a ".." component'),
    "deep traversal": (lambda: info("k8s/../../evil.txt", b"pwned"), "k8s/../../evil.txt", '".." component'),
    "absolute": (lambda: info("/tmp/aas-evil-abs.txt", b"pwned"), "/tmp/aas-evil-abs.txt", "the name is absolute"),
    "escaping symlink": (lambda: info("k8s/link", type=tarfile.SYMTYPE, linkname="../../../etc/passwd"),
                         'entry "k8s/link"', "outside k8s/"),
    "absolute symlink": (lambda: info("k8s/link", type=tarfile.SYMTYPE, linkname="/etc/passwd"),
                         'entry "k8s/link"', "absolute path"),
    "hard link": (lambda: info("k8s/hard", type=tarfile.LNKTYPE, linkname="/etc/passwd"),
                  'entry "k8s/hard"', "hard link"),
    "device": (lambda: info("k8s/dev", type=tarfile.CHRTYPE, devmajor=1, devminor=3), 'entry "k8s/dev"',
               "character device"),
    "block device": (lambda: info("k8s/blk", type=tarfile.BLKTYPE, devmajor=8, devminor=0), 'entry "k8s/blk"',
                     "block device"),
    "fifo": (lambda: info("k8s/fifo", type=tarfile.FIFOTYPE), 'entry "k8s/fifo"', "FIFO"),
    "duplicate": (lambda: info("k8s/README.txt", b"second copy\n"), 'entry "k8s/README.txt"',
                  "a second entry with this name"),
}


@pytest.mark.parametrize("case", sorted(MALICIOUS))
@pytest.mark.parametrize("name", ["b.tar", "b.tar.zst"])
def test_malicious_entries_are_refused(run_aas, workdir, case, name):
    m = make_bundle(run_aas, workdir, name)
    make, where, why = MALICIOUS[case]
    rewrite(m.out, lambda it: it + [make()])
    before = snapshot(workdir)
    p = verify(run_aas, m.out, key=m.pub)
    assert_rc(p, 1)
    assert where in p.stderr and "refused" in p.stderr and why in p.stderr, p.stderr
    assert snapshot(workdir) == before
    assert not Path("/tmp/aas-evil-abs.txt").exists()
    _, j = verify_json(run_aas, m.out, key=m.pub)
    assert [x["kind"] for x in j["problems"]] == ["refused"]


def test_entry_larger_than_bundle_json_says(run_aas, made):
    path = "k8s/environments/production/minio-values.yaml"
    orig = len("mode: standalone\npersistence:\n  size: 10Gi\n")

    def grow(items):
        return [(m, d + b"x" * 100_000) if m.name == path else (m, d) for m, d in items]

    def fix_sizes(items):
        for m, d in items:
            if d is not None:
                m.size = len(d)
        return items

    p, _ = tampered(run_aas, made, lambda m: rewrite(m.out, lambda it: fix_sizes(grow(it))))
    assert f"{path}: modified (size {orig + 100_000}, expected {orig}); not read" in p.stderr


def test_decompression_bomb(run_aas, made, workdir):
    """A small .zst whose tar holds far more than bundle.json accounts for."""
    data, _ = read_tar(made.out)
    head = data[: data.index(b"\0" * 1024, 0)]  # all entries, without the end marker
    bomb = workdir / "bomb.tar.zst"
    proc = subprocess.Popen(["zstd", "-q", "-19", "-c"], stdin=subprocess.PIPE, stdout=open(bomb, "wb"))
    proc.stdin.write(head[: len(head) // 512 * 512])
    ti = tarfile.TarInfo("k8s/zeros.bin")
    ti.size = 64 << 20
    proc.stdin.write(ti.tobuf(format=tarfile.USTAR_FORMAT))
    zeros = b"\0" * (1 << 20)
    for _ in range(64):
        proc.stdin.write(zeros)
    proc.stdin.write(b"\0" * 1024)
    proc.stdin.close()
    proc.wait()
    assert bomb.stat().st_size < 64 << 10
    p = verify(run_aas, bomb, key=made.pub)
    assert_rc(p, 1)
    assert "bundle.json accounts for" in p.stderr and "decompression bomb" in p.stderr


def test_oversized_bundle_json_is_refused(run_aas, workdir):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        ti = tarfile.TarInfo("bundle.json")
        ti.size = 65 << 20
        t.addfile(ti, io.BytesIO(b" " * ti.size))
    (workdir / "big.tar").write_bytes(raw.getvalue())
    p = verify(run_aas, workdir / "big.tar")
    assert_rc(p, 1)
    assert "bundle.json is 68157440 bytes, more than the limit" in p.stderr


@pytest.mark.parametrize("content,expect", [
    (b"", "the file is empty"),
    (os.urandom(4096), "not a tar archive"),
    # random frame headers: "broken zstd data", or a window over the cap (both name zstd)
    (ZSTD_MAGIC + os.urandom(4096), "zstd"),
    (b"hello world\n" * 100, "not a tar archive"),
])
def test_garbage_files(run_aas, workdir, content, expect):
    f = workdir / "garbage.tar.zst"
    f.write_bytes(content)
    p = verify(run_aas, f)
    assert_rc(p, 1)
    assert str(f) in p.stderr and expect in p.stderr, p.stderr


def test_not_a_bundle(run_aas, workdir):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as t:
        ti, data = info("hello.txt", b"hi")
        t.addfile(ti, io.BytesIO(data))
    (workdir / "x.tar").write_bytes(raw.getvalue())
    p = verify(run_aas, workdir / "x.tar")
    assert_rc(p, 1)
    assert 'the first entry is "hello.txt", not bundle.json' in p.stderr


def test_usage_errors(run_aas, workdir, made):
    assert_rc(verify(run_aas, workdir / "nope.tar"), 2)
    assert_rc(verify(run_aas, made.out, key=workdir / "nope.pub"), 2)
    (workdir / "bad.pub").write_text("not a key\n")
    p = verify(run_aas, made.out, key=workdir / "bad.pub")
    assert_rc(p, 2)
    assert "bad.pub" in p.stderr
    assert_rc(run_aas("verify"), 2)


# ---- split bundles ---------------------------------------------------------------------

@pytest.fixture
def split(run_aas, workdir) -> Made:
    return make_bundle(run_aas, workdir, "s.tar", split="1M", extra_layer=2_500_000)


def parts_of(m: Made) -> list[Path]:
    index = json.loads(Path(f"{m.out}.parts").read_text())
    return [m.out.parent / p["name"] for p in index["parts"]]


def test_split_bundle_passes_by_any_name(run_aas, split):
    parts = parts_of(split)
    assert len(parts) >= 3
    for name in [Path(f"{split.out}.parts"), parts[0], split.out]:
        p = verify(run_aas, name, key=split.pub)
        assert_rc(p, 0)
        assert f"{len(parts)} parts" in p.stdout


def test_missing_parts_are_all_named(run_aas, split):
    parts = parts_of(split)
    n = len(parts)
    parts[1].unlink()
    parts[2].unlink()
    p = verify(run_aas, f"{split.out}.parts", key=split.pub)
    assert_rc(p, 1)
    assert f"part 2 of {n} ({parts[1].name}) missing" in p.stderr
    assert f"part 3 of {n} ({parts[2].name}) missing" in p.stderr


def test_swapped_parts(run_aas, split):
    parts = parts_of(split)
    tmp = parts[0].with_name("tmp")
    parts[0].rename(tmp)
    parts[1].rename(parts[0])
    tmp.rename(parts[1])
    p = verify(run_aas, f"{split.out}.parts", key=split.pub)
    assert_rc(p, 1)
    assert f"part 1 of {len(parts)} ({parts[0].name}): sha256 mismatch" in p.stderr
    assert "swapped" in p.stderr
    assert f"part 2 of {len(parts)} ({parts[1].name}): sha256 mismatch" in p.stderr


def test_damaged_part(run_aas, split):
    parts = parts_of(split)
    data = bytearray(parts[1].read_bytes())
    data[1000] ^= 0xFF
    parts[1].write_bytes(bytes(data))
    p = verify(run_aas, parts[0], key=split.pub)
    assert_rc(p, 1)
    assert f"part 2 of {len(parts)} ({parts[1].name}): sha256 mismatch" in p.stderr
    assert "swapped" not in p.stderr


# ---- inspect ---------------------------------------------------------------------------

def test_inspect(run_aas, made):
    p = run_aas("inspect", made.out)
    assert_rc(p, 0)
    for text in ["demo 1.0.0", "docker.io/shop/a:1.0", "docker.io/shop/multi:2.0", made.a.digest,
                 "k8s/plain/app.yaml:", "saved by shared layers", "signer   sha256:"]:
        assert text in p.stdout, text
    p = run_aas("inspect", made.out, "--json")
    assert_rc(p, 0)
    j = json.loads(p.stdout)
    assert j["name"] == "demo" and j["signed"] is True
    assert [i["ref"] for i in j["images"]] == ["docker.io/shop/a:1.0", "docker.io/shop/b:3.0",
                                               "docker.io/shop/multi:2.0"]
    a = j["images"][0]
    assert a["digest"] == made.a.digest and a["platforms"] == ["linux/amd64"] and a["class"] == "required"
    assert a["sites"][0]["file"] == "k8s/plain/app.yaml"
    base = images.make_layer("vf-base", 20_000)
    assert j["totals"]["bytes_saved_by_dedup"] == base.size
    assert j["totals"]["parts"] == []


def test_inspect_reads_only_the_first_entries(run_aas, made):
    """A damaged layer does not bother inspect (it is verify's job)."""
    doc = doc_of(made)
    flip(made.out, blob_member(blob_of_kind(doc, "layer", "docker.io/shop/a:1.0")))
    assert_rc(run_aas("inspect", made.out), 0)
    p = run_aas("inspect", made.out, "--key", made.pub)
    assert_rc(p, 0)
    assert "signature valid" in p.stdout
    p = run_aas("inspect", made.out, "--key", f"{made.other}.pub")
    assert_rc(p, 1)


def test_inspect_split(run_aas, split):
    parts = parts_of(split)
    parts[-1].unlink()  # inspect reads only the first part
    p = run_aas("inspect", f"{split.out}.parts", "--json")
    assert_rc(p, 0)
    j = json.loads(p.stdout)
    assert len(j["totals"]["parts"]) == len(parts)
