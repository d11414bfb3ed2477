"""Credential helpers named in a docker config.json (credHelpers per registry, then
credsStore), run as docker, oras and crane run them: `docker-credential-NAME get` with
the server on stdin, against the TLS + htpasswd registry. The helper here is a script on
PATH that logs what it was asked; its answer is never printed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness import images
from harness.checks import assert_ok

HELPER = """#!/usr/bin/python3
import json, os, sys
server = sys.stdin.read().strip()
with open(os.environ["HELPER_LOG"], "a") as f:
    f.write(json.dumps({"argv": sys.argv[1:], "server": server}) + "\\n")
mode = os.environ.get("HELPER_MODE", "ok")
if mode == "fail":
    sys.stderr.write("keychain locked: unlock it first\\n")
    sys.exit(3)
if mode == "none" or server != os.environ["HELPER_SERVER"]:
    print("credentials not found in native keychain")
    sys.exit(1)
if mode == "hang":
    import time
    time.sleep(60)
print(json.dumps({"ServerURL": server, "Username": os.environ["HELPER_USER"], "Secret": os.environ["HELPER_SECRET"]}))
"""


@pytest.fixture
def helper(workdir, tls_registry):
    bin_ = workdir / "helpers"
    bin_.mkdir()
    for name in ("aastest", "aasstore"):
        p = bin_ / f"docker-credential-{name}"
        p.write_text(HELPER)
        p.chmod(0o755)
    log = workdir / "helper.log"
    env = {"PATH": f"{bin_}:{os.environ.get('PATH', '/usr/bin:/bin')}", "HELPER_LOG": str(log),
           "HELPER_SERVER": tls_registry.host, "HELPER_USER": tls_registry.username,
           "HELPER_SECRET": tls_registry.password}
    return env, log


def copy_with(run_aas, reg, cfg, env, *extra, timeout=120):
    return run_aas("copy", "--registry-config", cfg, "--ca-file", reg.ca_file, "--verbose", *extra,
                   reg.ref("t/img", "1"), reg.ref("t/copy"), env=env, timeout=timeout)


@pytest.mark.parametrize("style", ["credHelpers", "credsStore"])
def test_helper_gives_the_credentials(tls_registry, run_aas, workdir, helper, style):
    env, log = helper
    images.push(tls_registry, "t/img", "1", images.oci_image([images.make_layer("ch", 100)]))
    cfg = workdir / "config.json"
    cfg.write_text(json.dumps({"credHelpers": {tls_registry.host: "aastest"}} if style == "credHelpers"
                              else {"credsStore": "aasstore"}))
    p = copy_with(run_aas, tls_registry, cfg, env)
    assert_ok(p)
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls and all(c == {"argv": ["get"], "server": tls_registry.host} for c in calls), calls
    assert tls_registry.password not in p.stdout + p.stderr  # --verbose, and still never printed


def test_credhelpers_win_over_credsstore_and_auths(tls_registry, run_aas, workdir, helper):
    env, log = helper
    images.push(tls_registry, "t/img", "1", images.oci_image([images.make_layer("ch2", 100)]))
    cfg = workdir / "config.json"
    cfg.write_text(json.dumps({"credsStore": "missing-helper",
                               "credHelpers": {tls_registry.host: "aastest"},
                               "auths": {tls_registry.host: {"username": "alice", "password": "wrong"}}}))
    assert_ok(copy_with(run_aas, tls_registry, cfg, env))


def test_helper_without_credentials_falls_back_to_auths(tls_registry, run_aas, workdir, helper):
    env, log = helper
    images.push(tls_registry, "t/img", "1", images.oci_image([images.make_layer("ch3", 100)]))
    cfg = workdir / "config.json"
    import base64
    auth = base64.b64encode(f"{tls_registry.username}:{tls_registry.password}".encode()).decode()
    cfg.write_text(json.dumps({"credsStore": "aasstore", "auths": {tls_registry.host: {"auth": auth}}}))
    assert_ok(copy_with(run_aas, tls_registry, cfg, dict(env, HELPER_MODE="none")))
    assert log.exists()


def test_failing_helper_is_named_with_its_own_error(tls_registry, run_aas, workdir, helper):
    env, _ = helper
    cfg = workdir / "config.json"
    cfg.write_text(json.dumps({"credHelpers": {tls_registry.host: "aastest"}}))
    p = copy_with(run_aas, tls_registry, cfg, dict(env, HELPER_MODE="fail"))
    assert p.returncode in (1, 2)
    assert "docker-credential-aastest" in p.stderr and "keychain locked: unlock it first" in p.stderr, p.stderr
    cfg.write_text(json.dumps({"credHelpers": {tls_registry.host: "not-installed"}}))
    p = copy_with(run_aas, tls_registry, cfg, env)
    assert p.returncode in (1, 2) and "docker-credential-not-installed" in p.stderr and "PATH" in p.stderr, p.stderr


def test_wrong_password_is_told_apart_from_no_credentials(tls_registry, run_aas, workdir):
    images.push(tls_registry, "t/img", "1", images.oci_image([images.make_layer("ch4", 100)]))
    cfg = workdir / "config.json"
    cfg.write_text(json.dumps({"auths": {tls_registry.host: {"username": tls_registry.username,
                                                             "password": "not-the-password"}}}))
    p = run_aas("copy", "--registry-config", cfg, "--ca-file", tls_registry.ca_file, tls_registry.ref("t/img", "1"),
                tls_registry.ref("t/copy"))
    assert p.returncode == 1
    assert f"refused the credentials of user \"{tls_registry.username}\"" in p.stderr, p.stderr
    cfg.write_text("{}")
    p = run_aas("copy", "--registry-config", cfg, "--ca-file", tls_registry.ca_file, tls_registry.ref("t/img", "1"),
                tls_registry.ref("t/copy"))
    assert p.returncode == 1
    assert "it needs credentials" in p.stderr and "refused the credentials" not in p.stderr, p.stderr
