"""Self-tests of the integration harness against the real registry, with
skopeo / urllib / curl as independent clients (aas-bundle not involved)."""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import time
import urllib.error

import pytest

from harness import images as im
from harness.faultproxy import Rule
from harness.registry import no_proxy_opener
from harness.skopeo import SkopeoError, docker_ref


def _push_set(reg):
    """Push an OCI image, an OCI index and a Docker manifest list."""
    base = im.make_layer("base", 8192)  # shared between all images
    objs = {
        "img": im.oci_image([base, ("img-top", 4096)], labels={"set": "img"}),
        "idx": im.multiarch("oci", seed="idx", shared_base=base),
        "list": im.multiarch("docker", seed="list", shared_base=base),
    }
    client = im.RegistryClient(reg)
    for repo, obj in objs.items():
        assert client.push(f"harness/{repo}", "v1", obj) == obj.digest
    return objs


@pytest.mark.parametrize("mode,tls", [("plain", False), ("tls-basic", True), ("token", False),
                                      ("token", True)])
def test_push_then_skopeo_inspect(registry_factory, skopeo, mode, tls):
    reg = registry_factory(mode, tls=tls)
    assert reg.mode == mode and reg.host.startswith("127.0.0.1:") and reg.tls == tls
    objs = _push_set(reg)
    for repo, obj in objs.items():
        raw = skopeo.inspect_raw(docker_ref(reg, f"harness/{repo}", "v1"), reg)
        assert raw == obj.manifest
        assert im.manifest_digest(raw) == obj.digest
    # children by digest, arm64 carries variant v8
    idx = objs["idx"]
    arm = idx.child_for("linux", "arm64", "v8")
    assert json.loads(idx.manifest)["manifests"][1]["platform"] == {
        "architecture": "arm64", "os": "linux", "variant": "v8"}
    assert skopeo.digest(docker_ref(reg, "harness/idx", digest=arm.digest), reg) == arm.digest
    # the registry serves the exact bytes and media type
    got = im.RegistryClient(reg).get_manifest("harness/list", "v1")
    assert got.body == objs["list"].manifest
    assert got.header("Content-Type") == im.DOCKER_LIST
    if mode == "token":
        assert reg.token_server.requests, "no token was requested"


def test_skopeo_copy_preserves_digests(plain_registry, tls_registry, skopeo):
    idx = im.multiarch("oci", seed="copy")
    lst = im.multiarch("docker", seed="copy-list")
    im.push(plain_registry, "src/idx", "1.0", idx)
    im.push(tls_registry, "src/list", "1.0", lst)
    skopeo.copy(docker_ref(plain_registry, "src/idx", "1.0"),
                docker_ref(tls_registry, "dst/idx", "1.0"), plain_registry, tls_registry)
    skopeo.copy(docker_ref(tls_registry, "src/list", "1.0"),
                docker_ref(plain_registry, "dst/list", "1.0"), tls_registry, plain_registry)
    assert skopeo.digest(docker_ref(tls_registry, "dst/idx", "1.0"), tls_registry) == idx.digest
    assert skopeo.digest(docker_ref(plain_registry, "dst/list", "1.0"),
                         plain_registry) == lst.digest
    for child in idx.children:
        assert im.RegistryClient(tls_registry).manifest_exists("dst/idx", child.digest)


def test_oci_layout_roundtrip(workdir, plain_registry, skopeo):
    idx = im.multiarch("oci", seed="layout")
    img = im.oci_image([("layout-single", 2048)])
    layout = im.write_oci_layout(workdir / "layout", {"multi": idx, "single": img})
    assert im.verify_oci_layout(layout) == []
    assert skopeo.inspect_raw(f"oci:{layout}:multi") == idx.manifest
    skopeo.copy(f"oci:{layout}:multi", docker_ref(plain_registry, "fromlayout", "m"),
                None, plain_registry)
    skopeo.copy(f"oci:{layout}:single", docker_ref(plain_registry, "fromlayout", "s"),
                None, plain_registry)
    assert skopeo.digest(docker_ref(plain_registry, "fromlayout", "m"), plain_registry) == idx.digest
    assert skopeo.digest(docker_ref(plain_registry, "fromlayout", "s"), plain_registry) == img.digest


def test_tls_basic_auth_is_enforced(tls_registry):
    assert tls_registry.ca_file and tls_registry.username == "alice"
    img = im.oci_image([("tls-auth", 1024)])
    with pytest.raises(im.RegistryError) as e:
        im.push(tls_registry, "denied/img", "v1", img, auth=("alice", "wrong"))
    assert e.value.status == 401
    with pytest.raises(im.RegistryError):
        im.push(tls_registry, "denied/img", "v1", img, auth=im.ANONYMOUS)
    with pytest.raises(ssl.SSLError):  # not trusted without the test CA
        im.RegistryClient(tls_registry.url, auth=tls_registry.auth).ping()
    assert im.RegistryClient(tls_registry).ping() == 200


