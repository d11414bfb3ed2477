"""Acceptance (issue 6): the air-gap round trip of the REAL AI App Store folder.

A copy of ../shared/corpus/appstore-ai/k8s (third-party GPL data: only ever copied into
the test's tmp dir, never into this repository) is discovered, packed through a mirror
registry that holds small deterministic stand-ins for every upstream image, verified,
loaded into a TLS + basic-auth registry under a prefix, and the output folder is checked:
every image at the target with the bundle's digest, discovery over the rewritten folder
finding only target images, a line diff against the input showing only image lines,
install.sh and images.lock.json complete. Skipped when ../shared is absent.

Layout of the tmp tree (so that the manifest's relative paths resolve inside it):

    tmp/app/manifests/ai-appstore.yaml    k8s: ../k8s, from: docker-archive:../build/aas-*.tar
    tmp/app/k8s/                          the corpus copy
    tmp/app/build/aas-{frontend,backend}.tar
"""

from __future__ import annotations

import difflib
import json
import re
import shutil
from pathlib import Path

import pytest

from harness.checks import assert_ok
from harness import bundles, images

try:  # python3-yaml is no harness dependency: without it the YAML-level check is skipped
    import yaml
except ImportError:  # pragma: no cover
    yaml = None

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpus" / "appstore-ai"
K8S = CORPUS / "k8s"
MANIFEST = REPO / "manifests" / "ai-appstore.yaml"

pytestmark = pytest.mark.skipif(not K8S.is_dir(),
                                reason=f"the AI App Store corpus is not at {CORPUS} (../shared absent)")

BROKEN_FILE = "k8s/environments/production/aas-knative-backend-values.yaml"
BROKEN_LINE = 6
BROKEN_TEXT = "queue@sha256:v1.8.3"
FIXED_TEXT = "queue:v1.8.3"

# The ingress-nginx images are pinned by digest in the chart's values.yaml.  A stand-in
# image cannot have those real digests (they are sha256 of registry.k8s.io's manifests),
# so the mirror cannot serve them: they are excluded from the bundle through the copied
# manifest's `exclude:` (two exact references and one bare name, to use both forms), and
# so after load they still name registry.k8s.io in the output folder, untouched.
PINNED_EXCLUDED = {
    "registry.k8s.io/ingress-nginx/controller:v1.5.1"
    "@sha256:4ba73c697770664c1e00e9f968de14e08f606ff961c76e5d7033a4a9c593c629",
    "registry.k8s.io/ingress-nginx/controller-chroot:v1.5.1"
    "@sha256:c1c091b88a6c936a83bd7b098662760a87868d12452529bad0d178fb36147345",
    "registry.k8s.io/ingress-nginx/kube-webhook-certgen:v20220916-gd32f8c343"
    "@sha256:39c5b2e3310dc4264d638ad28d9d1d96c4cbb2b2dcfb52368fe4e3c63f61e10f",
}
EXCLUDE_ENTRIES = [
    "registry.k8s.io/ingress-nginx/controller:v1.5.1"
    "@sha256:4ba73c697770664c1e00e9f968de14e08f606ff961c76e5d7033a4a9c593c629",
    "registry.k8s.io/ingress-nginx/controller-chroot",
    "registry.k8s.io/ingress-nginx/kube-webhook-certgen:v20220916-gd32f8c343"
    "@sha256:39c5b2e3310dc4264d638ad28d9d1d96c4cbb2b2dcfb52368fe4e3c63f61e10f",
]

# The app's own images, built locally: read from `docker save` archives.
APP_IMAGES = {
    "docker.io/ai-appstore/aas-frontend:1.2.2": ("aas-frontend.tar", "classic"),
    "docker.io/ai-appstore/aas-backend:1.2.0": ("aas-backend.tar", "oci"),
}
UPSTREAM_REGISTRIES = ("docker.io", "gcr.io", "quay.io", "registry.k8s.io")
PREFIX = "ai-appstore"

# A changed or inserted line must carry an image value: a key ending in image,
# repository, registry or tag (image, apiext_image, mcImage, ...), or an entry of a
# baseImages map (`  queue: <REGISTRY>/...`).
YAML_KEY = re.compile(r"^(\s*)(?:-\s+)?[\"']?([A-Za-z0-9_.-]+)[\"']?\s*:(?:\s|$)", re.ASCII)
IMAGE_KEY_SUFFIXES = ("image", "repository", "registry", "tag")



