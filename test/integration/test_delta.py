"""Delta bundles (issue 15): load writes inventory.json, `pack --have` leaves out every
layer the offline registry holds, load checks every assumption before it pushes anything.

Version 1 of an app (three images sharing two base layers) is packed and loaded into R;
version 2 changes one layer of one image and adds one image. Digests are checked with the
raw registry API and the registry's storage folder, never with aas-bundle itself.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import time
from pathlib import Path

import pytest

from harness import bundles, images
from harness.checks import assert_ok

PREFIX = "airgap"

BASE1 = images.make_layer("dl-base1", 50_000)
BASE2 = images.make_layer("dl-base2", 30_000)
WEB1 = images.make_layer("dl-web1", 6_000)
WEB2 = images.make_layer("dl-web2", 7_000)   # v2's changed layer
API1 = images.make_layer("dl-api1", 5_000)
WORKER1 = images.make_layer("dl-worker1", 4_000)
NEW1 = images.make_layer("dl-new1", 8_000)   # the new image's own layers
NEW2 = images.make_layer("dl-new2", 3_000)


def flags(reg) -> list[str]:
    return ["--plain-http"] if reg.scheme == "http" else ["--ca-file", reg.ca_file]


@pytest.fixture
def app(plain_registry, run_aas, workdir, key):
    """v1 and v2 of the app in the source registry, v1 packed and loaded into R, with a
    signed inventory. Returns a namespace of paths, registries and objects."""
    src = plain_registry
    web_v1 = images.oci_image([BASE1, BASE2, WEB1])
    web_v2 = images.oci_image([BASE1, BASE2, WEB2])
    api = images.docker_image([BASE1, BASE2, API1])
    worker = images.oci_image([BASE1, WORKER1])
    new = images.oci_image([BASE1, NEW1, NEW2])
    images.push(src, "app/web", "1", web_v1)
    images.push(src, "app/web", "2", web_v2)
    images.push(src, "app/api", "1", api)
    images.push(src, "app/worker", "1", worker)
    images.push(src, "app/new", "1", new)
    v1_refs = {src.ref("app/web", "1"): web_v1, src.ref("app/api", "1"): api, src.ref("app/worker", "1"): worker}
    v2_refs = {src.ref("app/web", "2"): web_v2, src.ref("app/api", "1"): api, src.ref("app/worker", "1"): worker,
               src.ref("app/new", "1"): new}

    class App:
        pass

    a = App()
    a.src, a.v1_refs, a.v2_refs = src, v1_refs, v2_refs
    a.m1 = bundles.project(workdir / "v1", list(v1_refs), version="1.0.0")
    a.m2 = bundles.project(workdir / "v2", list(v2_refs), version="2.0.0")
    a.cache = workdir / "cache"
    a.v1 = workdir / "bundles" / "app-1.tar"
    assert_ok(run_aas("pack", "-f", a.m1, "-o", a.v1, "--key", f"{key}.key", "--plain-http", "--cache", a.cache))
    p = run_aas("keygen", "-o", workdir / "offline")
    assert p.returncode == 0, p.stderr
    a.offline = workdir / "offline"
    return a


def pack(run_aas, a, key, out, *extra, manifest=None):
    return run_aas("pack", "-f", manifest or a.m2, "-o", out, "--key", f"{key}.key", "--plain-http",
                   "--cache", a.cache, "--json", *extra)


def load(run_aas, bundle, reg, out, key, *extra, timeout=180):
    return run_aas("load", bundle, "--registry", f"{reg.host}/{PREFIX}", "-o", out, "--key", f"{key}.pub",
                   "--json", *flags(reg), *extra, timeout=timeout)


def blob_members(bundle: Path) -> dict[str, int]:
    """digest -> size of every blob entry in the bundle's tar."""
    with tarfile.open(bundle) as t:
        return {"sha256:" + m.name.rsplit("/", 1)[1]: m.size for m in t.getmembers()
                if m.isfile() and m.name.startswith("images/blobs/sha256/")}


def linked_blobs(reg) -> set[str]:
    """Every (repository, digest) a registry's storage links: a blob pushed or mounted into
    a repository leaves a `_layers/sha256/<hex>/link` there."""
    root = Path(reg.storage_dir) / "docker/registry/v2/repositories"
    out = set()
    if not root.exists():
        return out
    for dirpath, _dirs, files in os.walk(root):
        parts = Path(dirpath).relative_to(root).parts
        if "link" in files and "_layers" in parts:
            i = parts.index("_layers")
            out.add(("/".join(parts[:i]), "sha256:" + parts[-1]))
    return out


