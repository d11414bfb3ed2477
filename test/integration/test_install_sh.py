"""install.sh from a bundle with hostile names (issue 11, rule 5).

A bundle whose release name is valid but whose chart folder, values file, plain manifest
and version hold shell metacharacters (quotes, $(…), backticks, spaces; no control
characters) is packed and loaded into a plain registry on 127.0.0.1; the generated
install.sh then runs with ``kubectl``, ``helm`` and ``touch`` stubs first on PATH that
record their argv, one JSON line per call. It must make exactly the expected calls, with
every path as one argument naming a file of the output, and run nothing else.

Then the names that cannot be quoted away: release names and namespaces that break
Helm's and Kubernetes' DNS-1123 rules, and control characters in the name or version,
are refused by pack (from the manifest) and by load (from a signed bundle.json), with a
message naming the field and without printing the control character raw.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from harness import hostile
from harness.hostile import Crafted
from harness.images import RegistryClient

CHART = "charts/we'b $(touch pwned-chart) `touch pwned-bt` x"
VALUES = "environments/pr od/va'l $(touch pwned-values) `touch pwned-vbt`.yaml"
PLAIN = "plain/a'pp $(touch pwned-plain) \"q\" `touch pwned-pbt`.yaml"
VERSION = "1.0.0 '$(touch pwned-version)' `touch pwned-v2` \"x\""

STUB = """#!/usr/bin/python3
import json, os, sys
with open(os.environ["STUB_LOG"], "a") as f:
    f.write(json.dumps([os.path.basename(sys.argv[0])] + sys.argv[1:]) + "\\n")
