"""A bundle is hostile input (issue 11): the acceptance matrix.

Each case crafts a hostile bundle from a small bundle packed by the binary
(harness/hostile.py), in three variants: signed by the trusted key (the hostile part is
authentic: think of a compromised online side), signed by another key, and unsigned.
Every variant goes through ``verify --key``, ``inspect --key``, ``load --dry-run --key``
and ``load --key`` (into a plain registry on 127.0.0.1); the unsigned one also through
``verify`` without a key and ``load [--dry-run] --insecure-skip-signature``.

What every run must show (the issue's "rule to build"):

- no crash: a non-negative exit status below 128, within a bounded time;
- refused: exit status 1 or 2, except where the case says the bundle is fine
  (zero padding after the end marker) or may be loaded with its modes cleaned
  (setuid bits: refused naming the entry, or loaded without the bits);
- with a key and a wrong or missing signature: the message says so (``signature`` or
  ``unsigned``) and, for a hostile entry, does not name it: reading stopped after
  bundle.json;
- with the trusted signature, or without a key: the message names the hostile entry or
  field;
- nothing changed outside the command's own folders: a canary tree outside the work
  root (the one the symlink chains and absolute names aim at), the test's whole folder,
  the dry run's TMPDIR (left empty; a symlink planted at ``$TMPDIR/aas-load-dry-<pid>``
  is not followed), and the registry (nothing pushed);
- no raw control character from the bundle reaches the output (no line ``touch …``).

Then the disk bomb (a ~90 KB .tar.zst listing a 2 GiB file): what load and verify
write before refusing it, measured.
"""

from __future__ import annotations

import json
import os
import hashlib
import io
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from harness import hostile
from harness.hostile import Crafted, Entry, device, fifo, file, folder, hardlink, symlink
from harness.images import RegistryClient
from harness.registry import start_registry

SIGNS = ("trusted", "other", "unsigned")
COMMANDS = {
    "trusted": ("verify", "inspect", "dry-run", "load"),
    "other": ("verify", "inspect", "dry-run", "load"),
    "unsigned": ("verify", "inspect", "dry-run", "load", "verify-nokey", "dry-run-skip", "load-skip"),
}
SIGNATURE_WORDS = re.compile(r"signature|unsigned|not signed", re.I)


# ---- the module's bundle, keys, canary and registry ---------------------------------------------

@dataclass
class Ctx:
    root: Path
    run: hostile.Runner
    trusted: hostile.Key
    other: hostile.Key
    base: dict          # "tar" / "zst" -> Crafted
    canary: Path
    registry: object
    cache: dict = field(default_factory=dict)
    pristine: dict = field(default_factory=dict)

    def reset_canary(self):
        """Makes the canary pristine again after a test that changed it (so that each test
        sees only its own changes)."""
        if hostile.tree_digest(self.canary) != self.pristine:
            shutil.rmtree(self.canary)
            hostile.make_canary(self.canary)
            assert hostile.tree_digest(self.canary) == self.pristine

    def place(self) -> "Place":
        """A fresh folder for one run, with a neutral name (not the test's: messages quote
        paths, and must not pass for naming an entry)."""
        (self.root / "runs").mkdir(exist_ok=True)
        return Place(Path(tempfile.mkdtemp(prefix="r", dir=self.root / "runs")))

    @property
    def canary_rel(self) -> str:
        """The canary's absolute path without its leading '/'."""
        return str(self.canary).lstrip("/")

    @property
    def levels(self) -> int:
        """Enough '..' to climb from any extraction folder under pytest's tmp to '/'."""
        return max(16, len(self.root.parts) + 12)