def manifests_stored(reg) -> list[str]:
    root = Path(reg.storage_dir) / "docker/registry/v2/repositories"
    if not root.exists():
        return []
    return [dirpath for dirpath, _d, files in os.walk(root) if "_manifests" in dirpath and "link" in files]


def inv_blobs(path: Path) -> set[tuple]:
    inv = json.loads(Path(path).read_text())
    return {(b["digest"], b["size"], tuple(b["repositories"])) for b in inv["blobs"]}


@pytest.fixture
def loaded_v1(app, registry_factory, run_aas, workdir, key):
    """R with v1 loaded; OUT1/inventory.json signed by the offline key."""
    r = registry_factory("plain")
    out1 = workdir / "out1"
    p = load(run_aas, app.v1, r, out1, key, "--inventory-key", f"{app.offline}.key")
    assert_ok(p)
    assert json.loads(p.stdout)["inventory"] == str(out1 / "inventory.json")
    return r, out1


def test_inventory_from_load(app, loaded_v1):
    r, out1 = loaded_v1
    inv = json.loads((out1 / "inventory.json").read_text())
    assert inv["format"] == "aas-bundle-inventory/v1"
    assert inv["registry"] == r.host and inv["prefix"] == PREFIX
    assert inv["from"][0]["kind"] == "bundle"
    assert inv["from"][0]["sha256"] == images.sha256_digest(bundles.bundle_json_bytes(app.v1))
    # Every image with its tag and digest, every layer and config with its size and repositories.
    by_repo = {i["repository"]: i for i in inv["images"]}
    for ref, obj in app.v1_refs.items():
        repo = f"{PREFIX}/{ref.split('/', 1)[1].rsplit(':', 1)[0]}"
        assert by_repo[repo]["digest"] == obj.digest
        assert by_repo[repo]["tag"] == ref.rsplit(":", 1)[1]
        assert obj.digest in by_repo[repo]["manifests"]
    blobs = {b["digest"]: b for b in inv["blobs"]}
    assert blobs[BASE1.digest]["size"] == BASE1.size
    assert sorted(blobs[BASE1.digest]["repositories"]) == [f"{PREFIX}/app/api", f"{PREFIX}/app/web", f"{PREFIX}/app/worker"]
    assert blobs[WEB1.digest]["repositories"] == [f"{PREFIX}/app/web"]
    expected = {BASE1.digest, BASE2.digest, WEB1.digest, API1.digest, WORKER1.digest}
    expected |= {o.config_digest for o in app.v1_refs.values()}
    assert set(blobs) == expected
    assert [b["digest"] for b in inv["blobs"]] == sorted(blobs)  # sorted for reproducibility
    assert (out1 / "inventory.json.sig").stat().st_size == 64


def test_inventory_command_gives_the_same_blobs(app, loaded_v1, run_aas, workdir):
    r, out1 = loaded_v1
    out = workdir / "inv-cmd.json"
    p = run_aas("inventory", "--registry", f"{r.host}/{PREFIX}", "--from-lock", out1 / "images.lock.json",
                "-o", out, "--key", f"{app.offline}.key", *flags(r))
    assert_ok(p)
    assert inv_blobs(out) == inv_blobs(out1 / "inventory.json")
    a = json.loads(out.read_text())
    b = json.loads((out1 / "inventory.json").read_text())
    assert a["images"] == b["images"]
    assert a["from"][0]["kind"] == "lock"
    assert a["from"][0]["sha256"] == images.sha256_digest((out1 / "images.lock.json").read_bytes())
    assert (workdir / "inv-cmd.json.sig").stat().st_size == 64
    # Without --key: written unsigned; a public key is refused before the registry is asked.
    p = run_aas("inventory", "--registry", f"{r.host}/{PREFIX}", "--from-lock", out1 / "images.lock.json",
                "-o", out, "--key", f"{app.offline}.pub", *flags(r))
    assert p.returncode == 2, p.stderr
    assert "PRIVATE" in p.stderr