def test_token_server_and_anonymous_push_refused(token_registry, skopeo):
    ts = token_registry.token_server
    img = im.oci_image([("tok", 2048)])
    im.push(token_registry, "tok/img", "v1", img)
    # distribution lists the actions of a scope in random order (pull,push or push,pull)
    pushes = [r for r in ts.requests
              if any(g["name"] == "tok/img" and set(g["actions"]) == {"pull", "push"}
                     for g in r["granted"])]
    assert pushes, ts.requests
    assert all(r["basic_auth_valid"] and r["status"] == 200 for r in pushes)
    last = ts.issued[-1]
    assert last["aud"] == ts.service and last["iss"] == ts.issuer and last["sub"] == "alice"
    assert [(a["type"], a["name"], sorted(a["actions"])) for a in last["access"]] == [
        ("repository", "tok/img", ["pull", "push"])]
    # anonymous: the token server refuses, so does the registry
    with pytest.raises(im.RegistryError) as e:
        im.push(token_registry, "tok/anon", "v1", img, auth=im.ANONYMOUS)
    assert e.value.status == 401
    assert any(not r["basic_auth"] and r["status"] == 401 for r in ts.requests)
    with pytest.raises(SkopeoError):
        skopeo.inspect_raw(docker_ref(token_registry, "tok/img", "v1"), token_registry,
                           anonymous=True)
    # both response shapes are understood by skopeo
    for mode in ("token_only", "access_token_only", "both"):
        ts.response_mode = mode
        ref = docker_ref(token_registry, "tok/img", "v1")
        assert skopeo.digest(ref, token_registry) == img.digest


def test_token_anonymous_pull(registry_factory):
    reg = registry_factory("token", allow_anonymous_pull=True)
    img = im.oci_image([("anon-pull", 1024)])
    im.push(reg, "pub/img", "v1", img)
    anon = im.RegistryClient(reg, auth=im.ANONYMOUS)
    assert anon.get_manifest("pub/img", "v1").body == img.manifest
    assert reg.token_server.requests[-1]["granted"] == [
        {"type": "repository", "name": "pub/img", "actions": ["pull"]}]
    with pytest.raises(im.RegistryError):
        anon.push("pub/img", "v2", im.oci_image([("anon-push", 1024)]))


def test_token_expiry_is_enforced(token_registry):
    ts = token_registry.token_server
    expired = ts.make_token("alice", [{"type": "repository", "name": "x/y",
                                       "actions": ["pull"]}], expires_in=-120)
    conn = http.client.HTTPConnection(token_registry.host, timeout=10)
    conn.request("GET", "/v2/x/y/tags/list", headers={"Authorization": f"Bearer {expired}"})
    assert conn.getresponse().status == 401
    conn.close()


# --------------------------------------------------------------------------
# fault proxy
# --------------------------------------------------------------------------

def _get(url, timeout=10):
    with no_proxy_opener().open(url, timeout=timeout) as r:
        return r.status, r.read()


def test_proxy_forwards_push_and_pull(plain_registry, fault_proxy, skopeo):
    proxy = fault_proxy(plain_registry)
    obj = im.multiarch("oci", seed="via-proxy", layer_size=300_000)
    assert im.push(proxy, "prox/idx", "v1", obj) == obj.digest
    # Location headers pointed back to the proxy: every request went through it
    assert any(e["method"] == "PUT" and "/blobs/uploads/" in e["path"] for e in proxy.log)
    assert skopeo.digest(docker_ref(proxy, "prox/idx", "v1"), proxy) == obj.digest
    skopeo.copy(docker_ref(proxy, "prox/idx", "v1"), docker_ref(proxy, "prox/copy", "v1"),
                proxy, proxy)
    assert im.RegistryClient(plain_registry).get_manifest("prox/copy", "v1").body == obj.manifest


def test_proxy_status_rule(plain_registry, fault_proxy):
    proxy = fault_proxy(plain_registry)
    rule = Rule(method="GET", path_regex=r"^/v2/$", action="status", status=500, times=1)
    proxy.set_rules([rule])
    with pytest.raises(urllib.error.HTTPError) as e:
        _get(proxy.url + "/v2/")
    assert e.value.code == 500
    assert json.loads(e.value.read())["errors"][0]["code"] == "UNKNOWN"
    assert _get(proxy.url + "/v2/")[0] == 200
    assert (rule.matched, rule.applied, rule.passed) == (2, 1, 1)
    # The proxy logs a request after answering it: give its thread a moment (bounded).
    deadline = time.monotonic() + 5
    while len(proxy.log) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [(x["status"], x["fault"]) for x in proxy.log] == [(500, "status"), (200, None)]

    proxy.set_rules([Rule(path_regex="/v2/", action="status_429", retry_after=7, after=1)])
    assert _get(proxy.url + "/v2/")[0] == 200  # skipped by after=1
    with pytest.raises(urllib.error.HTTPError) as e:
        _get(proxy.url + "/v2/")
    assert e.value.code == 429 and e.value.headers["Retry-After"] == "7"


