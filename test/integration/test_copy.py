"""`aas-bundle copy` against real registries (docker-registry 2.8 on 127.0.0.1).

Every test drives the real binary; digests are checked with skopeo or the raw
registry API, never with aas-bundle itself.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from harness.checks import assert_ok
from harness import images
from harness.faultproxy import Rule
from harness.registry import write_auth_file
from harness.skopeo import Skopeo, docker_ref


def flags_for(reg, side: str) -> list[str]:
    """aas-bundle flags to reach `reg` as the source ("from") or target ("to")."""
    if reg.scheme == "http":
        return [f"--{side}-plain-http"]
    return [f"--{side}-ca-file", reg.ca_file]


def copy(run_aas, src_reg, src, dst_reg, dst, *extra, password_side=None, timeout=120):
    args = ["copy", *flags_for(src_reg, "from"), *flags_for(dst_reg, "to")]
    stdin = None
    if password_side:
        reg = src_reg if password_side == "from" else dst_reg
        args += [f"--{password_side}-username", reg.username, f"--{password_side}-password-stdin"]
        stdin = reg.password + "\n"
    args += [*extra, src, dst]
    return run_aas(*args, input=stdin, timeout=timeout)



def manifest_bytes(reg, repo, ref):
    return images.fetch_manifest(reg, repo, ref)


# --------------------------------------------------------------------------------------
# Copies between the three kinds of registry, digests preserved


@pytest.mark.parametrize("kind", ["oci", "docker"])
def test_single_image_plain_to_plain(plain_registry, run_aas, kind):
    build = images.oci_image if kind == "oci" else images.docker_image
    img = build([images.make_layer(f"{kind}-base", 200_000), images.make_layer(f"{kind}-app", 5_000)])
    images.push(plain_registry, "src/app", "1.0", img)
    p = copy(run_aas, plain_registry, plain_registry.ref("src/app", "1.0"),
             plain_registry, plain_registry.ref("dst/app"), "--json")
    assert_ok(p)
    out = json.loads(p.stdout)
    assert out["digest"] == img.digest
    assert out["media_type"] == img.media_type
    assert out["destination"].endswith("/dst/app:1.0")
    # Same registry, other repository: every blob is mounted, nothing uploaded.
    assert out["blobs"] == {"uploaded": 0, "skipped": 0, "mounted": 3}
    assert manifest_bytes(plain_registry, "dst/app", "1.0") == img.manifest


@pytest.mark.parametrize("target_mode", ["plain", "tls-basic", "token"])
@pytest.mark.parametrize("kind", ["oci", "docker"])
def test_index_to_each_registry_kind(registry_factory, run_aas, workdir, kind, target_mode):
    src = registry_factory("plain")
    dst = registry_factory(target_mode)
    idx = images.multiarch(kind, seed=f"idx-{kind}", shared_base=images.make_layer("shared-base", 50_000))
    images.push(src, "lib/multi", "v2", idx)
    p = copy(run_aas, src, src.ref("lib/multi", "v2"), dst, dst.ref("mirror/multi"), "--json",
             password_side="to" if dst.username else None)
    assert_ok(p)
    out = json.loads(p.stdout)
    assert out["digest"] == idx.digest
    assert out["manifests"] == 3
    # shared base stored once: 2 configs + shared base + 2 arch layers
    assert out["blobs"]["uploaded"] == 5
    assert sorted(out["platforms"]) == ["linux/amd64", "linux/arm64/v8"]
    # skopeo reads what we pushed, with identical digests, top and children.
    sk = Skopeo(workdir)
    assert sk.digest(docker_ref(dst, "mirror/multi", "v2"), dst) == idx.digest
    for child in idx.children:
        assert sk.digest(docker_ref(dst, "mirror/multi", digest=child.digest), dst) == child.digest
        assert sk.inspect(docker_ref(dst, "mirror/multi", digest=child.digest), dst)["Architecture"] == child.platform[1]


def test_from_token_registry_to_tls_registry(registry_factory, run_aas, workdir):
    src = registry_factory("token")
    dst = registry_factory("tls-basic", password=None)
    img = images.docker_image([images.make_layer("tok-src", 30_000)])
    images.push(src, "team/app", "3", img)
    cfg = write_auth_file(workdir / "config.json", [src, dst])
    p = run_aas("copy", *flags_for(src, "from"), *flags_for(dst, "to"), "--registry-config", cfg,
                src.ref("team/app", "3"), dst.ref("team/app"))
    assert_ok(p)
    assert manifest_bytes(dst, "team/app", "3") == img.manifest
    # The token server was asked for pull on the source repository, with valid credentials.
    reqs = src.token_server.requests
    assert any("repository:team/app:pull" in r["scopes"] and r["basic_auth_valid"] for r in reqs)


def test_skopeo_pushed_we_copy_identically(registry_factory, run_aas, workdir):
    """What skopeo pushed (from an OCI layout), aas-bundle copies with identical digests."""
    a = registry_factory("tls-basic")
    b = registry_factory("plain")
    idx = images.multiarch("oci", seed="from-skopeo")
    layout = images.write_oci_layout(workdir / "layout", [("v1", idx)])
    sk = Skopeo(workdir)
    sk.copy(f"oci:{layout}:v1", docker_ref(a, "sk/multi", "v1"), None, a)
    pushed = sk.digest(docker_ref(a, "sk/multi", "v1"), a)
    assert pushed == idx.digest
    p = copy(run_aas, a, a.ref("sk/multi", "v1"), b, b.ref("copy/multi"), password_side="from")
    assert_ok(p)
    assert sk.digest(docker_ref(b, "copy/multi", "v1"), b) == pushed


def test_platform_selects_one_image(plain_registry, run_aas):
    idx = images.multiarch("docker", seed="plat")
    images.push(plain_registry, "lib/plat", "1", idx)
    arm = idx.child_for("linux", "arm64")
    p = copy(run_aas, plain_registry, plain_registry.ref("lib/plat", "1"), plain_registry,
             plain_registry.ref("only/arm", "1"), "--platform", "linux/arm64", "--json")
    assert_ok(p)
    out = json.loads(p.stdout)
    assert out["digest"] == arm.digest
    assert out["platforms"] == ["linux/arm64/v8"]
    assert manifest_bytes(plain_registry, "only/arm", "1") == arm.manifest
    # A platform the index does not have: clear error listing what it has.
    p = copy(run_aas, plain_registry, plain_registry.ref("lib/plat", "1"), plain_registry,
             plain_registry.ref("only/s390x", "1"), "--platform", "linux/s390x")
    assert p.returncode == 1
    assert "no image for platform linux/s390x" in p.stderr
    assert "linux/amd64" in p.stderr and "linux/arm64/v8" in p.stderr


def test_digest_reference_and_second_copy_skips(plain_registry, registry_factory, run_aas):
    dst = registry_factory("plain")
    img = images.oci_image([images.make_layer("dig", 10_000)])
    images.push(plain_registry, "d/img", None, img)
    src_ref = plain_registry.ref("d/img", digest=img.digest)
    p = copy(run_aas, plain_registry, src_ref, dst, dst.ref("d/img"), "--json")
    assert_ok(p)
    out = json.loads(p.stdout)
    assert out["destination"].endswith(f"/d/img@{img.digest}")
    assert out["blobs"]["uploaded"] == 2
    p = copy(run_aas, plain_registry, src_ref, dst, dst.ref("d/img"), "--json")
    assert_ok(p)
    assert json.loads(p.stdout)["blobs"] == {"uploaded": 0, "skipped": 2, "mounted": 0}
    assert manifest_bytes(dst, "d/img", img.digest) == img.manifest


def test_large_blob_uploads_in_chunks(plain_registry, registry_factory, run_aas):
    """A 20 MiB layer crosses several PATCH chunks (chunk size is 32 MiB by default, so
    this mostly proves streaming stays correct for a large blob)."""
    dst = registry_factory("plain")
    img = images.oci_image([images.make_layer("big", 20 << 20)])
    images.push(plain_registry, "big/img", "1", img)
    p = copy(run_aas, plain_registry, plain_registry.ref("big/img", "1"), dst, dst.ref("big/img"))
    assert_ok(p)
    assert manifest_bytes(dst, "big/img", "1") == img.manifest
    assert images.RegistryClient(dst).blob_exists("big/img", img.layers[0].digest)


# --------------------------------------------------------------------------------------
# Authentication and TLS


def test_wrong_password_is_a_clear_error(tls_registry, plain_registry, run_aas):
    images.push(plain_registry, "x/y", "1", images.oci_image([images.make_layer("auth", 100)]))
    p = run_aas("copy", "--from-plain-http", "--to-ca-file", tls_registry.ca_file,
                "--to-username", tls_registry.username, "--to-password-stdin",
                plain_registry.ref("x/y", "1"), tls_registry.ref("x/y"), input="not-the-password\n")
    assert p.returncode == 1
    assert "HTTP 401" in p.stderr
    # told apart from missing credentials (test_missing_credentials_say_what_to_do)
    assert f"refused the credentials of user \"{tls_registry.username}\"" in p.stderr, p.stderr
    assert "not-the-password" not in p.stderr + p.stdout


def test_missing_credentials_say_what_to_do(tls_registry, run_aas):
    images.push(tls_registry, "x/y", "1", images.oci_image([images.make_layer("nocred", 100)]))
    p = run_aas("copy", "--ca-file", tls_registry.ca_file, tls_registry.ref("x/y", "1"), tls_registry.ref("x/z"))
    assert p.returncode == 1
    assert "--username" in p.stderr and "--password-stdin" in p.stderr


def test_tls_needs_the_ca_or_insecure(tls_registry, run_aas, workdir):
    images.push(tls_registry, "t/img", "1", images.oci_image([images.make_layer("tls", 100)]))
    cfg = write_auth_file(workdir / "config.json", [tls_registry])
    p = run_aas("copy", "--registry-config", cfg, tls_registry.ref("t/img", "1"), tls_registry.ref("t/copy"))
    assert p.returncode == 1
    assert re.search(r"certificate|SSL", p.stderr), p.stderr
    p = run_aas("copy", "--registry-config", cfg, "--insecure", tls_registry.ref("t/img", "1"),
                tls_registry.ref("t/copy"))
    assert_ok(p)
    p = run_aas("copy", "--registry-config", cfg, "--ca-file", tls_registry.ca_file,
                tls_registry.ref("t/img", "1"), tls_registry.ref("t/copy2"))
    assert_ok(p)


def test_token_scopes_and_anonymous_push_refused(registry_factory, run_aas):
    src = registry_factory("plain")
    dst = registry_factory("token", allow_anonymous_pull=True)
    images.push(src, "a/b", "1", images.oci_image([images.make_layer("anon", 100)]))
    p = copy(run_aas, src, src.ref("a/b", "1"), dst, dst.ref("a/b"))
    assert p.returncode == 1
    assert "401" in p.stderr or "403" in p.stderr
    p = copy(run_aas, src, src.ref("a/b", "1"), dst, dst.ref("a/b"), password_side="to")
    assert_ok(p)
    scopes = [s for r in dst.token_server.requests if r["basic_auth_valid"] for s in r["scopes"]]
    assert "repository:a/b:pull,push" in scopes


@pytest.mark.parametrize("mode", ["tls-basic", "token"])
def test_secrets_never_printed(registry_factory, run_aas, mode):
    src = registry_factory("plain")
    dst = registry_factory(mode)
    images.push(src, "s/img", "1", images.oci_image([images.make_layer("secret", 1000)]))
    p = copy(run_aas, src, src.ref("s/img", "1"), dst, dst.ref("s/img"), "--verbose", password_side="to")
    assert_ok(p)
    out = p.stdout + p.stderr
    assert "debug:" in out  # verbose logs were on
    assert dst.password not in out
    assert "Authorization" not in out
    assert not re.search(r"eyJ[A-Za-z0-9_-]{10,}", out), "a JWT was printed"
    import base64
    assert base64.b64encode(f"{dst.username}:{dst.password}".encode()).decode() not in out


def test_token_response_variants(registry_factory, run_aas):
    """Token servers answer `token`, `access_token` or both: all work."""
    src = registry_factory("plain")
    images.push(src, "v/img", "1", images.oci_image([images.make_layer("variants", 100)]))
    for mode in ("token_only", "access_token_only"):
        dst = registry_factory("token", token_response_mode=mode)
        p = copy(run_aas, src, src.ref("v/img", "1"), dst, dst.ref("v/img"), password_side="to")
        assert_ok(p)


# --------------------------------------------------------------------------------------
# Faults: retries finish the copy with the right digests; a dead registry fails in time


def fault_setup(registry_factory, fault_proxy, seed, size=3 << 20, rules=None):
    src = registry_factory("plain")
    dst = registry_factory("plain")
    img = images.docker_image([images.make_layer(f"{seed}-a", size), images.make_layer(f"{seed}-b", 4000)])
    images.push(src, "f/img", "1", img)
    return src, dst, img


class Via:
    """A registry reached through a proxy: same flags, other host."""

    def __init__(self, reg, proxy):
        self.scheme = "http"
        self.host = proxy.url.split("://", 1)[1]
        self.username = reg.username
        self.password = reg.password
        self.ca_file = None

    def ref(self, repo, tag=None, digest=None):
        r = f"{self.host}/{repo}"
        return r + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


@pytest.mark.parametrize("rule", [
    Rule(method="GET", path_regex=r"/blobs/sha256:", action="reset_mid_body", times=3),
    Rule(method="GET", path_regex=r"/manifests/", action="status", status=500, times=2),
    Rule(method="GET", path_regex=r"/blobs/", action="status", status=503, times=2),
    Rule(method="GET", path_regex=r"/blobs/", action="reset_before", times=2),
], ids=["reset-mid-blob", "manifest-500", "blob-503", "reset-before"])
def test_source_faults_are_retried(registry_factory, fault_proxy, run_aas, rule):
    src, dst, img = fault_setup(registry_factory, fault_proxy, "srcfault")
    proxy = fault_proxy(src, [rule])
    via = Via(src, proxy)
    p = copy(run_aas, via, via.ref("f/img", "1"), dst, dst.ref("f/img"), "--retries", "4")
    assert_ok(p)
    assert rule.applied >= 1
    assert manifest_bytes(dst, "f/img", "1") == img.manifest
    assert "retry" in p.stderr


def test_resumed_download_uses_range(registry_factory, fault_proxy, run_aas):
    src, dst, img = fault_setup(registry_factory, fault_proxy, "range", size=4 << 20)
    rule = Rule(method="GET", path_regex=r"/blobs/" + img.layers[0].digest, action="reset_mid_body", times=1)
    proxy = fault_proxy(src, [rule])
    via = Via(src, proxy)
    p = copy(run_aas, via, via.ref("f/img", "1"), dst, dst.ref("f/img"), "--verbose")
    assert_ok(p)
    assert rule.applied == 1
    assert manifest_bytes(dst, "f/img", "1") == img.manifest


def test_429_retry_after_is_honoured(registry_factory, fault_proxy, run_aas):
    src, dst, img = fault_setup(registry_factory, fault_proxy, "r429", size=1000)
    rule = Rule(method="GET", path_regex=r"/manifests/", action="status_429", retry_after=2, times=1)
    proxy = fault_proxy(src, [rule])
    via = Via(src, proxy)
    t0 = time.monotonic()
    p = copy(run_aas, via, via.ref("f/img", "1"), dst, dst.ref("f/img"))
    elapsed = time.monotonic() - t0
    assert_ok(p)
    assert rule.applied == 1
    assert "HTTP 429" in p.stderr
    assert elapsed >= 2.0, "Retry-After: 2 was not waited for"


def test_retry_notice_is_printed_and_in_the_json_warnings(registry_factory, fault_proxy, run_aas):
    src, dst, img = fault_setup(registry_factory, fault_proxy, "rjson", size=1000)
    rule = Rule(method="GET", path_regex=r"/manifests/", action="status", status=503, times=1)
    proxy = fault_proxy(src, [rule])
    via = Via(src, proxy)
    p = copy(run_aas, via, via.ref("f/img", "1"), dst, dst.ref("f/img"), "--json")
    assert_ok(p)
    assert rule.applied == 1
    notices = [w for w in json.loads(p.stdout)["warnings"] if "(retry 1 of " in w]
    assert len(notices) == 1, p.stdout
    assert "HTTP 503" in notices[0]
    assert f"warning: {notices[0]}" in p.stderr.splitlines()


def test_stalled_download_times_out_and_resumes(registry_factory, fault_proxy, run_aas):
    src, dst, img = fault_setup(registry_factory, fault_proxy, "stall", size=2 << 20)
    rule = Rule(method="GET", path_regex=r"/blobs/" + img.layers[0].digest, action="stall", seconds=30, times=1)
    proxy = fault_proxy(src, [rule])
    via = Via(src, proxy)
    t0 = time.monotonic()
    p = copy(run_aas, via, via.ref("f/img", "1"), dst, dst.ref("f/img"), "--stall-timeout", "2")
    assert_ok(p)
    assert time.monotonic() - t0 < 25, "the stall was waited out instead of timed out"
    assert rule.applied == 1
    assert manifest_bytes(dst, "f/img", "1") == img.manifest


@pytest.mark.parametrize("rule", [
    Rule(method="PATCH", action="reset_request_body", times=2),
    Rule(method="PATCH", action="status", status=500, times=1),
    Rule(method="PUT", path_regex=r"/blobs/uploads/", action="status", status=503, times=1),
    Rule(method="POST", path_regex=r"/blobs/uploads/", action="reset_before", times=1),
    Rule(method="PUT", path_regex=r"/manifests/", action="status", status=502, times=1),
], ids=["patch-reset", "patch-500", "put-503", "post-reset", "manifest-put-502"])
def test_target_faults_are_retried(registry_factory, fault_proxy, run_aas, rule):
    src, dst, img = fault_setup(registry_factory, fault_proxy, "dstfault")
    proxy = fault_proxy(dst, [rule])
    via = Via(dst, proxy)
    p = copy(run_aas, src, src.ref("f/img", "1"), via, via.ref("f/img"), "--retries", "4")
    assert_ok(p)
    assert rule.applied >= 1
    assert manifest_bytes(dst, "f/img", "1") == img.manifest
    # Every blob landed with the right content (the registry verified each digest on PUT).
    for d in img.blobs:
        assert images.RegistryClient(dst).blob_exists("f/img", d)


def test_dead_registry_fails_in_bounded_time(registry_factory, fault_proxy, run_aas):
    src, dst, img = fault_setup(registry_factory, fault_proxy, "dead", size=1000)
    proxy = fault_proxy(src)
    proxy.set_dead(True)
    via = Via(src, proxy)
    t0 = time.monotonic()
    p = copy(run_aas, via, via.ref("f/img", "1"), dst, dst.ref("f/img"), "--retries", "3", timeout=60)
    elapsed = time.monotonic() - t0
    assert p.returncode == 1
    assert "gave up after 4 attempts" in p.stderr
    assert via.host in p.stderr
    assert elapsed < 30


def test_refused_port_fails_fast(run_aas, plain_registry):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    t0 = time.monotonic()
    p = run_aas("copy", "--plain-http", "--retries", "2", f"127.0.0.1:{port}/a/b:1", plain_registry.ref("a/b"))
    assert p.returncode == 1
    assert "gave up after 3 attempts" in p.stderr
    assert re.search(r"(?i)connect", p.stderr)
    assert time.monotonic() - t0 < 20


# --------------------------------------------------------------------------------------
# Errors with the registry's own codes


def test_unknown_manifest(plain_registry, run_aas):
    p = run_aas("copy", "--plain-http", plain_registry.ref("nope/img", "1"), plain_registry.ref("x/y"))
    assert p.returncode == 1
    assert "HTTP 404" in p.stderr and ("MANIFEST_UNKNOWN" in p.stderr or "NAME_UNKNOWN" in p.stderr)
    assert "/v2/nope/img/manifests/1" in p.stderr


def test_invalid_reference_is_a_usage_error(run_aas):
    p = run_aas("copy", "example.com/x/queue@sha256:v1.8.3", "example.com/y")
    assert p.returncode == 2
    assert "a sha256 digest is 64 hex digits" in p.stderr
    assert "did you mean ':v1.8.3'?" in p.stderr


def test_upload_resumes_from_reported_range(registry_factory, fault_proxy, run_aas):
    """A chunk the registry never received (500 before forwarding): the client asks the
    registry where the upload stands (GET, Range) and continues from there, in the same
    upload session."""
    src, dst, img = fault_setup(registry_factory, fault_proxy, "resume", size=3 << 20)
    rule = Rule(method="PATCH", action="status", status=500, after=1, times=1)
    proxy = fault_proxy(dst, [rule])
    via = Via(dst, proxy)
    p = copy(run_aas, src, src.ref("f/img", "1"), via, via.ref("f/img"), "--chunk-size", str(1 << 20),
             "--jobs", "1", "--verbose")
    assert_ok(p)
    assert rule.applied == 1
    assert "resuming at byte 1048576" in p.stderr
    posts = [e for e in proxy.log if e["method"] == "POST" and "/blobs/uploads/" in e["path"]]
    assert len(posts) == len(img.blobs), "the upload was restarted instead of resumed"
    patches = [e for e in proxy.log if e["method"] == "PATCH"]
    chunks = sum(-(-len(data) // (1 << 20)) for data in img.blobs.values())
    assert len(patches) == chunks + 1  # every chunk once, plus the one that failed
    assert manifest_bytes(dst, "f/img", "1") == img.manifest


# --------------------------------------------------------------------------------------
# Transport: HTTP/2, memory, credentials from the default docker config


def test_http2_over_tls(registry_factory, run_aas):
    src = registry_factory("plain")
    dst = registry_factory("tls-basic")
    images.push(src, "h2/img", "1", images.oci_image([images.make_layer("h2", 1000)]))
    p = copy(run_aas, src, src.ref("h2/img", "1"), dst, dst.ref("h2/img"), "--verbose", password_side="to")
    assert_ok(p)
    tls_lines = [l for l in p.stderr.splitlines() if f"https://{dst.host}/v2/" in l and "->" in l]
    assert tls_lines and all("(HTTP/2)" in l for l in tls_lines), "\n".join(tls_lines[:5])
    plain_lines = [l for l in p.stderr.splitlines() if f"http://{src.host}/v2/" in l and "->" in l]
    assert plain_lines and all("(HTTP/1.1)" in l for l in plain_lines)


def test_memory_is_bounded_by_buffers_not_blob_size(registry_factory, aas_bundle, workdir):
    """Peak RSS of a copy of a 96 MiB layer stays far below the layer's size."""
    import re as re_
    import subprocess
    import sys
    from pathlib import Path
    from harness.registry import clean_env
    src = registry_factory("plain")
    dst = registry_factory("plain")
    img = images.oci_image([images.make_layer("rss", 96 << 20)])
    images.push(src, "rss/img", "1", img)
    p = subprocess.run([sys.executable, "-m", "harness.peakrss", str(aas_bundle), "copy", "--plain-http",
                        src.ref("rss/img", "1"), dst.ref("rss/img")],
                       capture_output=True, text=True, timeout=300, cwd=str(Path(__file__).parent),
                       env=clean_env({"HOME": str(workdir), "TMPDIR": str(workdir)}))
    assert p.returncode == 0, p.stderr
    peak_mib = int(re_.search(r"peak_rss_kib=(\d+)", p.stderr).group(1)) / 1024
    assert peak_mib < 48, f"peak RSS {peak_mib:.1f} MiB for a 96 MiB layer"
    assert images.fetch_manifest(dst, "rss/img", "1") == img.manifest


@pytest.mark.parametrize("where", ["DOCKER_CONFIG", "HOME"])
def test_default_registry_config_locations(tls_registry, run_aas, workdir, where):
    images.push(tls_registry, "cfg/img", "1", images.oci_image([images.make_layer("cfg", 100)]))
    if where == "DOCKER_CONFIG":
        d = workdir / "dockercfg"
        d.mkdir()
        write_auth_file(d / "config.json", [tls_registry])
        env = {"DOCKER_CONFIG": str(d)}
    else:
        home = workdir / "home"
        (home / ".docker").mkdir(parents=True, exist_ok=True)
        write_auth_file(home / ".docker" / "config.json", [tls_registry])
        env = {"HOME": str(home)}
    p = run_aas("copy", "--ca-file", tls_registry.ca_file, tls_registry.ref("cfg/img", "1"),
                tls_registry.ref("cfg/copy"), env=env)
    assert_ok(p)
    assert tls_registry.password not in p.stdout + p.stderr