def test_delta_pack_and_load(app, loaded_v1, registry_factory, run_aas, workdir, key):
    r, out1 = loaded_v1
    delta = workdir / "bundles" / "app-2-delta.tar"
    p = pack(run_aas, app, key, delta, "--have", out1 / "inventory.json", "--have-key", f"{app.offline}.pub")
    assert_ok(p)
    summary = json.loads(p.stdout)
    assert summary["delta"] is True
    doc = bundles.bundle_json(delta)

    # Stored: exactly the changed layer, the new image's own layers, every config and manifest.
    layers = {b["digest"]: b["size"] for b in doc["blobs"] if b["kind"] == "layer"}
    assert layers == {WEB2.digest: WEB2.size, NEW1.digest: NEW1.size, NEW2.digest: NEW2.size}
    configs = {b["digest"] for b in doc["blobs"] if b["kind"] == "config"}
    assert configs == {o.config_digest for o in app.v2_refs.values()}
    manifests = {b["digest"] for b in doc["blobs"] if b["kind"] in ("manifest", "index")}
    assert manifests == {o.digest for o in app.v2_refs.values()}
    members = blob_members(delta)
    assert members == {b["digest"]: b["size"] for b in doc["blobs"]}
    config_bytes = sum(len(o.config) for o in app.v2_refs.values())
    manifest_bytes = sum(len(o.manifest) for o in app.v2_refs.values())
    assert sum(members.values()) == WEB2.size + NEW1.size + NEW2.size + config_bytes + manifest_bytes
    assert summary["bytes_stored"] == sum(members.values())

    # What it assumes: the layers v2 needs that the inventory lists, with their base.
    inv_sha = images.sha256_digest((out1 / "inventory.json").read_bytes())
    assert doc["base"] == [{"kind": "inventory", "sha256": inv_sha, "registry": r.host, "prefix": PREFIX}]
    assumed = {a["digest"]: a for a in doc["assumed"]}
    assert set(assumed) == {BASE1.digest, BASE2.digest, API1.digest, WORKER1.digest}
    assert assumed[BASE1.digest]["size"] == BASE1.size and assumed[BASE1.digest]["base"] == 0
    assert set(assumed[BASE1.digest]["images"]) == set(app.v2_refs)
    assert assumed[API1.digest]["images"] == [app.src.ref("app/api", "1")]
    assert assumed[API1.digest]["repositories"] == [f"{PREFIX}/app/api"]
    assumed_bytes = BASE1.size + BASE2.size + API1.size + WORKER1.size

    # verify and inspect show the assumptions.
    p = run_aas("verify", delta, "--key", f"{key}.pub", "--json")
    assert_ok(p)
    v = json.loads(p.stdout)
    assert v["ok"] and v["delta"]["delta"] is True
    assert v["delta"]["assumed"] == {"blobs": 4, "bytes": assumed_bytes}
    assert v["delta"]["bases"][0]["sha256"] == inv_sha
    p = run_aas("verify", delta, "--key", f"{key}.pub")
    assert_ok(p)
    assert "delta: assumes 4 blobs" in p.stdout and inv_sha in p.stdout
    p = run_aas("inspect", delta, "--json")
    assert_ok(p)
    i = json.loads(p.stdout)["delta"]
    assert i["delta"] is True and i["assumed"]["bytes"] == assumed_bytes
    assert i["bytes_full"] == i["bytes_stored"] + assumed_bytes == sum(members.values()) + assumed_bytes
    p = run_aas("inspect", delta)
    assert_ok(p)
    assert "delta: assumes 4 blobs" in p.stdout and f"of {r.host}/{PREFIX}" in p.stdout

    # A dry run checks the assumptions and pushes nothing.
    p = load(run_aas, delta, r, workdir / "dry", key, "--dry-run")
    assert_ok(p)
    d = json.loads(p.stdout)["delta"]
    assert d["assumed_blobs"] == 4 and d["assumed_present"] + d["assumed_mounts"] >= 4
    assert d["assumed_mounts"] == 1  # base1 into the new image's repository
    assert not (workdir / "dry").exists()

    # Loading the delta into R gives what a full v2 bundle gives in a fresh registry.
    out2 = workdir / "out2"
    p = load(run_aas, delta, r, out2, key)
    assert_ok(p)
    s = json.loads(p.stdout)
    assert s["delta"]["assumed_blobs"] == 4 and s["delta"]["assumed_mounts"] == 1
    assert s["bytes_uploaded"] == WEB2.size + NEW1.size + NEW2.size + \
        sum(len(o.config) for ref, o in app.v2_refs.items() if "app/web" in ref or "app/new" in ref)

    full = workdir / "bundles" / "app-2-full.tar"
    assert_ok(pack(run_aas, app, key, full))
    assert "base" not in bundles.bundle_json(full)
    r2 = registry_factory("plain")
    out_full = workdir / "out-full"
    assert_ok(load(run_aas, full, r2, out_full, key))
    lock_delta = json.loads((out2 / "images.lock.json").read_text())
    lock_full = json.loads((out_full / "images.lock.json").read_text())
    strip = lambda lock: sorted((i["source"], i["target"].split("/", 1)[1], i["digest"]) for i in lock["images"])
    assert strip(lock_delta) == strip(lock_full)
    assert inv_blobs(out2 / "inventory.json") == inv_blobs(out_full / "inventory.json")
    for ref, obj in app.v2_refs.items():
        repo = f"{PREFIX}/{ref.split('/', 1)[1].rsplit(':', 1)[0]}"
        tag = ref.rsplit(":", 1)[1]
        assert images.fetch_manifest(r, repo, tag) == images.fetch_manifest(r2, repo, tag) == obj.manifest
        client = images.RegistryClient(r)
        for d in obj.blobs:
            assert client.blob_exists(repo, d), (repo, d)

    # Into an empty registry: refused within seconds, every missing blob named, nothing pushed.
    empty = registry_factory("plain")
    t0 = time.monotonic()
    p = load(run_aas, delta, empty, workdir / "out-empty", key)
    took = time.monotonic() - t0
    assert p.returncode == 1, p.stdout + p.stderr
    assert took < 15, took
    assert "nothing was pushed" in p.stderr
    for layer in (BASE1, BASE2, API1, WORKER1):
        assert layer.digest in p.stderr
    assert inv_sha in p.stderr and "needed by" in p.stderr
    assert linked_blobs(empty) == set()
    assert manifests_stored(empty) == []
    assert not (workdir / "out-empty").exists()
    # The dry run says the same.
    p = load(run_aas, delta, empty, workdir / "out-empty", key, "--dry-run")
    assert p.returncode == 1 and BASE1.digest in p.stderr
    assert linked_blobs(empty) == set()