def split_ref(ref: str):
    """docker.io/bitnami/mongodb:6.0.3 -> ("docker.io", "bitnami/mongodb", "6.0.3", None)."""
    name, _, digest = ref.partition("@")
    host, _, rest = name.partition("/")
    tag = None
    if ":" in rest.rsplit("/", 1)[-1]:
        rest, tag = rest.rsplit(":", 1)
    return host, rest, tag, digest or None


def stand_in(ref: str, n: int, base: images.Layer):
    """A small deterministic image for ``ref``: every third one a Docker image, the
    Knative images OCI indexes (amd64 + arm64/v8), Emissary a Docker manifest list.
    Half share ``base`` (so load mounts it between repositories)."""
    layers = ([base] if n % 2 == 0 else []) + [images.make_layer(f"rt:{ref}", 2048 + 97 * n)]
    if "/knative.dev/" in ref or "emissaryingress" in ref:
        build = images.docker_image if "emissary" in ref else images.oci_image
        amd = build(layers, ("linux", "amd64", None), labels={"ref": ref})
        arm = build([images.make_layer(f"rt:{ref}:arm64", 2048)], ("linux", "arm64", "v8"),
                    labels={"ref": ref})
        return images.docker_manifest_list([amd, arm]) if "emissary" in ref else images.oci_index([amd, arm])
    build = images.docker_image if n % 3 == 0 else images.oci_image
    return build(layers, labels={"ref": ref})


def images_json(run_aas, *args):
    p = run_aas("images", *args, "--json")
    assert p.stdout, p.stderr
    return p, json.loads(p.stdout)


def ancestors(lines, idx: int) -> list[str]:
    """The keys of the YAML maps enclosing ``lines[idx]`` (found by indentation)."""
    out, indent = [], len(lines[idx]) - len(lines[idx].lstrip())
    for line in reversed(lines[:idx]):
        m = YAML_KEY.match(line)
        if m and not line.lstrip().startswith("#") and len(m.group(1)) < indent:
            out.append(m.group(2))
            indent = len(m.group(1))
    return out


def image_line(lines, idx: int) -> bool:
    m = YAML_KEY.match(lines[idx])
    if not m:
        return False
    return m.group(2).lower().endswith(IMAGE_KEY_SUFFIXES) or "baseImages" in ancestors(lines, idx)


def check_inserted(lines, j1: int, j2: int, allow_comments: bool = False) -> list[str]:
    """Problems in lines[j1:j2], inserted (or replacing others): each must be an image
    line, or a bare `key:` opening a map whose next line in the block is indented deeper
    (the parent maps load creates for an inserted key, e.g. `metrics:` / `  image:`)."""
    problems = []
    for j in range(j1, j2):
        line = lines[j]
        if image_line(lines, j):
            continue
        if allow_comments and (not line.strip() or line.lstrip().startswith("#")):
            continue
        m = re.match(r"^(\s*)[A-Za-z0-9_.-]+:\s*$", line)
        nxt = lines[j + 1] if j + 1 < j2 else ""
        if m and len(nxt) - len(nxt.lstrip()) > len(m.group(1)):
            continue
        problems.append(f"line {j + 1}: not an image line: {line!r}")
    return problems


