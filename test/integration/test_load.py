"""`aas-bundle load` into real registries (docker-registry 2.8 on 127.0.0.1): bundles
packed by the project's own `pack` from a source registry, loaded into plain, TLS +
basic auth and token-auth targets. Digests are checked with skopeo and the raw
registry API, never with aas-bundle itself.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from harness.checks import assert_ok
from harness import bundles, images
from harness.faultproxy import Rule




def target_flags(reg) -> list[str]:
    flags = ["--plain-http"] if reg.scheme == "http" else ["--ca-file", reg.ca_file]
    if reg.username:
        flags += ["--username", reg.username, "--password-stdin"]
    return flags


def load(run_aas, bundle, reg, out, key, *extra, prefix="airgap", timeout=180):
    args = ["load", bundle, "--registry", f"{reg.host}/{prefix}" if prefix else reg.host, "--out", out, "--json",
            *target_flags(reg), *extra]
    args += ["--key", f"{key}.pub"] if key else []
    return run_aas(*args, input=(reg.password + "\n") if reg.username else None, timeout=timeout)


@pytest.fixture
def packed(plain_registry, run_aas, workdir, key):
    """A bundle with an OCI image, a Docker manifest list, an OCI index and a digest-only image,
    packed from ``plain_registry``; returns (bundle path, {ref: pushed object})."""
    base = images.make_layer("ld-base", 60_000)
    oci = images.oci_image([base, images.make_layer("ld-oci", 4_000)])
    lst = images.multiarch("docker", seed="ld-list", shared_base=base)
    pinned = images.oci_image([base, images.make_layer("ld-pinned", 3_000)])
    index = images.multiarch("oci", seed="ld-index")
    images.push(plain_registry, "bitnami/mongodb", "6.0.3", oci)
    images.push(plain_registry, "ingress/controller", "v1.5", lst)
    images.push(plain_registry, "knative/queue", None, pinned)
    images.push(plain_registry, "knative/serving", "1.8", index)
    refs = {plain_registry.ref("bitnami/mongodb", "6.0.3"): oci,
            plain_registry.ref("ingress/controller", "v1.5"): lst,
            f"{plain_registry.host}/knative/queue@{pinned.digest}": pinned,
            plain_registry.ref("knative/serving", "1.8"): index}
    manifest = bundles.project(workdir / "proj", list(refs))
    out = workdir / "bundles" / "b.tar.zst"
    p = run_aas("pack", "-f", manifest, "-o", out, "--key", f"{key}.key", "--plain-http",
                "--cache", workdir / "cache")
    assert_ok(p)
    return out, refs


def catalog(reg) -> list[str]:
    r = images.RegistryClient(reg).request("GET", "/v2/_catalog")
    assert r.status == 200, r.body
    return json.loads(r.body).get("repositories") or []


def tagged(reg) -> list[str]:
    """Repositories of `reg` that hold a tag. A load that fails may leave blobs behind
    (content-addressed data that nothing names, docs/bundle-format.md), never a tag."""
    out = []
    for repo in catalog(reg):
        r = images.RegistryClient(reg).request("GET", f"/v2/{repo}/tags/list")
        if r.status == 200 and (json.loads(r.body).get("tags") or []):
            out.append(repo)
    return out


def target_path(ref: str) -> str:
    """Repository path of a source reference without its registry."""
    name = ref.split("@")[0]
    host, _, rest = name.partition("/")
    return rest.rsplit(":", 1)[0] if ":" in rest.split("/")[-1] else rest


@pytest.mark.parametrize("mode", ["plain", "tls-basic", "token"])
def test_load_into_each_registry_kind(packed, registry_factory, run_aas, workdir, key, skopeo, mode):
    bundle, refs = packed
    target = registry_factory(mode)
    out = workdir / "out"
    p = load(run_aas, bundle, target, out, key)
    assert_ok(p)
    summary = json.loads(p.stdout)
    assert summary["blobs"]["uploaded"] >= 1 and summary["blobs"]["mounted"] >= 1  # the shared base
    by_source = {i["source"]: i for i in summary["images"]}
    for ref, obj in refs.items():
        repo = "airgap/" + target_path(ref)
        if "@" in ref:
            tag = "sha256-" + obj.digest.split(":")[1]
            assert by_source[ref]["target"] == f"{target.host}/{repo}@{obj.digest}"
        else:
            tag = ref.rsplit(":", 1)[1]
            assert by_source[ref]["target"] == f"{target.host}/{repo}:{tag}"
        # Byte for byte, so the digest is the source's; skopeo agrees.
        assert images.fetch_manifest(target, repo, tag) == obj.manifest
        assert images.fetch_manifest(target, repo, obj.digest) == obj.manifest
        assert skopeo.digest(f"docker://{target.host}/{repo}:{tag}", target) == obj.digest
        for d, (_mt, data) in obj.manifests().items():
            assert images.fetch_manifest(target, repo, d) == data
    # The output folder: rewritten plain manifest, lock file and install script.
    app = (out / "k8s/plain/app.yaml").read_text()
    for ref in refs:
        assert ref not in app
    assert app.count(f"{target.host}/airgap/") == len(refs)
    lock = json.loads((out / "images.lock.json").read_text())
    assert {i["source"] for i in lock["images"]} == set(refs)
    assert {i["digest"] for i in lock["images"]} == {o.digest for o in refs.values()}
    assert lock["bundle"]["bundle_json"] == images.sha256_digest(bundles.bundle_json_bytes(bundle))
    script = (out / "install.sh").read_text()
    assert "kubectl apply -f k8s/plain/app.yaml" in script
    assert (out / "k8s/README.txt").read_text() == "shipped as is\n"
    assert not Path(f"{out}.aas-load").exists()
    # Discovery over the output finds only images under the target registry.
    p = run_aas("images", "-f", out / "bundle.yaml", "--json")
    assert_ok(p)
    found = json.loads(p.stdout)["images"]
    assert len(found) == len(refs)
    assert all(i["ref"].startswith(f"{target.host}/airgap/") for i in found)


def test_second_load_pushes_nothing(packed, plain_registry, registry_factory, run_aas, workdir, key):
    bundle, refs = packed
    target = registry_factory("plain")
    assert_ok(load(run_aas, bundle, target, workdir / "out", key))
    p = load(run_aas, bundle, target, workdir / "out", key)
    assert_ok(p)
    s = json.loads(p.stdout)
    assert s["blobs"]["uploaded"] == 0 and s["blobs"]["mounted"] == 0 and s["bytes_uploaded"] == 0
    assert s["manifests"]["pushed"] == 0


def test_tampered_bundle_is_not_loaded(packed, registry_factory, run_aas, workdir, key):
    bundle, refs = packed
    raw = bytearray(bundles.tar_bytes(bundle))
    # Flip one byte inside the first layer's content.
    doc = bundles.bundle_json(bundle)
    layer = next(b for b in doc["blobs"] if b["kind"] == "layer")
    import io
    import tarfile
    with tarfile.open(fileobj=io.BytesIO(bytes(raw)), mode="r:") as tar:
        m = tar.getmember(f"images/blobs/sha256/{layer['digest'].split(':')[1]}")
        raw[m.offset_data + 10] ^= 0xFF
    bad = workdir / "bad.tar"
    bad.write_bytes(bytes(raw))
    target = registry_factory("plain")
    p = load(run_aas, bad, target, workdir / "out", key)
    assert p.returncode == 1
    assert layer["digest"] in p.stderr and "nothing was loaded" in p.stderr
    assert not (workdir / "out").exists() and not (workdir / "out.aas-load" / "bundle").exists()
    assert tagged(target) == []


def test_key_is_required_and_must_match(packed, registry_factory, run_aas, workdir):
    bundle, _ = packed
    target = registry_factory("plain")
    p = run_aas("load", bundle, "--registry", target.host, "--out", workdir / "out", "--plain-http")
    assert p.returncode == 2 and "--insecure-skip-signature" in p.stderr
    assert_ok(run_aas("keygen", "--out", workdir / "other"))
    p = run_aas("load", bundle, "--registry", target.host, "--out", workdir / "out", "--plain-http",
                "--key", workdir / "other.pub")
    assert p.returncode == 1 and "nothing was loaded" in p.stderr
    assert not (workdir / "out").exists()
    p = run_aas("load", bundle, "--registry", target.host, "--out", workdir / "out", "--plain-http",
                "--insecure-skip-signature")
    assert_ok(p)


def test_dry_run_touches_nothing(packed, registry_factory, run_aas, workdir, key):
    bundle, refs = packed
    target = registry_factory("plain")
    p = run_aas("load", bundle, "--registry", f"{target.host}/airgap", "--out", workdir / "out", "--plain-http",
                "--key", f"{key}.pub", "--dry-run")
    assert_ok(p)
    assert "Would push:" in p.stdout
    for ref in refs:
        assert ref in p.stdout
    assert "--- a/k8s/plain/app.yaml" in p.stdout and "+++ b/k8s/plain/app.yaml" in p.stdout
    assert not (workdir / "out").exists() and not (workdir / "out.aas-load").exists()
    assert catalog(target) == []


def test_denied_push_says_what_to_do(packed, registry_factory, run_aas, workdir, key):
    bundle, _ = packed
    target = registry_factory("tls-basic")
    p = run_aas("load", bundle, "--registry", target.host, "--out", workdir / "out", "--ca-file", target.ca_file,
                "--key", f"{key}.pub")
    assert p.returncode == 1
    assert "preflight" in p.stderr and "nothing was pushed" in p.stderr
    assert "--password-stdin" in p.stderr  # what to do
    assert not (workdir / "out").exists()


def test_flatten_and_its_collisions(plain_registry, registry_factory, run_aas, workdir, key):
    a = images.oci_image([images.make_layer("ld-fa", 1_000)])
    b = images.oci_image([images.make_layer("ld-fb", 1_000)])
    images.push(plain_registry, "one/app", "1", a)
    images.push(plain_registry, "two/app", "1", b)
    manifest = bundles.project(workdir / "proj", [plain_registry.ref("one/app", "1"), plain_registry.ref("two/app", "1")])
    bundle = workdir / "b.tar"
    assert_ok(run_aas("pack", "-f", manifest, "-o", bundle, "--key", f"{key}.key", "--plain-http", "--cache", workdir / "c"))
    target = registry_factory("plain")
    p = load(run_aas, bundle, target, workdir / "out", key, "--flatten")
    assert p.returncode == 2 and "would both be" in p.stderr and "--flatten" in p.stderr
    manifest = bundles.project(workdir / "proj", [plain_registry.ref("one/app", "1")])
    assert_ok(run_aas("pack", "-f", manifest, "-o", bundle, "--key", f"{key}.key", "--plain-http", "--cache", workdir / "c"))
    p = load(run_aas, bundle, target, workdir / "out", key, "--flatten", prefix="")
    assert_ok(p)
    assert json.loads(p.stdout)["images"][0]["target"] == f"{target.host}/app:1"


def test_kill9_during_load_then_rerun(packed, registry_factory, fault_proxy, aas_bundle, run_aas, workdir, key):
    bundle, refs = packed
    target = registry_factory("plain")
    proxy = fault_proxy(target, [Rule(path_regex="/blobs/uploads/", action="delay", seconds=0.5, times=None)])
    out = workdir / "out"
    for delay in (0.8, 1.6):
        proc = subprocess.Popen([str(aas_bundle), "load", str(bundle), "--registry", f"{proxy.host}/airgap",
                                 "--out", str(out), "--plain-http", "--key", f"{key}.pub", "-j", "1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        finished = proc.poll() is not None
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate()
        assert not finished, f"load finished before it was killed ({proc.returncode}): {err}"
        assert not out.exists()
    assert (workdir / "out.aas-load" / "journal").exists()
    proxy.set_rules([])
    p = run_aas("load", bundle, "--registry", f"{proxy.host}/airgap", "--out", out, "--plain-http", "--key",
                f"{key}.pub", "--json")
    assert_ok(p)
    for ref, obj in refs.items():
        repo = "airgap/" + target_path(ref)
        assert images.fetch_manifest(target, repo, obj.digest) == obj.manifest
        for d in obj.blobs:
            assert images.RegistryClient(target).blob_exists(repo, d)
    assert not (workdir / "out.aas-load").exists()


def test_image_with_a_foreign_layer_packs_verifies_and_loads(registry_factory, run_aas, workdir, key):
    """One rule across pack, verify and load: a non-distributable layer (with URLs) is not
    in the bundle by design, is not missed by verify and is not pushed by load; the
    registry takes the manifest without it."""
    import dataclasses
    base = images.docker_image([images.make_layer("fl-a", 3_000)])
    m = json.loads(base.manifest)
    foreign = {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
               "digest": "sha256:" + "f" * 64, "size": 123456,
               "urls": ["http://127.0.0.1:9/windows-base-layer.tar.gz"]}
    m["layers"].insert(0, foreign)
    img = dataclasses.replace(base, manifest=json.dumps(m, separators=(",", ":")).encode())
    layout = images.write_oci_layout(workdir / "layout", [("1.0", img)])
    manifest = bundles.project(workdir / "proj", ["shop/win:1.0"],
                               extra_images=[{"ref": "shop/win:1.0", "from": f"oci:{layout}:1.0"}])
    bundle = workdir / "b.tar"
    p = run_aas("pack", "-f", manifest, "-o", bundle, "--key", f"{key}.key", "--cache", workdir / "cache")
    assert_ok(p)
    assert "non-distributable foreign layer" in p.stderr
    doc = bundles.bundle_json(bundle)
    assert foreign["digest"] not in [b["digest"] for b in doc["blobs"]]
    assert_ok(run_aas("verify", bundle, "--key", f"{key}.pub"))
    target = registry_factory("plain")
    p = load(run_aas, bundle, target, workdir / "out", key)
    assert_ok(p)
    assert images.fetch_manifest(target, "airgap/shop/win", "1.0") == img.manifest
    assert not images.RegistryClient(target).blob_exists("airgap/shop/win", foreign["digest"])
    assert json.loads(p.stdout)["blobs"]["uploaded"] == 2  # config and the one real layer


def test_images_only_manifest_packs_and_loads(registry_factory, run_aas, workdir, key):
    """A manifest with only `images` (no k8s folder, documented as valid): an empty k8s/
    in the bundle, every image loaded."""
    img = images.oci_image([images.make_layer("io-a", 2_000)])
    layout = images.write_oci_layout(workdir / "layout", {"1.0": img})
    manifest = workdir / "images-only.yaml"
    manifest.write_text("apiVersion: aas-bundle/v1\nkind: Bundle\nname: imgs\nversion: 1.0.0\nimages:\n"
                        f"  - ref: shop/only:1.0\n    from: oci:{layout}:1.0\n")
    bundle = workdir / "b.tar.zst"
    assert_ok(run_aas("pack", "-f", manifest, "-o", bundle, "--key", f"{key}.key", "--cache", workdir / "cache"))
    assert [f["path"] for f in bundles.bundle_json(bundle)["files"] if f["path"].startswith("k8s")] == ["k8s"]
    assert_ok(run_aas("verify", bundle, "--key", f"{key}.pub"))
    target = registry_factory("plain")
    assert_ok(load(run_aas, bundle, target, workdir / "out", key))
    assert images.fetch_manifest(target, "airgap/shop/only", "1.0") == img.manifest
    assert (workdir / "out" / "k8s").is_dir() and (workdir / "out" / "install.sh").exists()


def test_missing_k8s_folder_fails_before_any_download(run_aas, workdir, key):
    manifest = workdir / "m.yaml"
    manifest.write_text("apiVersion: aas-bundle/v1\nkind: Bundle\nname: x\nversion: 1.0.0\nk8s: nowhere\n"
                        "images:\n  - ref: 127.0.0.1:9/never/fetched:1\n")
    p = run_aas("pack", "-f", manifest, "-o", workdir / "b.tar", "--key", f"{key}.key", "--cache", workdir / "c",
                timeout=20)
    assert p.returncode == 2, p.stderr
    assert "nowhere is not a folder" in p.stderr


def test_mirror_configuration_makes_upstream_names_pull_from_the_private_registry(registry_factory, run_aas,
                                                                                 workdir, key, skopeo):
    """load writes containerd, CRI-O/podman and RKE2/k3s mirror configuration; skopeo,
    given the registries.conf drop-in, pulls the upstream name from the private registry.
    The upstream here is a closed loopback port, so nothing but the mirror can answer."""
    img = images.oci_image([images.make_layer("mir-a", 2_000)])
    layout = images.write_oci_layout(workdir / "layout", {"1.0": img})
    upstream = "127.0.0.1:1"
    manifest = bundles.project(workdir / "proj", [f"{upstream}/shop/mirrored:1.0"], extra_images=[
        {"ref": f"{upstream}/shop/mirrored:1.0", "from": f"oci:{layout}:1.0"}])
    bundle = workdir / "b.tar"
    assert_ok(run_aas("pack", "-f", manifest, "-o", bundle, "--key", f"{key}.key", "--cache", workdir / "cache"))
    target = registry_factory("plain")
    out = workdir / "out"
    assert_ok(load(run_aas, bundle, target, out, key))
    reg = out / "registries"
    hosts = (reg / "containerd" / "certs.d" / upstream / "hosts.toml").read_text()
    assert f'[host."http://{target.host}/v2/airgap"]' in hosts and "override_path = true" in hosts, hosts
    assert f'server = "https://{upstream}"' in hosts
    conf = reg / "registries.conf.d" / "50-aas-bundle.conf"
    assert f'location = "{target.host}/airgap"' in conf.read_text()
    k3s = (reg / "registries.yaml").read_text()
    assert f'"{upstream}":' in k3s and f'- "http://{target.host}"' in k3s and '"airgap/$1"' in k3s, k3s
    import tomllib
    tomllib.loads(hosts)
    tomllib.loads(conf.read_text())
    raw = skopeo.run("inspect", "--raw", "--registries-conf", str(conf),
                     f"docker://{upstream}/shop/mirrored:1.0").stdout
    assert raw == img.manifest


def test_mirror_configuration_carries_the_ca(registry_factory, run_aas, workdir, key):
    img = images.oci_image([images.make_layer("mir-ca", 1_000)])
    layout = images.write_oci_layout(workdir / "layout", {"1.0": img})
    manifest = bundles.project(workdir / "proj", ["docker.io/shop/withca:1.0"], extra_images=[
        {"ref": "docker.io/shop/withca:1.0", "from": f"oci:{layout}:1.0"}])
    bundle = workdir / "b.tar"
    assert_ok(run_aas("pack", "-f", manifest, "-o", bundle, "--key", f"{key}.key", "--cache", workdir / "cache"))
    target = registry_factory("tls-basic")
    out = workdir / "out"
    assert_ok(load(run_aas, bundle, target, out, key, prefix=""))
    reg = out / "registries"
    hosts = (reg / "containerd" / "certs.d" / "docker.io" / "hosts.toml").read_text()
    assert 'server = "https://registry-1.docker.io"' in hosts
    assert f'[host."https://{target.host}"]' in hosts and "override_path" not in hosts, hosts
    assert 'ca = "/etc/containerd/certs.d/docker.io/ca.crt"' in hosts
    ca = Path(target.ca_file).read_bytes()
    assert (reg / "containerd" / "certs.d" / "docker.io" / "ca.crt").read_bytes() == ca
    assert (reg / "containers" / "certs.d" / target.host / "ca.crt").read_bytes() == ca
    assert (reg / "rancher" / "ca.crt").read_bytes() == ca
    assert "rewrite" not in (reg / "registries.yaml").read_text()


@pytest.fixture
def containerd():
    """containerd (Debian's) on a private socket, CRI plugin off; skipped visibly when the
    daemon cannot start here."""
    import shutil
    import tempfile
    if not shutil.which("containerd") or not shutil.which("ctr"):
        pytest.skip("containerd and ctr are not installed (scripts/setup.sh installs them)")
    d = Path(tempfile.mkdtemp(prefix="ctd", dir="/tmp"))  # short: a unix socket path has 108 bytes
    (d / "cfg.toml").write_text(
        f'version = 2\nroot = "{d}/root"\nstate = "{d}/state"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{d}/ctd.sock"\n[ttrpc]\n  address = "{d}/ttrpc.sock"\n'
        '[debug]\n  address = ""\n[metrics]\n  address = ""\n')
    log = open(d / "log.txt", "w")
    proc = subprocess.Popen(["containerd", "--config", str(d / "cfg.toml")], stdout=log, stderr=log)
    sock = d / "ctd.sock"
    for _ in range(100):
        if sock.exists() and subprocess.run(["ctr", "--address", str(sock), "version"],
                                            capture_output=True).returncode == 0:
            break
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    else:
        proc.kill()
    if proc.poll() is not None:
        pytest.skip(f"containerd did not start here: {(d / 'log.txt').read_text()[-500:]}")
    yield sock
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()
    subprocess.run(["rm", "-rf", str(d)])


def test_containerd_pulls_upstream_names_through_the_written_hosts_toml(registry_factory, run_aas, workdir, key,
                                                                          containerd):
    img = images.oci_image([images.make_layer("mir-ctr", 2_000)])
    layout = images.write_oci_layout(workdir / "layout", {"1.0": img})
    upstream = "127.0.0.1:1"
    name = f"{upstream}/shop/byctr:1.0"
    manifest = bundles.project(workdir / "proj", [name], extra_images=[{"ref": name, "from": f"oci:{layout}:1.0"}])
    bundle = workdir / "b.tar"
    assert_ok(run_aas("pack", "-f", manifest, "-o", bundle, "--key", f"{key}.key", "--cache", workdir / "cache"))
    target = registry_factory("plain")
    out = workdir / "out"
    assert_ok(load(run_aas, bundle, target, out, key))
    p = subprocess.run(["ctr", "--address", str(containerd), "content", "fetch", "--hosts-dir",
                        str(out / "registries" / "containerd" / "certs.d"), name],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    listed = subprocess.run(["ctr", "--address", str(containerd), "content", "ls", "-q"], capture_output=True,
                            text=True, timeout=60).stdout.split()
    assert img.digest in listed and all(layer.digest in listed for layer in img.layers), listed


# The pattern charts of test/data/charts (see its README): how real charts hand images to
# what they run. Each goes through pack and load, and discovery over the output finds only
# the target's images; env-images and recursive-merge take references joined from several
# values (strimzi's defaultImageRegistry/defaultImageRepository/name, a merged default
# registry), which bundle.json records as site parts. flag-images, split-cr and digest-switch
# pin made-up digests no stand-in image can have: test/unit/discovery_test.cpp round-trips
# them (and these) through the rewrite without pack.
PATTERNS = ["env-images", "args-images", "configmap-text", "recursive-merge", "offbranch-toyaml",
            "untagged-fallback"]
JOINED = {"env-images", "recursive-merge"}


@pytest.mark.parametrize("chart", PATTERNS)
def test_pattern_chart_round_trip_through_pack_and_load(chart, registry_factory, run_aas, workdir, key):
    import shutil
    proj = workdir / "proj"
    shutil.copytree(Path(__file__).resolve().parents[2] / "test" / "data" / "charts" / chart, proj / "k8s" / chart)
    head = "apiVersion: aas-bundle/v1\nkind: Bundle\nname: pat\nversion: 1.0.0\nk8s: k8s\n"
    manifest = proj / "bundle.yaml"
    manifest.write_text(head + f"releases:\n  - name: {chart}\n    chart: {chart}\n")
    p = run_aas("images", "-f", manifest, "--json")
    assert_ok(p)
    found = [i["ref"] for i in json.loads(p.stdout)["images"]]
    assert found

    # Stand-ins for the upstream images, served by a mirror under <host>/<path>.
    mirror = registry_factory("plain")
    hosts = set()
    for n, ref in enumerate(sorted(found)):
        name, _, digest = ref.partition("@")
        host, _, rest = name.partition("/")
        path, _, tag = rest.rpartition(":") if ":" in rest.split("/")[-1] else (rest, "", "")
        img = images.oci_image([images.make_layer(f"pat-{chart}-{n}", 2_000)])
        assert not digest, ref
        images.push(mirror, f"{host}/{path}", tag, img)
        hosts.add(host)
    bundle = workdir / "b.tar.zst"
    pack = ["pack", "-f", manifest, "-o", bundle, "--key", f"{key}.key", "--plain-http", "--cache", workdir / "cache"]
    for host in sorted(hosts):
        pack += ["--mirror", f"{host}={mirror.host}/{host}"]
    assert_ok(run_aas(*pack))
    sites = [s for i in bundles.bundle_json(bundle)["images"] for s in i["sites"]]
    assert any(s.get("parts") for s in sites) == (chart in JOINED), sites

    target = registry_factory("plain")
    out = workdir / "out"
    p = load(run_aas, bundle, target, out, key)
    assert_ok(p)
    assert "warning" not in p.stderr, p.stderr
    # The release as install.sh installs it: with the values file load writes for it.
    extra = out / "k8s" / "environments" / "airgap" / f"{chart}-values.yaml"
    values = f"    values: [environments/airgap/{chart}-values.yaml]\n" if extra.exists() else ""
    after_manifest = workdir / "after.yaml"
    after_manifest.write_text(head + f"releases:\n  - name: {chart}\n    chart: {chart}\n" + values)
    p = run_aas("images", "-f", after_manifest, "--k8s", out / "k8s", "--json")
    assert_ok(p)
    after = sorted(i["ref"] for i in json.loads(p.stdout)["images"])
    want = sorted(f"{target.host}/airgap/{r.split('/', 1)[1]}" for r in found)
    assert after == want