def test_proxy_reset_mid_body_truncates_blob(plain_registry, fault_proxy, workdir):
    img = im.oci_image([("trunc", 1_000_000)])
    im.push(plain_registry, "flaky/img", "v1", img)
    layer = img.layers[0]
    proxy = fault_proxy(plain_registry)
    proxy.set_rules([Rule(method="GET", path_regex=r"/blobs/sha256:", action="reset_mid_body",
                          times=1)])
    url = f"{proxy.url}/v2/flaky/img/blobs/{layer.digest}"
    with pytest.raises(http.client.IncompleteRead) as e:
        _get(url)
    assert 0 < len(e.value.partial) < layer.size
    assert _get(url)[1] == layer.blob  # times=1: the retry passes
    # curl reports the truncation as a partial-file error (exit 18)
    proxy.set_rules([Rule(method="GET", path_regex=r"/blobs/", action="reset_mid_body",
                          fraction=0.25)])
    out = workdir / "partial"
    p = subprocess.run(["curl", "-sS", "--noproxy", "*", "-o", str(out), url],
                       capture_output=True, timeout=30)
    assert p.returncode == 18 and out.stat().st_size == layer.size // 4


def test_proxy_resets_and_stall(plain_registry, fault_proxy):
    proxy = fault_proxy(plain_registry)
    proxy.set_rules([Rule(path_regex="^/v2/$", action="reset_before")])
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError, urllib.error.URLError)):
        _get(proxy.url + "/v2/")
    assert _get(proxy.url + "/v2/")[0] == 200

    # an upload whose request body is cut: the client fails, the retry works
    blob = im.make_layer("upload-cut", 200_000).blob
    proxy.set_rules([Rule(method="PUT", path_regex="/blobs/uploads/",
                          action="reset_request_body")])
    with pytest.raises((OSError, http.client.HTTPException)):
        im.RegistryClient(proxy).push_blob("cut/blob", blob)
    assert im.RegistryClient(proxy).push_blob("cut/blob", blob) == im.sha256_digest(blob)
    assert im.RegistryClient(plain_registry).get_blob("cut/blob", im.sha256_digest(blob)) == blob

    # stall: headers and 10% of the body, then nothing for 1 s, then close
    digest = im.sha256_digest(blob)
    proxy.set_rules([Rule(method="GET", path_regex="/blobs/", action="stall", seconds=1,
                          fraction=0.1)])
    t0 = time.monotonic()
    with pytest.raises(http.client.IncompleteRead):
        _get(f"{proxy.url}/v2/cut/blob/blobs/{digest}")
    assert time.monotonic() - t0 >= 0.9
    proxy.set_rules([Rule(method="GET", path_regex="/blobs/", action="stall", seconds=3)])
    with pytest.raises((TimeoutError, OSError)):  # a client timeout shorter than the stall
        _get(f"{proxy.url}/v2/cut/blob/blobs/{digest}", timeout=0.5)


def test_proxy_dead_mode(plain_registry, fault_proxy):
    proxy = fault_proxy(plain_registry)
    assert _get(proxy.url + "/v2/")[0] == 200
    proxy.dead = True
    with pytest.raises((ConnectionError, urllib.error.URLError, http.client.HTTPException)):
        _get(proxy.url + "/v2/")
    p = subprocess.run(["curl", "-sS", "--noproxy", "*", "--max-time", "5", proxy.url + "/v2/"],
                       capture_output=True, timeout=30)
    assert p.returncode != 0
    proxy.dead = False
    assert _get(proxy.url + "/v2/")[0] == 200


def test_layers_are_deterministic_and_shared():
    a1, a2 = im.make_layer("same", 5000), im.make_layer("same", 5000)
    assert a1 == a2 and a1.digest == a2.digest
    blob, diff_id = im.make_layer("other", 5000)
    assert blob != a1.blob and diff_id.startswith("sha256:")
    i1 = im.oci_image([a1, ("x", 100)])
    i2 = im.oci_image([a1, ("y", 100)], platform=("linux", "arm64", "v8"))
    assert a1.digest in i1.blobs and a1.digest in i2.blobs
    assert json.loads(i2.config)["variant"] == "v8"


def test_aas_bundle_fixture(run_aas):
    p = run_aas("--help", timeout=30)
    assert p.returncode == 0, p.stderr