def load_yaml_strict(text: str):
    """Parses YAML refusing duplicate keys (an inserted key that already existed)."""
    class Strict(yaml.SafeLoader):
        pass

    def mapping(loader, node, deep=False):
        seen = set()
        for k, _v in node.value:
            key = loader.construct_object(k, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", k.start_mark)
            seen.add(key)
        return yaml.SafeLoader.construct_mapping(loader, node, deep)

    Strict.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return yaml.load(text, Loader=Strict)


def yaml_changes(before, after, path=()):
    """(what, path) for every leaf of ``after`` that differs from ``before`` or is new,
    and every path of ``before`` that is gone."""
    if isinstance(before, dict) and isinstance(after, dict):
        for k in before.keys() - after.keys():
            yield "removed", path + (k,)
        for k, v in after.items():
            yield from yaml_changes(before.get(k), v, path + (k,)) if k in before else \
                (("added", path + (k,) + p) for p in leaf_paths(v))
    elif before != after:
        yield "changed", path


def leaf_paths(v, path=()):
    if isinstance(v, dict) and v:
        for k, x in v.items():
            yield from leaf_paths(x, path + (k,))
    else:
        yield path


def image_path(path) -> bool:
    return bool(path) and (str(path[-1]).lower().endswith(IMAGE_KEY_SUFFIXES) or "baseImages" in path[:-1])


def tree_files(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file() or p.is_symlink()}


def install_sequence(script: Path):
    """[(release, chart, namespace, [values…])] of install.sh's `helm upgrade --install`
    commands, in order (continuation lines joined)."""
    text = script.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        words = line.split()
        if words[:3] != ["helm", "upgrade", "--install"]:
            continue
        name, chart = words[3], words[4]
        ns = words[words.index("--namespace") + 1] if "--namespace" in words else None
        values = [words[i + 1] for i, w in enumerate(words) if w in ("--values", "-f")]
        out.append((name, chart, ns, values))
    return out


def manifest_for(installed, images_block: str) -> str:
    """A bundle manifest with the releases as install.sh installs them (paths made
    relative to k8s/) and the given `images:` block."""
    lines = ["apiVersion: aas-bundle/v1", "kind: Bundle", "name: ai-appstore", "version: 1.2.0",
             "k8s: ../k8s", "releases:"]
    for name, chart, ns, values in installed:
        lines += [f"  - name: {name}", f"    chart: {chart[len('k8s/'):]}", f"    namespace: {ns}"]
        if values:
            lines.append(f"    values: [{', '.join(v[len('k8s/'):] for v in values)}]")
    return "\n".join(lines) + "\n" + images_block


def test_corpus_air_gap_round_trip(registry_factory, run_aas, workdir, skopeo):
    app = workdir / "app"
    k8s = app / "k8s"
    shutil.copytree(K8S, k8s, symlinks=True)
    (app / "manifests").mkdir(parents=True)
    manifest = app / "manifests" / "ai-appstore.yaml"
    text = MANIFEST.read_text()
    assert "\nexclude:" not in text
    text += "exclude:\n" + "".join(f"  - {e}\n" for e in EXCLUDE_ENTRIES)
    manifest.write_text(text)

    # The app's images as `docker save` archives, one classic and one Docker 25 OCI layout.
    base = images.make_layer("rt-base", 3000)
    app_objs, build = {}, app / "build"
    for ref, (fname, layout) in sorted(APP_IMAGES.items()):
        img = images.docker_image([base, images.make_layer(f"rt-app:{ref}", 4000)], labels={"app": ref})
        tag = ref.split("/", 1)[1]  # ai-appstore/aas-frontend:1.2.2, as `docker save` names it
        app_objs[ref] = (img, images.write_docker_archive(build / fname, img, tag, layout=layout))

    # ---- 1. discovery on the unfixed copy --------------------------------------------
    p, disc = images_json(run_aas, "-f", manifest)
    assert p.returncode == 1, p.stderr
    assert [(e["file"], e["line"]) for e in disc["errors"]] == [(BROKEN_FILE, BROKEN_LINE)], disc["errors"]
    assert "did you mean ':v1.8.3'?" in disc["errors"][0]["message"]
    assert disc["unresolved"] == []
    found = {i["ref"]: i for i in disc["images"]}
    # exclude: keeps the digest-pinned images out (4b shows they are there without it)
    assert all("@" not in r for r in found), [r for r in found if "@" in r]
    assert set(APP_IMAGES) <= set(found)
    for ref in APP_IMAGES:
        assert found[ref]["source"].startswith("docker-archive:")

    # ---- 2. the mirror -------------------------------------------------------------
    mirror = registry_factory("plain")
    target = registry_factory("tls-basic")
    upstream: dict[str, object] = {}

    def fill_mirror(refs):
        for ref in sorted(refs):
            if ref in APP_IMAGES or ref in upstream:
                continue
            host, path, tag, digest = split_ref(ref)
            assert host in UPSTREAM_REGISTRIES and tag and not digest, ref
            obj = stand_in(ref, len(upstream), base)
            images.push(mirror, f"{host}/{path}", tag, obj)
            upstream[ref] = obj

    fill_mirror(found)
    assert_ok(run_aas("keygen", "--out", workdir / "signer"))
    out = workdir / "bundles" / "ai-appstore.tar"
    pack_args = ["pack", "-f", manifest, "--key", workdir / "signer.key", "-o", out, "--platform", "linux/amd64",
                 "--plain-http", "--cache", workdir / "cache", "--split-size", "1M", "--json"]
    for reg in UPSTREAM_REGISTRIES:
        pack_args += ["--mirror", f"{reg}={mirror.host}/{reg}"]

    # The unfixed copy: pack refuses, writes nothing at the output name, names file:line.
    p = run_aas(*pack_args)
    assert p.returncode == 1, p.stderr
    assert f"{BROKEN_FILE}:{BROKEN_LINE}" in p.stderr and "':v1.8.3'" in p.stderr, p.stderr
    failures = json.loads(p.stdout)["failures"]  # that reference only: the mirror has the rest
    assert len(failures) == 1 and f"{BROKEN_FILE}:{BROKEN_LINE}" in failures[0]["where"], failures
    left = sorted(x.name for x in out.parent.iterdir()) if out.parent.exists() else []
    assert left == [], left  # nothing at the output name, no temporary file either

    # Fix the line in the copy the way the hint says, then discover again.
    broken = k8s / BROKEN_FILE.split("/", 1)[1]
    lines = broken.read_text().splitlines(keepends=True)
    assert BROKEN_TEXT in lines[BROKEN_LINE - 1]
    lines[BROKEN_LINE - 1] = lines[BROKEN_LINE - 1].replace(BROKEN_TEXT, FIXED_TEXT)
    broken.write_text("".join(lines))
    p, disc = images_json(run_aas, "-f", manifest)
    assert_ok(p)
    found = {i["ref"]: i for i in disc["images"]}
    assert "gcr.io/knative-releases/knative.dev/serving/cmd/queue:v1.8.3" in found
    fill_mirror(found)
    assert set(found) == set(upstream) | set(APP_IMAGES)

    # ---- 3. pack, verify, load --------------------------------------------------
    p = run_aas(*pack_args)
    assert_ok(p)
    summary = json.loads(p.stdout)
    parts_index = out.parent / (out.name + ".parts")
    parts = json.loads(parts_index.read_text())["parts"]
    assert len(parts) >= 2, parts
    first = out.parent / parts[0]["name"]
    doc = bundles.bundle_json(parts_index)
    assert [i["ref"] for i in summary["images"]] == [i["ref"] for i in doc["images"]]
    bundled = {i["ref"]: i for i in doc["images"]}
    assert set(bundled) == set(found), set(bundled) ^ set(found)
    assert not set(bundled) & PINNED_EXCLUDED

    p = run_aas("verify", first, "--key", workdir / "signer.pub", "--json")
    assert_ok(p)
    v = json.loads(p.stdout)
    assert v["ok"] and v["authentic"] and v["signature"] == "valid" and v["problems"] == [], v

    dest = workdir / "offline"
    p = run_aas("load", first, "--registry", f"{target.host}/{PREFIX}", "--key", workdir / "signer.pub",
                "--out", dest, "--ca-file", target.ca_file, "--username", target.username,
                "--password-stdin", "--json", input=target.password + "\n")
    assert_ok(p)
    load_summary = json.loads(p.stdout)
    loaded = {i["source"]: i for i in load_summary["images"]}
    assert set(loaded) == set(bundled)
    assert load_summary["warnings"] == [], load_summary["warnings"]  # every site rewritten
    assert load_summary["blobs"]["mounted"] >= 1  # the shared base layer, uploaded once

    # ---- 4a. every image at the target with the bundle's digest ----------------------
    client = images.RegistryClient(target)
    for ref, rec in sorted(bundled.items()):
        _host, path, tag, _ = split_ref(ref)
        repo = f"{PREFIX}/{path}"
        assert loaded[ref]["target"] == f"{target.host}/{repo}:{tag}", loaded[ref]
        assert loaded[ref]["digest"] == rec["digest"]
        served = client.get_manifest(repo, tag).body
        assert images.manifest_digest(served) == rec["digest"], ref
        body = json.loads(served)
        assert "manifests" not in body, ref  # --platform linux/amd64: single-platform images only
        for d in [body["config"]["digest"]] + [layer["digest"] for layer in body["layers"]]:
            assert client.blob_exists(repo, d), (ref, d)
        if ref in upstream:
            obj = upstream[ref]
            if isinstance(obj, images.Index):
                # narrowed by --platform: the amd64 child's bytes, the index recorded
                child = obj.child_for("linux", "amd64")
                assert rec["digest"] == child.digest and rec.get("index_digest") == obj.digest, ref
                assert served == child.manifest
            else:
                assert rec["digest"] == obj.digest and served == obj.manifest, ref
        else:
            img, archive = app_objs[ref]
            assert rec["source"].startswith("docker-archive:") and rec["source"].endswith(archive["path"].name)
            if "manifest_digest" in archive:  # Docker 25's layout: its manifest as is
                assert rec["digest"] == archive["manifest_digest"], ref
            # classic or not, the image's config travels byte for byte
            assert json.loads(served)["config"]["digest"] == img.config_digest, ref
        # skopeo reads every pushed image (independent of aas-bundle and the harness client)
        assert skopeo.digest(f"docker://{target.host}/{repo}:{tag}", target) == rec["digest"], ref

    # ---- 4b. discovery over the output finds only target images ---------------------
    # The releases as install.sh installs them: load gives a release without values files
    # (ingress-nginx) one, k8s/environments/airgap/<release>-values.yaml (docs/rewrite.md),
    # which the copied manifest cannot name.  Scan with those releases and WITHOUT the
    # `exclude:` list, so that the excluded digest-pinned images show up: they must be the
    # only ones left outside the target registry (still registry.k8s.io, untouched).
    installed = install_sequence(dest / "install.sh")
    releases = doc["releases"]
    assert [r[0] for r in installed] == [r["name"] for r in releases], installed
    for (name, chart, ns, values), r in zip(installed, releases):
        assert (chart, ns) == ("k8s/" + r["chart"], r["namespace"]), (name, chart, ns)
        assert values[:len(r["values"])] == ["k8s/" + v for v in r["values"]], (name, values)
        for extra in values[len(r["values"]):]:  # only the documented override file
            assert extra == f"k8s/environments/airgap/{name}-values.yaml", (name, extra)
            assert (dest / extra).is_file()
    scan_manifest = app / "manifests" / "as-installed.yaml"
    scan_manifest.write_text(manifest_for(installed, text[text.index("\nimages:") + 1:text.index("\nplatforms:") + 1]))
    p, after = images_json(run_aas, "-f", scan_manifest, "--k8s", dest / "k8s")
    assert_ok(p)
    assert after["errors"] == [] and after["unresolved"] == []
    outside, at_target = set(), {}
    for img in after["images"]:
        ref = img["ref"]
        if not any(s["file"].startswith("k8s/") for s in img["sites"]):
            continue  # the manifest's own `images:` entries (the app images' archives)
        if ref.startswith(f"{target.host}/{PREFIX}/"):
            _host, path, tag, digest = split_ref(ref)
            assert client.manifest_exists(path, digest or tag), f"{ref} found in the output but not at the target"
            at_target[ref] = img
        else:
            outside.add(ref)
    assert outside == PINNED_EXCLUDED, \
        f"images in the output folder not under {target.host}/{PREFIX}: {sorted(outside - PINNED_EXCLUDED)}"
    # every bundled image is found again at its target, with the class it was packed with
    source_of = {i["target"]: src for src, i in loaded.items()}
    assert set(at_target) == set(source_of), set(at_target) ^ set(source_of)
    for ref, img in at_target.items():
        assert img["class"] == bundled[source_of[ref]]["class"], (ref, img["class"])

    # The copied manifest itself (its exclude: hides the pinned images): every image it
    # finds is at the target, but for chart defaults of releases whose override load put
    # in a values file of its own, which this manifest does not list.
    overridden = {r["name"] for r, (_n, _c, _ns, v) in zip(releases, installed) if len(v) > len(r["values"])}
    p, plain_after = images_json(run_aas, "-f", manifest, "--k8s", dest / "k8s")
    assert_ok(p)
    for img in plain_after["images"]:
        k8s_sites = [s for s in img["sites"] if s["file"].startswith("k8s/")]
        if k8s_sites and not img["ref"].startswith(f"{target.host}/{PREFIX}/"):
            assert all(s.get("release") in overridden and s["file"].startswith("k8s/charts/")
                       for s in k8s_sites), img

    # ---- 4c. the line diff: only image lines changed or inserted -----------------------
    before_files, after_files = tree_files(k8s), tree_files(dest / "k8s")
    added = set(after_files) - set(before_files)
    assert set(before_files) <= set(after_files), set(before_files) - set(after_files)
    assert added == {v[len("k8s/"):] for (_n, _c, _ns, vals), r in zip(installed, releases)
                     for v in vals[len(r["values"]):]}, added
    site_files = {s["file"].split("/", 1)[1] for rec in bundled.values() for s in rec["sites"]
                  if s["file"].startswith("k8s/")}
    values_files = {v for r in releases for v in r["values"]}
    bad, changed = [], set()
    for rel in sorted(added):  # the override files: a comment, then image keys only
        new = after_files[rel].read_text().splitlines()
        bad += [f"{rel}: {m}" for m in check_inserted(new, 0, len(new), allow_comments=True)]
    for rel, src in before_files.items():
        a, b = src.read_bytes(), after_files[rel].read_bytes()
        if a == b:
            continue
        changed.add(rel)
        if rel not in site_files and rel not in values_files:
            bad.append(f"{rel}: changed but no image site is in it and it is no release's values file")
            continue
        al, bl = a.decode().splitlines(), b.decode().splitlines()
        for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, al, bl, autojunk=False).get_opcodes():
            if op == "equal":
                continue
            if op != "insert" and rel not in site_files:
                bad.append(f"{rel}:{i1 + 1}: a file without sites may only get keys inserted ({op})")
            if op == "delete":
                bad.extend(f"{rel}:{i + 1}: deleted: {al[i]!r}" for i in range(i1, i2))
            elif op == "replace":
                bad.extend(f"{rel}:{i + 1}: non-image line changed: {al[i]!r}"
                           for i in range(i1, i2) if not image_line(al, i))
                bad.extend(f"{rel}: {m}" for m in check_inserted(bl, j1, j2))
            else:
                bad.extend(f"{rel}: {m}" for m in check_inserted(bl, j1, j2))
    # The same at the YAML level: no duplicate key, nothing removed, only image values
    # changed or added.
    for rel in sorted(changed | added) if yaml is not None else ():
        if not rel.endswith((".yaml", ".yml")) or "/templates/" in rel:
            continue
        before_doc = load_yaml_strict(before_files[rel].read_text()) if rel in before_files else {}
        try:
            after_doc = load_yaml_strict(after_files[rel].read_text())
        except yaml.YAMLError as e:
            bad.append(f"{rel}: the rewritten file is not valid YAML: {e}")
            continue
        bad += [f"{rel}: {what} {'.'.join(map(str, path))}" for what, path in yaml_changes(before_doc or {}, after_doc)
                if what == "removed" or not image_path(path)]
    assert not bad, "\n".join(bad)
    reported = {f[len("k8s/"):] if f.startswith("k8s/") else f for f in load_summary["changed_files"]}
    assert reported == changed | added, reported ^ (changed | added)
    # every file the output changed is a values file of a release or holds a site
    assert changed and changed <= (site_files | values_files), changed - (site_files | values_files)

    # A second load (another output folder) pushes nothing and writes the same folder.
    dest2 = workdir / "offline-again"
    p = run_aas("load", parts_index, "--registry", f"{target.host}/{PREFIX}", "--key", workdir / "signer.pub",
                "--out", dest2, "--ca-file", target.ca_file, "--username", target.username,
                "--password-stdin", "--json", input=target.password + "\n")
    assert_ok(p)
    again = json.loads(p.stdout)
    assert again["blobs"]["uploaded"] == 0 and again["bytes_uploaded"] == 0 and again["manifests"]["pushed"] == 0, again
    assert tree_files(dest2).keys() == tree_files(dest).keys()
    assert [f for f, x in tree_files(dest).items() if x.read_bytes() != (dest2 / f).read_bytes()] == []

    # ---- 4d. install.sh and images.lock.json ------------------------------------------
    assert [r["name"] for r in releases] == [
        "ingress-nginx", "mongodb", "minio", "emissary-crds", "emissary-ingress", "knative-serving",
        "aas-frontend", "aas-backend"]
    script = (dest / "install.sh").read_text()
    assert "kubectl apply -f k8s/namespaces.yaml" in script
    lock = json.loads((dest / "images.lock.json").read_text())
    by_source = {i["source"]: i for i in lock["images"]}
    assert len(by_source) == len(lock["images"]) == len(bundled)
    assert set(by_source) == set(bundled)
    for ref, rec in bundled.items():
        assert by_source[ref]["digest"] == rec["digest"], ref
        assert by_source[ref]["target"] == loaded[ref]["target"], ref