"""


@pytest.fixture(scope="module")
def keys(aas_bundle, tmp_path_factory):
    root = tmp_path_factory.mktemp("keys")
    run = hostile.Runner(aas_bundle, root / "home")
    return run, hostile.keygen(run, root / "trusted")


@pytest.fixture
def neutral(tmp_path_factory) -> Path:
    """A fresh folder whose name says nothing (messages quote paths: a test named
    ..._names_... must not pass for a message naming the field "name")."""
    return Path(tempfile.mkdtemp(prefix="n", dir=tmp_path_factory.getbasetemp()))


def stubs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("kubectl", "helm", "touch"):
        (folder / name).write_text(STUB)
        (folder / name).chmod(0o755)
    return folder


def repos(reg) -> list[str]:
    r = RegistryClient(reg).request("GET", "/v2/_catalog")
    assert r.status == 200, r.body
    return json.loads(r.body).get("repositories") or []


def test_install_sh_quotes_every_name(keys, plain_registry, workdir):
    run, key = keys
    bundle = hostile.pack_small(run, workdir / "pack", key, chart_dir=CHART, values_file=VALUES, plain_file=PLAIN,
                                version=VERSION)
    out = workdir / "out"
    p = run("load", bundle, "--registry", f"{plain_registry.host}/airgap", "--out", out, "--plain-http",
            "--key", key.pub, cwd=workdir)
    assert p.returncode == 0, p.stderr
    script = out / "install.sh"
    assert script.is_file() and os.access(script, os.X_OK)

    log = workdir / "calls.jsonl"
    bin_ = stubs(workdir / "stubs")
    elsewhere = workdir / "elsewhere"
    elsewhere.mkdir()
    env = {"PATH": f"{bin_}:/usr/bin:/bin", "STUB_LOG": str(log), "HOME": str(workdir / "home")}
    r = subprocess.run(["sh", str(script)], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"install.sh failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    assert calls == [
        ["kubectl", "apply", "-f", f"k8s/{PLAIN}"],
        ["helm", "upgrade", "--install", "web", f"k8s/{CHART}", "--namespace", "shop", "--create-namespace",
         "--values", f"k8s/{VALUES}"],
    ], f"install.sh made other calls than expected:\n{json.dumps(calls, indent=1)}\n--- install.sh:\n{script.read_text()}"
    # Every path given is a file or folder of the output (install.sh runs from its folder).
    for path in (f"k8s/{PLAIN}", f"k8s/{CHART}", f"k8s/{VALUES}"):
        assert (out / path).exists(), path
    # Nothing injected ran: no touch (stubbed, so it would be in the log) and no file made.
    pwned = [str(q) for q in workdir.rglob("pwned*")]
    assert not pwned, pwned
    assert "== web" in r.stdout


@pytest.mark.parametrize("field,value,words", [
    ("release", "Web", ("release",)),
    ("release", "web_db", ("release",)),
    ("release", "web'x", ("release",)),
    ("release", "-web", ("release",)),
    ("release", "w" * 54, ("release",)),  # Helm: at most 53 characters
    ("namespace", "Shop", ("namespace",)),
    ("namespace", "shop_ns", ("namespace",)),
    ("namespace", "shop.ns", ("namespace",)),  # a DNS-1123 label: no dots
    ("namespace", "n" * 64, ("namespace",)),
    ("version", "1.0.0\nINJECTED line", ("version",)),
    ("version", "1.0.0\tTAB", ("version",)),
    ("version", "1.0.0\x1b[31mred", ("version",)),
    ("name", "demo\x07", ("name",)),
])
def test_pack_refuses_bad_names(keys, neutral, field, value, words):
    run, key = keys
    kw = {"release": {"release": value}, "namespace": {"namespace": value}, "version": {"version": value},
          "name": {"name": value}}[field]
    root = neutral
    hostile.write_layout(root / "layout")
    manifest = hostile.write_project(root / "proj", root / "layout", **kw)
    p = run("pack", "-f", manifest, "-o", root / "b.tar", "--cache", root / "cache", "--key", key.private, "-q",
            cwd=root)
    assert p.returncode in (1, 2), f"pack accepted {field} {value!r} ({p.returncode}):\n{p.stderr}"
    assert not (root / "b.tar").exists()
    assert any(w in p.stderr.lower() for w in words), p.stderr
    assert_no_raw_control(p.stderr, value)


def assert_no_raw_control(text: str, value: str):
    for c in value:
        if ord(c) < 0x20 and c != "\n":
            assert c not in text, f"printed {c!r} raw: {text!r}"
    if "\n" in value:
        tail = value.split("\n", 1)[1]
        assert not any(line.startswith(tail) for line in text.splitlines()), f"printed the newline raw: {text!r}"


@pytest.fixture(scope="module")
def signed_base(keys, tmp_path_factory):
    run, key = keys
    root = tmp_path_factory.mktemp("base")
    return Crafted.read(hostile.pack_small(run, root, key))


@pytest.mark.parametrize("field,value,words", [
    ("release", "Web", ("releases[0].name", "release name")),
    ("release", "web'x", ("releases[0].name", "release name")),
    ("release", "w" * 54, ("releases[0].name", "release name")),
    ("namespace", "shop_ns", ("releases[0].namespace", "namespace")),
    ("namespace", "n" * 64, ("releases[0].namespace", "namespace")),
    ("version", "1.0.0\tTAB", ("version",)),
    ("version", "1.0.0\x1b[31mred", ("version",)),
    ("name", "demo\x07", ("name",)),
    ("name", "demo\nINJECTED line", ("name",)),
])
def test_load_refuses_bad_names(keys, signed_base, plain_registry, neutral, field, value, words):
    """The same names in a bundle.json signed by the trusted key (a compromised online
    side): load refuses before pushing or writing."""
    run, key = keys
    c = signed_base.copy()
    if field == "release":
        old = c.doc["releases"][0]["name"]
        c.doc["releases"][0]["name"] = value
        for img in c.doc["images"]:
            for s in img["sites"]:
                if s.get("release") == old:
                    s["release"] = value
    elif field == "namespace":
        c.doc["releases"][0]["namespace"] = value
    else:
        c.doc[field] = value
    bundle = c.write(neutral / "b.tar", key)
    out = neutral / "out"
    p = run("load", bundle, "--registry", f"{plain_registry.host}/airgap", "--out", out, "--plain-http",
            "--key", key.pub, cwd=neutral)
    assert p.returncode in (1, 2), f"load accepted {field} {value!r}:\n{p.stdout}\n{p.stderr}"
    assert any(w in p.stderr for w in words), p.stderr
    assert_no_raw_control(p.stdout + p.stderr, value)
    assert not out.exists()
    assert repos(plain_registry) == []