def test_inventory_signature_is_checked(app, loaded_v1, run_aas, workdir, key):
    r, out1 = loaded_v1
    inv = out1 / "inventory.json"
    # One byte changed, the signature kept: refused.
    bad = workdir / "tampered" / "inventory.json"
    bad.parent.mkdir()
    data = bytearray(inv.read_bytes())
    at = data.index(b'"size": ') + len(b'"size": ')
    data[at] = ord("9") if data[at] != ord("9") else ord("8")
    bad.write_bytes(bytes(data))
    shutil.copy(f"{inv}.sig", f"{bad}.sig")
    out = workdir / "bundles" / "x.tar"
    p = pack(run_aas, app, key, out, "--have", bad, "--have-key", f"{app.offline}.pub")
    assert p.returncode == 1
    assert "inventory.json: the signature does not match: it was altered, or signed with another key" in p.stderr
    assert not out.exists()
    # The genuine inventory with another key: refused.
    assert run_aas("keygen", "-o", workdir / "other").returncode == 0
    p = pack(run_aas, app, key, out, "--have", inv, "--have-key", workdir / "other.pub")
    assert p.returncode == 1 and "the signature does not match" in p.stderr
    # No .sig beside it with --have-key: refused.
    nosig = workdir / "nosig" / "inventory.json"
    nosig.parent.mkdir()
    shutil.copy(inv, nosig)
    p = pack(run_aas, app, key, out, "--have", nosig, "--have-key", f"{app.offline}.pub")
    assert p.returncode == 1 and "no signature beside it" in p.stderr
    assert not out.exists()
    # Without --have-key: packed, with a warning that the origin was not checked.
    p = pack(run_aas, app, key, out, "--have", nosig)
    assert_ok(p)
    assert "origin was not checked" in p.stderr
    assert len(bundles.bundle_json(out)["assumed"]) == 4