@pytest.fixture(scope="module")
def ctx(aas_bundle, tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    run = hostile.Runner(aas_bundle, root / "home")
    trusted = hostile.keygen(run, root / "trusted")
    other = hostile.keygen(run, root / "other")
    base = {"tar": Crafted.read(hostile.pack_small(run, root / "pack", trusted, name="b.tar")),
            "zst": Crafted.read(hostile.pack_small(run, root / "pack", trusted, name="b.tar.zst"))}
    canary = hostile.make_canary(root / "canary")
    reg = start_registry(root / "registry", "plain")
    x = Ctx(root, run, trusted, other, base, canary, reg)
    x.pristine = hostile.tree_digest(canary)
    yield x
    reg.stop()


# ---- cases ---------------------------------------------------------------------------------

@dataclass
class Case:
    craft: Callable  # (Crafted, Ctx) -> dict of Crafted.write arguments, or None
    names: tuple     # one of these is in stderr when the bundle is read (entry or field)
    why: tuple = ()  # and one of these (case-insensitive), when given
    kind: str = "entry"  # entry: a hostile tar entry; doc: a bundle.json field; stream: the archive's framing
    zst: bool = False
    fine: bool = False          # a harmless bundle: passes when authentic
    clean_modes: bool = False   # setuid bits: refused naming the entry, or loaded without them
    inspect_reads: bool = False  # inspect reads what is hostile (bundle.json): it must refuse too
    escaped_only: bool = False  # verify/inspect may pass but print the field escaped; load refuses
    before_signature: bool = False  # broken before the signature can be read: named, signature or not

    def hidden(self, info: dict) -> tuple:
        """What an unauthenticated run must not print: it never reads the hostile entry."""
        if self.kind != "entry":
            return ()
        return tuple(n for n in self.names if "/" in n and not n.startswith("@")) + tuple(info["names"])


def _chain16(mode=0o644, victim="victim.txt"):
    def craft(c: Crafted, x: Ctx):
        n = x.levels
        links = [symlink("k8s/l0", ".")] + [symlink(f"k8s/l{i}", f"l{i - 1}/..") for i in range(1, n)]
        c.add(*links, file(f"k8s/l{n - 1}/{x.canary_rel}/{victim}", b"pwned by a symlink chain\n", mode=mode))
    return craft


def _chain_names(n=16):
    return tuple(f"k8s/l{i}" for i in range(1, n))


def _short_chain(c: Crafted, x: Ctx):
    c.add(symlink("k8s/s", "."), symlink("k8s/t", "s/.."), symlink("k8s/u", "t/.."), symlink("k8s/v", "u/.."),
          symlink("k8s/w", "v/.."), symlink("k8s/x", "w/outside"), file("k8s/x/f", b"pwned\n"))


def _added(*make):
    def craft(c: Crafted, x: Ctx):
        c.add(*[m(x) for m in make])
    return craft


def _unlisted(*make):
    def craft(c: Crafted, x: Ctx):
        c.add(*[m(x) for m in make], listed=False)
    return craft


def _readme(change):
    def craft(c: Crafted, x: Ctx):
        e = c.get("k8s/README.txt")
        e.data = change(e.data)
        e.info.size = len(e.data)
    return craft


def _readme_header_lies(c: Crafted, x: Ctx):
    c.get("k8s/README.txt").declared_size = 1 << 20


def _listing(path, key, value):
    def craft(c: Crafted, x: Ctx):
        c.listing(path)[key] = value
    return craft


def _huge_header(c: Crafted, x: Ctx):
    c.add(Entry(file("k8s/huge.bin").info, None, raw_header=hostile.gnu_huge_header("k8s/huge.bin", 1 << 40)))
    return {"end": b""}  # the file ends after the header


def _dup_blob(c: Crafted, x: Ctx):
    name = next(n for n in c.names() if n.startswith("images/blobs/sha256/"))
    c.add(file(name, b"a second, different blob\n"), listed=False)
    return {"names": (name, "sha256:" + name.rsplit("/", 1)[1])}


def _blob_listed_huge(c: Crafted, x: Ctx):
    b = c.doc["blobs"][0]
    b["size"] = 1 << 40
    return {"names": (b["digest"], "images/blobs/sha256/" + b["digest"].split(":")[1])}


def _dup_first_entry(which):
    def craft(c: Crafted, x: Ctx):
        c.add(file(which, b'{"format": "aas-bundle/v1"}\n' if which == "bundle.json" else b"\0" * 64), listed=False)
    return craft


def _bundle_json_symlink(c: Crafted, x: Ctx):
    c.extra_first.append(symlink("bundle.json", f"/{x.canary_rel}/victim.txt"))


def _rename_release(doc, new):
    old = doc["releases"][0]["name"]
    doc["releases"][0]["name"] = new
    for img in doc["images"]:
        for s in img.get("sites", []):
            if s.get("release") == old:
                s["release"] = new


def _doc(edit):
    def craft(c: Crafted, x: Ctx):
        edit(c.doc, x)
    return craft


def _nest(setter, text):
    def craft(c: Crafted, x: Ctx):
        c.set_raw(setter, text)
    return craft


def _many_entries(c: Crafted, x: Ctx):
    c.add(*[file(f"k8s/bomb/{i:05d}") for i in range(5000)], listed=False)


def _zstd_bomb(c: Crafted, x: Ctx):
    return {"bomb": dict(name="k8s/zeros.bin", size=1 << 30, listed=False)}


def _trailing(make):
    def craft(c: Crafted, x: Ctx):
        return {"trailing": make()}
    return craft


GARBAGE = b"\xffgarbage after the end of the archive\n" + bytes(range(1, 256)) * 40
EXTRA = file("k8s/extra.txt", b"smuggled after the end marker\n").to_bytes() + b"\0" * 1024

DEEP = 100_000
CASES: dict[str, Case] = {
    # names with "..", absolute names
    "dotdot": Case(_unlisted(lambda x: file("../evil.txt", b"pwned")), ("../evil.txt",), ("..",)),
    "dotdot-deep": Case(_unlisted(lambda x: file("k8s/../../evil.txt", b"pwned")), ("k8s/../../evil.txt",), ("..",)),
    "dotdot-into-canary": Case(
        _unlisted(lambda x: file("k8s/" + "../" * x.levels + x.canary_rel + "/dotdot.txt", b"pwned")),
        ("/dotdot.txt",), ("..",)),
    "absolute": Case(_unlisted(lambda x: file(f"/{x.canary_rel}/abs.txt", b"pwned")), ("/abs.txt",), ("absolute",)),
    "absolute-folder": Case(_unlisted(lambda x: folder(f"/{x.canary_rel}/absdir"),
                                      lambda x: file(f"/{x.canary_rel}/absdir/f", b"pwned")), ("/absdir",),
                            ("absolute",)),
    # symlinks out, then a file through them
    "symlink-out-then-file": Case(_added(lambda x: symlink("k8s/out", "../" * x.levels + x.canary_rel),
                                         lambda x: file("k8s/out/through.txt", b"pwned")),
                                  ("k8s/out",), ("outside", "symlink")),
    "symlink-absolute-then-file": Case(_added(lambda x: symlink("k8s/abs", f"/{x.canary_rel}"),
                                              lambda x: file("k8s/abs/through.txt", b"pwned")),
                                       ("k8s/abs",), ("absolute", "outside", "symlink")),
    "symlink-then-same-name-file": Case(_added(lambda x: symlink("k8s/ln", f"/{x.canary_rel}/victim.txt"),
                                               lambda x: file("k8s/ln", b"pwned through a symlink\n")),
                                        ("k8s/ln",)),
    # chains that climb physically while each link looks inside k8s/
    "chain-16": Case(_chain16(), _chain_names() + ("/victim.txt",), ("symlink", "outside", "link")),
    "chain-16-setuid": Case(_chain16(0o4755, "x/victim.txt"), _chain_names() + ("/x/victim.txt",),
                            ("symlink", "outside", "link")),
    "chain-short": Case(_short_chain, ("k8s/t", "k8s/u", "k8s/v", "k8s/w", "k8s/x"), ("symlink", "outside", "link")),
    # link and special types
    "hardlink-absolute": Case(_added(lambda x: hardlink("k8s/hard", "/etc/passwd")), ("k8s/hard",), ("hard link",)),
    "hardlink-inside": Case(_added(lambda x: hardlink("k8s/hard", "k8s/README.txt")), ("k8s/hard",), ("hard link",)),
    "hardlink-to-canary-then-file": Case(_added(lambda x: hardlink("k8s/hl", f"/{x.canary_rel}/victim.txt"),
                                                lambda x: file("k8s/hl", b"pwned through a hard link\n")),
                                         ("k8s/hl",), ("hard link",)),
    "char-device": Case(_added(lambda x: device("k8s/null", "char", 1, 3)), ("k8s/null",), ("character device",)),
    "block-device": Case(_added(lambda x: device("k8s/disk", "block", 8, 0)), ("k8s/disk",), ("block device",)),
    "fifo": Case(_added(lambda x: fifo("k8s/fifo")), ("k8s/fifo",), ("fifo",)),
    # duplicates
    "duplicate-file": Case(_unlisted(lambda x: file("k8s/README.txt", b"a second copy\n")), ("k8s/README.txt",),
                           ("second", "twice", "duplicate")),
    "duplicate-blob": Case(_dup_blob, ("@NAMES",), ("second", "twice", "duplicate")),
    "duplicate-bundle-json": Case(_dup_first_entry("bundle.json"), ("bundle.json",), ("second", "twice", "duplicate"),
                                  kind="stream"),
    # (unsigned, it is the only signature, at the wrong place: named, for whatever reason)
    "duplicate-signature": Case(_dup_first_entry("bundle.json.sig"), ("bundle.json.sig",), kind="stream"),
    "bundle-json-symlink-first": Case(_bundle_json_symlink, ("bundle.json",), kind="stream", before_signature=True),
    # modes
    "setuid-file": Case(_added(lambda x: file("k8s/suid.sh", b"#!/bin/sh\nid\n", mode=0o4755)), ("k8s/suid.sh",),
                        clean_modes=True),
    "setgid-folder": Case(_added(lambda x: folder("k8s/sgid", 0o2775), lambda x: file("k8s/sgid/f", b"f\n")),
                          ("k8s/sgid",), clean_modes=True),
    "sticky-folder": Case(_added(lambda x: folder("k8s/sticky", 0o1777)), ("k8s/sticky",), clean_modes=True),
    # sizes that lie
    "size-header-bigger": Case(_readme(lambda d: d + b"x" * 100_000), ("k8s/README.txt",), ("size",)),
    "size-header-smaller": Case(_readme(lambda d: d[:3]), ("k8s/README.txt",), ("size",)),
    "size-listed-2GiB": Case(_listing("k8s/README.txt", "size", 2 << 30), ("k8s/README.txt",), ("size",)),
    "size-blob-listed-1TiB": Case(_blob_listed_huge, ("@NAMES",), ("size",)),
    "header-size-lies": Case(_readme_header_lies, ("k8s/README.txt", "truncated")),
    "header-1TiB-then-eof": Case(_huge_header, ("k8s/huge.bin", "truncated")),
    # bombs
    "zstd-bomb-1GiB-unlisted": Case(_zstd_bomb, ("k8s/zeros.bin", "bomb", "limit"), zst=True),
    "tar-bomb-5000-entries": Case(_many_entries, ("k8s/bomb/", "bomb", "limit"), zst=True),
    "nesting-array": Case(_nest(lambda d, v: d.__setitem__("platforms", v), "[" * DEEP + "]" * DEEP),
                          ("bundle.json",), ("deep", "nest", "depth"), kind="doc", inspect_reads=True),
    "nesting-object": Case(_nest(lambda d, v: d["releases"][0].__setitem__("values", v),
                                 '{"a":' * DEEP + "1" + "}" * DEEP),
                           ("bundle.json",), ("deep", "nest", "depth"), kind="doc", inspect_reads=True),
    "nesting-unclosed": Case(_nest(lambda d, v: d.__setitem__("platforms", v), "[" * DEEP),
                             ("bundle.json",), ("deep", "nest", "depth", "json"), kind="doc", inspect_reads=True),
    # (the depth cap is the implementation's to choose: only refused, without a crash)
    "nesting-1000": Case(_nest(lambda d, v: d.__setitem__("platforms", v), "[" * 1000 + "]" * 1000),
                         ("bundle.json",), kind="doc", inspect_reads=True),
    # trailing data
    "trailing-zeros": Case(_trailing(lambda: b"\0" * 10240), (), kind="stream", fine=True),
    "trailing-zeros-zst": Case(_trailing(lambda: b"\0" * 10240), (), kind="stream", fine=True, zst=True),
    "trailing-garbage": Case(_trailing(lambda: GARBAGE), ("@OFFSET",), kind="stream"),
    "trailing-entry": Case(_trailing(lambda: EXTRA), ("@OFFSET", "k8s/extra.txt"), kind="stream"),
    "trailing-entry-zst": Case(_trailing(lambda: EXTRA), ("@OFFSET", "k8s/extra.txt"), kind="stream", zst=True),
    "garbage-after-zstd-frame": Case(lambda c, x: {"compressed_trailing": b"not zstd" * 100}, ("zstd",),
                                     kind="stream", zst=True),
    # hostile names and versions (bundle.json fields)
    "version-newline": Case(_doc(lambda d, x: d.__setitem__("version", f"1.0.0\ntouch /{x.canary_rel}/pwned")),
                            ("version",), kind="doc", escaped_only=True),
    "name-newline": Case(_doc(lambda d, x: d.__setitem__("name", f"demo\ntouch /{x.canary_rel}/pwned")),
                         ("name",), kind="doc", escaped_only=True),
    "release-quote": Case(_doc(lambda d, x: _rename_release(d, f"web'; touch /{x.canary_rel}/pwned; echo '")),
                          ("releases[0].name", "release name"), kind="doc"),
    "release-dollar": Case(_doc(lambda d, x: _rename_release(d, f"$(touch /{x.canary_rel}/pwned)")),
                           ("releases[0].name", "release name"), kind="doc"),
    "release-newline": Case(_doc(lambda d, x: _rename_release(d, f"web\ntouch /{x.canary_rel}/pwned")),
                            ("releases[0].name", "release name"), kind="doc"),
    "release-upper": Case(_doc(lambda d, x: _rename_release(d, "Web")), ("releases[0].name", "release name"),
                          kind="doc"),
    "release-54-chars": Case(_doc(lambda d, x: _rename_release(d, "w" * 54)), ("releases[0].name", "release name"),
                             kind="doc"),
    "namespace-underscore": Case(_doc(lambda d, x: d["releases"][0].__setitem__("namespace", "shop_ns")),
                                 ("releases[0].namespace", "namespace"), kind="doc"),
    "namespace-dollar": Case(_doc(lambda d, x: d["releases"][0].__setitem__("namespace", "$(id)")),
                             ("releases[0].namespace", "namespace"), kind="doc"),
    "release-chart-dotdot": Case(_doc(lambda d, x: d["releases"][0].__setitem__("chart", "../" * 8 + x.canary_rel)),
                                 ("releases[0].chart", "../../"), kind="doc"),
    "release-values-absolute": Case(_doc(lambda d, x: d["releases"][0].__setitem__("values", ["/etc/passwd"])),
                                    ("releases[0].values", "/etc/passwd"), kind="doc"),
    "plain-manifest-dotdot": Case(_doc(lambda d, x: d.__setitem__("plain_manifests", ["../../../../etc/passwd"])),
                                  ("plain_manifests", "../../../../etc/passwd"), kind="doc"),
}


def crafted(x: Ctx, case_id: str, sign: str) -> tuple[Path, dict]:
    """The case's bundle in the sign variant (made once per module); returns (path, info)
    where info holds the offset of trailing data."""
    key = (case_id, sign)
    if key in x.cache:
        return x.cache[key]
    case = CASES[case_id]
    c = x.base["zst" if case.zst else "tar"].copy()
    kw = case.craft(c, x) or {}
    signer = hostile.sign_mode_key(sign, x.trusted, x.other)
    # A neutral file name: messages quote the path, and must not pass for naming the entry.
    path = x.root / "crafted" / f"s{SIGNS.index(sign)}" / (f"c{list(CASES).index(case_id):02d}" + (".tar.zst" if case.zst else ".tar"))
    path.parent.mkdir(parents=True, exist_ok=True)
    info = {"names": kw.pop("names", ())}
    if "bomb" in kw:
        c.write_bomb(path, signer, **kw["bomb"])
    else:
        if "trailing" in kw:
            info["offset"] = len(c.tar(signer, end=b"\0" * 1024))
        c.write(path, signer, **kw)
    x.cache[key] = (path, info)
    return path, info


# ---- running one command --------------------------------------------------------------------

DRY_PLANT = 'ln -s "$0" "$TMPDIR/aas-load-dry-$$" && exec "$@"'


@dataclass
class Place:
    """The test's folders: the work root (cwd, --out, TMPDIR) three levels below the
    test's folder, so that relative escapes land inside the test's folder."""
    top: Path

    @property
    def work(self) -> Path:
        return self.top / "w" / "d" / "e" / "run"

    @property
    def out(self) -> Path:
        return self.work / "out"

    @property
    def tmp(self) -> Path:
        return self.work / "tmp"


def command(x: Ctx, cmd: str, bundle: Path, place: Place, prefix: str) -> tuple[list, dict, tuple]:
    """(arguments, extra env, wrapper) of ``cmd`` on ``bundle``."""
    key = ["--key", x.trusted.pub]
    load = ["load", bundle, "--registry", f"{x.registry.host}/{prefix}", "--out", place.out, "--plain-http"]
    env = {"TMPDIR": str(place.tmp)}
    wrapper = ()
    if cmd.startswith("dry-run"):
        wrapper = ("sh", "-c", DRY_PLANT, str(x.canary / "dry-target"))
    args = {
        "verify": ["verify", bundle, *key],
        "verify-nokey": ["verify", bundle],
        "inspect": ["inspect", bundle, *key],
        "dry-run": [*load, *key, "--dry-run"],
        "load": [*load, *key],
        "dry-run-skip": [*load, "--insecure-skip-signature", "--dry-run"],
        "load-skip": [*load, "--insecure-skip-signature"],
    }[cmd]
    return args, env, wrapper


def repos_under(reg, prefix: str) -> list[str]:
    """Repositories under `prefix` that hold a tag: a refused bundle may leave blobs behind
    (load streams them as it reads; content-addressed data that nothing names), never a
    manifest under a tag."""
    r = RegistryClient(reg).request("GET", "/v2/_catalog")
    assert r.status == 200, r.body
    out = []
    for n in json.loads(r.body).get("repositories") or []:
        if not n.startswith(prefix + "/"):
            continue
        t = RegistryClient(reg).request("GET", f"/v2/{n}/tags/list")
        if t.status == 200 and (json.loads(t.body).get("tags") or []):
            out.append(n)
    return out


def raw_injection(text: str) -> list[str]:
    """Lines that a raw newline from the bundle started: they begin with the payload."""
    return [line for line in text.splitlines() if line.lstrip().startswith("touch ")]


def named(stderr: str, names: tuple, info: dict) -> bool:
    for n in names:
        if n == "@OFFSET":
            off = info["offset"]
            if re.search(rf"\b({off}|{off - 1024})\b", stderr):
                return True
        elif n == "@NAMES":
            if any(m in stderr for m in info["names"]):
                return True
        elif n in stderr:
            return True
    return False


def outcome(case: Case, sign: str, cmd: str) -> str:
    """What the run must do: "refuse-signature", "refuse-named", "pass", "clean-modes",
    "escaped" (may pass, prints the field escaped) or "no-crash" (inspect of a hostile
    entry: inspect does not read the archive past bundle.json)."""
    authenticated = sign == "trusted" or cmd in ("verify-nokey", "dry-run-skip", "load-skip")
    if not authenticated:
        return "refuse-signature"
    if case.fine:
        return "pass"
    if cmd == "inspect":
        if case.inspect_reads:
            return "refuse-named"
        return "escaped" if case.kind == "doc" else "no-crash"
    if case.clean_modes:
        return "clean-modes"
    if case.escaped_only and cmd in ("verify", "verify-nokey"):
        return "escaped"
    return "refuse-named"


MATRIX = [(c, s, m) for c in CASES for s in SIGNS for m in COMMANDS[s]]


@pytest.mark.parametrize("case_id,sign,cmd", MATRIX, ids=[f"{c}-{s}-{m}" for c, s, m in MATRIX])
def test_hostile_bundle(ctx, case_id, sign, cmd):
    case = CASES[case_id]
    bundle, info = crafted(ctx, case_id, sign)
    ctx.reset_canary()
    place = ctx.place()
    tmp_path = place.top
    place.tmp.mkdir(parents=True)
    prefix = "p" + hashlib.sha256(f"{case_id}/{sign}/{cmd}".encode()).hexdigest()[:10]
    args, env, wrapper = command(ctx, cmd, bundle, place, prefix)

    canary_before = hostile.tree_digest(ctx.canary)
    top_before = hostile.tree_digest(tmp_path)
    try:
        p = ctx.run(*args, env=env, cwd=place.work, wrapper=wrapper, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{cmd} did not finish within 120 s")
    report = f"{cmd} exit {p.returncode}\nstdout:\n{p.stdout[-3000:]}\nstderr:\n{p.stderr[-3000:]}"
    problems = []

    # No crash.
    if p.returncode < 0 or p.returncode >= 128:
        problems.append(f"crashed (exit status {p.returncode})")

    want = outcome(case, sign, cmd)
    ok = p.returncode == 0
    if want == "refuse-signature":
        if p.returncode not in (1, 2):
            problems.append("an unauthenticated bundle was not refused")
        if not (SIGNATURE_WORDS.search(p.stderr) or (case.inspect_reads and named(p.stderr, case.why, info))
                or (case.before_signature and named(p.stderr, case.names, info))):
            problems.append("the message does not mention the signature")
        for h in case.hidden(info):
            if h in p.stderr:
                problems.append(f"names {h!r}: it read the archive past bundle.json although the signature failed")
    elif want == "refuse-named":
        if p.returncode not in (1, 2):
            problems.append("the hostile bundle was not refused")
        if case.names and not named(p.stderr, case.names, info):
            problems.append(f"the message names none of {case.names}")
        if case.why and not any(w.lower() in p.stderr.lower() for w in case.why):
            problems.append(f"the message says none of {case.why}")
    elif want == "pass":
        if not ok:
            problems.append("a harmless bundle (zero padding after the end marker) was refused")
    elif want == "clean-modes":
        if not ok and not named(p.stderr, case.names, info):
            problems.append(f"refused without naming {case.names}")
    elif want in ("escaped", "no-crash"):
        if p.returncode not in (0, 1, 2):
            problems.append(f"exit status {p.returncode}")

    injected = raw_injection(p.stdout + "\n" + p.stderr)
    if injected:
        problems.append(f"printed a raw control character from the bundle: {injected[:2]}")

    # Nothing changed outside the command's own folders.
    diff = hostile.tree_diff(canary_before, hostile.tree_digest(ctx.canary))
    if diff:
        problems.append(f"the canary tree outside the work root changed: {diff[:5]}")
    skip = set()
    loaded = cmd in ("load", "load-skip")
    if loaded:
        rel = os.path.relpath(place.work, tmp_path)
        skip = {f"{rel}/out.aas-load"} | ({f"{rel}/out"} if ok and want in ("pass", "clean-modes") else set())
    after = hostile.tree_digest(tmp_path, skip=skip)
    if cmd.startswith("dry-run"):
        left = [k for k in after if k.startswith(os.path.relpath(place.tmp, tmp_path) + "/")]
        planted = [k for k in left if os.path.basename(k).startswith("aas-load-dry-") and after[k][0] == "link"]
        if [k for k in left if k not in planted]:
            problems.append(f"the dry run left files in TMPDIR: {[k for k in left if k not in planted][:5]}")
        for k in planted:
            if after[k][2] != str(ctx.canary / "dry-target"):
                problems.append(f"the planted symlink {k} was changed")
        after = {k: v for k, v in after.items() if k not in left}
    diff = hostile.tree_diff(top_before, after)
    if diff:
        problems.append(f"files changed outside the command's own folders: {diff[:6]}")
    if loaded:
        work = Path(f"{place.out}.aas-load")
        if work.exists():
            kept = [str(q.relative_to(work)) for q in work.rglob("*")
                    if q.name in ("k8s", "images", "bundle.json") or q.name in {"README.txt", "app.yaml"}]
            if kept and not ok:
                problems.append(f"{work} keeps what was extracted from a refused bundle: {kept[:5]}")
        if not ok and place.out.exists():
            problems.append(f"--out {place.out} was written although the load failed")
        pushed = repos_under(ctx.registry, prefix)
        if pushed and not ok:
            problems.append(f"pushed {pushed} although the load failed")
        if ok and want == "clean-modes":
            for q in place.out.rglob("*"):
                m = q.lstat().st_mode
                if m & 0o7000:
                    problems.append(f"{q} has mode {m & 0o7777:04o}: setuid/setgid/sticky bits from the bundle")
    assert not problems, "\n".join(problems) + "\n" + report


# ---- the signature format the harness writes is aas-bundle's ------------------------------------

def test_harness_signature_is_openssl_ed25519(ctx, tmp_path):
    """bundle.json.sig as hostile.Key.sign writes it is what `openssl pkeyutl -sign -rawin`
    writes, and a re-signed unaltered bundle verifies: only the hostile part of a crafted
    bundle is wrong."""
    c = ctx.base["tar"].copy()
    doc = tmp_path / "bundle.json"
    doc.write_bytes(c.doc_bytes())
    subprocess.run(["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", ctx.trusted.private, "-in", doc,
                    "-out", tmp_path / "sig"], check=True)
    assert (tmp_path / "sig").read_bytes() == ctx.trusted.sign(doc.read_bytes())
    out = c.write(tmp_path / "re.tar", ctx.trusted)
    p = ctx.run("verify", out, "--key", ctx.trusted.pub)
    assert p.returncode == 0, p.stderr
    p = ctx.run("verify", c.copy().write(tmp_path / "other.tar", ctx.other), "--key", ctx.other.pub)
    assert p.returncode == 0, p.stderr


# ---- peak disk written before an unauthenticated bundle is refused ---------------------------

LIMIT = 64 << 20


@pytest.fixture(scope="module")
def bombs(ctx):
    """{(kind, sign): path}: the 2 GiB bomb as a ~90 KB .tar.zst and as a sparse plain tar,
    signed by another key and unsigned."""
    made = {}
    for sign in ("other", "unsigned"):
        key = hostile.sign_mode_key(sign, ctx.trusted, ctx.other)
        # Neutral names: messages quote the path ("unsigned", "bomb" must come from the text).
        n = SIGNS.index(sign)
        made[("zst", sign)] = ctx.base["tar"].copy().write_bomb(ctx.root / "z" / f"z{n}.tar.zst", key)
        made[("sparse", sign)] = ctx.base["tar"].copy().write_sparse_bomb(ctx.root / "z" / f"y{n}.tar", key)
    return made


def measured(ctx, args, place, timeout=120):
    place.tmp.mkdir(parents=True, exist_ok=True)
    env = ctx.run.env({"TMPDIR": str(place.tmp)})
    return hostile.run_measured([str(ctx.run.binary), *map(str, args)], env, place.work, timeout=timeout,
                                watch=(place.work, ))


def test_bomb_is_small_and_what_it_claims(ctx, bombs):
    """The bomb itself: ~90 KB on disk, 2 GiB of zeros listed with their real sha256 (so
    that without a signature nothing but its size gives it away)."""
    z = bombs[("zst", "unsigned")]
    assert z.stat().st_size < 100_000
    # Only the start of the stream is decompressed (the whole is 2 GiB).
    with subprocess.Popen(["zstd", "-dc", str(z)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as zp:
        start = zp.stdout.read(4 << 20)
        zp.kill()
    with tarfile.open(fileobj=io.BytesIO(start), mode="r|") as t:
        first = t.next()
        assert first.name == "bundle.json"
        doc = json.loads(t.extractfile(first).read())
    assert {"path": "k8s/zeros.bin", "type": "file", "mode": "0644", "size": hostile.TWO_GIB,
            "sha256": hostile.SHA256_2GIB_ZEROS} in doc["files"]
    s = bombs[("sparse", "other")]
    assert s.stat().st_size > hostile.TWO_GIB and s.stat().st_blocks * 512 < 1 << 20


@pytest.mark.parametrize("kind", ["zst", "sparse"])
@pytest.mark.parametrize("sign", ["other", "unsigned"])
@pytest.mark.parametrize("cmd", ["load", "verify"])
def test_unauthenticated_bomb_writes_and_reads_little(ctx, bombs, kind, sign, cmd):
    """With --key, a bomb signed by another key or unsigned is refused right after
    bundle.json: under 64 MiB written (write syscalls, /proc/PID/io wchar; and what is on
    disk under the work folder and TMPDIR while it runs) and, for the plain tar, read."""
    place = ctx.place()
    place.work.mkdir(parents=True)
    prefix = f"q{kind}{SIGNS.index(sign)}"
    args = ["verify", bombs[(kind, sign)], "--key", ctx.trusted.pub] if cmd == "verify" else [
        "load", bombs[(kind, sign)], "--registry", f"{ctx.registry.host}/{prefix}", "--out", place.out,
        "--plain-http", "--key", ctx.trusted.pub]
    r = measured(ctx, args, place)
    report = (f"exit {r['rc']}, wrote {r['wchar']} bytes (write_bytes {r['write_bytes']}), read {r['rchar']}, "
              f"peak on disk {r['peak_du']}\nstderr:\n{r['stderr'][-3000:]}")
    assert not r["timed_out"], report
    assert r["rc"] == 1, report
    assert SIGNATURE_WORDS.search(r["stderr"]), report
    assert 0 <= r["wchar"] < LIMIT, report
    assert r["peak_du"] < LIMIT, report
    if kind == "sparse":
        assert 0 <= r["rchar"] < LIMIT, "read on past bundle.json: " + report
    assert not place.out.exists(), report
    assert not repos_under(ctx.registry, prefix)


def test_bomb_without_key_stops_bounded(ctx, bombs):
    """Integrity-only verify caps what a ~90 KB archive may expand to by the archive's own
    size, not by its bundle.json: the 2 GiB listing is refused as a bomb, well before 2
    GiB (no 'byte N' past 1 GiB in the message)."""
    place = ctx.place()
    place.work.mkdir(parents=True)
    r = measured(ctx, ["verify", bombs[("zst", "unsigned")]], place)
    report = f"exit {r['rc']}, wrote {r['wchar']}\nstderr:\n{r['stderr'][-3000:]}"
    assert not r["timed_out"], report
    assert r["rc"] == 1, report
    assert re.search(r"bomb|limit", r["stderr"], re.I), report
    far = [int(n) for n in re.findall(r"byte (\d+)", r["stderr"]) if int(n) >= 1 << 30]
    assert not far, f"read on to byte {far}: " + report
    assert r["wchar"] < LIMIT, report