def test_have_old_bundle(app, loaded_v1, run_aas, workdir, key):
    r, _ = loaded_v1
    delta = workdir / "bundles" / "app-2-vs-1.tar"
    p = pack(run_aas, app, key, delta, "--have", app.v1)
    assert_ok(p)
    doc = bundles.bundle_json(delta)
    assert doc["base"] == [{"kind": "bundle", "sha256": images.sha256_digest(bundles.bundle_json_bytes(app.v1))}]
    assert {a["digest"] for a in doc["assumed"]} == {BASE1.digest, BASE2.digest, API1.digest, WORKER1.digest}
    assert all(a["repositories"] == [] for a in doc["assumed"])
    assert {b["digest"] for b in doc["blobs"] if b["kind"] == "layer"} == {WEB2.digest, NEW1.digest, NEW2.digest}
    assert_ok(run_aas("verify", delta, "--key", f"{key}.pub"))
    # Loaded into R (which holds v1): base1 is found in another repository and mounted.
    p = load(run_aas, delta, r, workdir / "out2", key)
    assert_ok(p)
    s = json.loads(p.stdout)
    assert s["delta"]["assumed_mounts"] == 1 and s["blobs"]["mounted"] >= 1
    client = images.RegistryClient(r)
    for ref, obj in app.v2_refs.items():
        repo = f"{PREFIX}/{ref.split('/', 1)[1].rsplit(':', 1)[0]}"
        assert images.fetch_manifest(r, repo, ref.rsplit(":", 1)[1]) == obj.manifest
        for d in obj.blobs:
            assert client.blob_exists(repo, d)


def rewrite_bundle_json(src: Path, dst: Path, edit) -> None:
    """A copy of the plain-tar bundle `src` with bundle.json changed by `edit(doc)` (the
    signature then no longer matches: read without --key, integrity only)."""
    with tarfile.open(src) as tin, tarfile.open(dst, "w", format=tarfile.PAX_FORMAT) as tout:
        for m in tin.getmembers():
            data = tin.extractfile(m).read() if m.isfile() else None
            if m.name == "bundle.json":
                doc = json.loads(data)
                edit(doc)
                data = (json.dumps(doc, indent=2) + "\n").encode()
                m.size = len(data)
            tout.addfile(m, None if data is None else io.BytesIO(data))


def test_verify_checks_a_deltas_assumptions(app, loaded_v1, run_aas, workdir, key):
    _r, out1 = loaded_v1
    delta = workdir / "bundles" / "d.tar"
    assert_ok(pack(run_aas, app, key, delta, "--have", out1 / "inventory.json"))
    assert_ok(run_aas("verify", delta))
    # An assumed blob that no manifest references.
    bogus = workdir / "bundles" / "bogus.tar"

    def add_unused(doc):
        doc["assumed"].append({"digest": "sha256:" + "0" * 64, "size": 5, "media_type": "x",
                               "images": [doc["images"][0]["ref"]], "base": 0, "repositories": []})
    rewrite_bundle_json(delta, bogus, add_unused)
    p = run_aas("verify", bogus)
    assert p.returncode == 1
    assert "assumed blob sha256:" + "0" * 64 + ": no manifest of the bundle references it" in p.stderr
    # An assumption taken out: the layer is then missing.
    dropped = workdir / "bundles" / "dropped.tar"
    rewrite_bundle_json(delta, dropped, lambda doc: doc["assumed"].pop())
    p = run_aas("verify", dropped)
    assert p.returncode == 1 and "missing" in p.stderr
    # An index out of range: refused when bundle.json is read, naming the entry.
    oor = workdir / "bundles" / "oor.tar"
    rewrite_bundle_json(delta, oor, lambda doc: doc["assumed"][1].update(base=7))
    p = run_aas("verify", oor)
    assert p.returncode == 1 and "assumed[1].base: not an index into base" in p.stderr
    # A stored layer also listed as assumed.
    both = workdir / "bundles" / "both.tar"

    def dup(doc):
        layer = next(b for b in doc["blobs"] if b["kind"] == "layer")
        doc["assumed"].append({"digest": layer["digest"], "size": layer["size"], "media_type": layer["media_type"],
                               "images": layer["images"], "base": 0, "repositories": []})
    rewrite_bundle_json(delta, both, dup)
    p = run_aas("verify", both)
    assert p.returncode == 1 and "is assumed present, but the bundle stores it too" in p.stderr
