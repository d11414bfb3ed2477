"""The smaller points of issue 11 (rules 6 and 9): a YAML alias bomb in a chart's
values, ``--key`` given a private key, and a part file beyond the parts index.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from harness import hostile, images
from harness.faultproxy import Rule

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def env(aas_bundle, tmp_path_factory):
    root = tmp_path_factory.mktemp("misc")
    run = hostile.Runner(aas_bundle, root / "home")
    return run, hostile.keygen(run, root / "trusted"), root


@pytest.fixture
def neutral(tmp_path_factory) -> Path:
    return Path(tempfile.mkdtemp(prefix="m", dir=tmp_path_factory.getbasetemp()))


# ---- YAML alias bomb ----------------------------------------------------------------------

def alias_bomb(levels: int = 5) -> str:
    """A 4 KiB string aliased x10 over ``levels`` levels: ~4.7 KB of YAML that expands to
    4 KiB x 10^levels (400 MiB of strings for 5) with only ~10^levels nodes, far under a
    node limit."""
    lines = ["image:", "  repository: shop/web", "  tag: \"1.0\"", f"s0: &s0 \"{'x' * 4096}\""]
    for i in range(1, levels + 1):
        lines.append(f"s{i}: &s{i} [{', '.join([f'*s{i - 1}'] * 10)}]")
    return "\n".join(lines) + "\n"


def bomb_chart(root: Path) -> Path:
    chart = root / "k8s" / "charts" / "web"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(hostile.CHART_YAML)
    (chart / "values.yaml").write_text(alias_bomb())
    (chart / "templates" / "deploy.yaml").write_text(hostile.CHART_TEMPLATE.replace(".Values.replicas", "1"))
    return chart


def web_release_manifest(root: Path) -> Path:
    """A bundle manifest releasing ROOT/k8s/charts/web, its image from an OCI layout."""
    hostile.write_layout(root / "layout")
    manifest = root / "bundle.yaml"
    manifest.write_text("apiVersion: aas-bundle/v1\nkind: Bundle\nname: demo\nversion: 1.0.0\nk8s: k8s\n"
                        "releases:\n  - name: web\n    chart: charts/web\n    namespace: shop\n"
                        f"images:\n  - ref: shop/web:1.0\n    from: oci:{root / 'layout'}:web\n")
    return manifest


@pytest.mark.parametrize("cmd", ["images", "pack"])
def test_yaml_alias_bomb_is_bounded_in_bytes(env, neutral, cmd):
    """images and pack refuse the values file with a FILE:LINE error instead of expanding
    it: peak RSS stays under 512 MiB (the expansion takes gigabytes; the process runs
    under an address-space limit of 2 GiB so that a failing build cannot take the
    machine down, and an out-of-memory failure does not pass for the refusal)."""
    run, key, _ = env
    chart = bomb_chart(neutral)
    assert len((chart / "values.yaml").read_bytes()) < 5000
    if cmd == "images":
        args = ["images", chart, "--json"]
    else:
        manifest = web_release_manifest(neutral)
        args = ["pack", "-f", manifest, "-o", neutral / "b.tar", "--key", key.private, "--cache", neutral / "c", "-q"]
    cmdline = [sys.executable, "-m", "harness.peakrss", "prlimit", f"--as={2 << 30}", str(run.binary), *map(str, args)]
    p = subprocess.run(cmdline, capture_output=True, text=True, timeout=120, cwd=HERE, env=run.env())
    rss = int(re.search(r"peak_rss_kib=(\d+)", p.stderr).group(1))
    report = f"exit {p.returncode}, peak RSS {rss} KiB\n{p.stderr[-2000:]}"
    assert p.returncode in (1, 2), report
    assert re.search(r"values\.yaml:\d+", p.stderr), report
    assert "bad_alloc" not in p.stderr and "out of memory" not in p.stderr.lower(), report
    assert rss < 512 << 10, report
    assert not (neutral / "b.tar").exists()


# ---- --key with a private key ---------------------------------------------------------------

@pytest.mark.parametrize("cmd", ["verify", "inspect", "load"])
def test_key_that_is_private_is_a_usage_error(env, neutral, cmd):
    run, key, root = env
    bundle = root / "b.tar"
    if not bundle.exists():
        bundle = hostile.pack_small(run, root / "pack", key)
    args = {"verify": ["verify", bundle], "inspect": ["inspect", bundle],
            "load": ["load", bundle, "--registry", "127.0.0.1:9/x", "--out", neutral / "out", "--plain-http"]}[cmd]
    p = run(*args, "--key", key.private, cwd=neutral, timeout=60)
    assert p.returncode == 2, f"exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    assert "private" in p.stderr.lower() and str(key.private.name) in p.stderr, p.stderr
    assert not (neutral / "out").exists()


# ---- a part beyond the parts index ------------------------------------------------------------

def test_extra_part_is_a_warning(env, neutral):
    run, key, _ = env
    hostile.write_layout(neutral / "layout", base_size=2_500_000)
    hostile.pack_small(run, neutral, key, name="s.tar", extra_args=["--split-size", "1M"])
    parts = sorted(neutral.glob("s.tar.part*"))
    assert len(parts) >= 3
    extra = neutral / f"s.tar.part{len(parts):03d}"
    extra.write_bytes(parts[0].read_bytes())
    p = run("verify", neutral / "s.tar.parts", "--key", key.pub, cwd=neutral)
    assert p.returncode == 0, p.stderr
    assert extra.name in p.stderr and "warning" in p.stderr.lower(), p.stderr


# ---- --flatten collisions before the archive is read ------------------------------------------

def two_apps(root: Path) -> Path:
    """A manifest with two images whose last path component is the same (one/app, two/app)."""
    hostile.write_layout(root / "layout")
    k8s = root / "k8s" / "plain"
    k8s.mkdir(parents=True)
    (k8s / "app.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n"
                                  "    - name: a\n      image: one/app:1.0\n    - name: b\n      image: two/app:1.0\n")
    m = root / "bundle.yaml"
    m.write_text("apiVersion: aas-bundle/v1\nkind: Bundle\nname: demo\nversion: 1.0.0\nk8s: k8s\n"
                 "manifests: [plain/app.yaml]\nimages:\n"
                 f"  - ref: one/app:1.0\n    from: oci:{root / 'layout'}:a\n"
                 f"  - ref: two/app:1.0\n    from: oci:{root / 'layout'}:web\n")
    return m


def test_flatten_collision_is_reported_before_the_archive_is_read(env, neutral, plain_registry):
    """The archive is cut right after bundle.json and its signature: a load that reports
    the --flatten collision first says so (usage error), one that verifies first reports
    the truncation. The message names the target once (no doubled prefix)."""
    run, key, _ = env
    p = run("pack", "-f", two_apps(neutral), "-o", neutral / "b.tar", "--key", key.private, "--cache",
            neutral / "c", "-q", cwd=neutral)
    assert p.returncode == 0, p.stderr
    c = hostile.Crafted.read(neutral / "b.tar")
    data = c.tar(key, end=b"")
    head = data[: len(hostile.file("bundle.json", c.doc_bytes()).to_bytes()) + 1024]  # bundle.json and its signature
    cut = neutral / "cut.tar"
    cut.write_bytes(head)
    p = run("load", cut, "--registry", f"{plain_registry.host}/fp", "--out", neutral / "out", "--plain-http",
            "--key", key.pub, "--flatten", cwd=neutral, timeout=60)
    assert p.returncode == 2, f"exit {p.returncode}\n{p.stderr}"
    assert "--flatten" in p.stderr and f"{plain_registry.host}/fp/app" in p.stderr, p.stderr
    assert "/fp/fp/" not in p.stderr, p.stderr
    assert not (neutral / "out").exists()
    work = Path(f"{neutral / 'out'}.aas-load")
    assert not any(q.name in ("k8s", "images") for q in work.rglob("*")) if work.exists() else True


# ---- signals ------------------------------------------------------------------------------------

def temp_files(folder: Path) -> list[str]:
    return [str(q.relative_to(folder)) for q in folder.rglob("*") if ".tmp" in q.name]


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_pack_interrupted_removes_its_temporary_files(env, neutral, plain_registry, fault_proxy, sig, code):
    run, key, _ = env
    big = images.oci_image([images.make_layer("sig-big", 3_000_000)])
    images.push(plain_registry, "shop/big", "1.0", big)
    proxy = fault_proxy(plain_registry, [Rule(method="GET", path_regex="/blobs/sha256:", action="stall",
                                               fraction=0.3, seconds=8, times=None)])
    manifest = hostile.bundles.project(neutral / "proj", [f"{proxy.host}/shop/big:1.0"])
    out = neutral / "o" / "b.tar"
    out.parent.mkdir()
    proc = subprocess.Popen([str(run.binary), "pack", "-f", str(manifest), "-o", str(out), "--key", str(key.private),
                             "--cache", str(neutral / "cache"), "--plain-http", "-q"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=run.env(), cwd=str(neutral))
    try:
        deadline = time.monotonic() + 60
        while not any(e["fault"] for e in proxy.log):
            assert proc.poll() is None, f"pack ended early ({proc.returncode}): {proc.stderr.read()}"
            assert time.monotonic() < deadline, "pack never reached a blob"
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(sig)
        rc = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == code, f"exit {rc} after {sig.name}: {proc.stderr.read()}"
    left = temp_files(out.parent) + [f"cache/{f}" for f in temp_files(neutral / "cache")]
    assert left == [], f"{sig.name} left temporary files: {left}"
    assert not out.exists()


def test_load_interrupted_exits_143_and_a_rerun_loads(env, neutral, plain_registry, fault_proxy):
    run, key, root = env
    bundle = root / "pack" / "b.tar"
    if not bundle.exists():
        bundle = hostile.pack_small(run, root / "pack", key)
    proxy = fault_proxy(plain_registry, [Rule(path_regex="/blobs/uploads/", action="delay", seconds=8, times=None)])
    out = neutral / "out"
    args = [str(run.binary), "load", str(bundle), "--registry", f"{proxy.host}/airgap", "--out", str(out),
            "--plain-http", "--key", str(key.pub), "-j", "1"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=run.env(),
                            cwd=str(neutral))
    try:
        deadline = time.monotonic() + 60
        while not proxy.requests(path_regex="/blobs/uploads/"):
            assert proc.poll() is None, f"load ended early ({proc.returncode}): {proc.stderr.read()}"
            assert time.monotonic() < deadline, "load never started pushing"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == 143, f"exit {rc}: {proc.stderr.read()}"
    assert not out.exists() and temp_files(neutral) == []
    proxy.set_rules([])
    p = run(*args[1:], cwd=neutral)
    assert p.returncode == 0, p.stderr
    assert (out / "install.sh").is_file()


# ---- a template symlink leaving the chart ---------------------------------------------------

@pytest.mark.parametrize("cmd", ["images", "pack"])
def test_template_symlink_out_of_the_chart_is_refused(env, neutral, cmd):
    """images refuses a chart whose template is a symlink to a file outside the chart, as
    pack does (neither reads it). The image it names is on a closed loopback port, so a
    reader that follows the link touches nothing beyond 127.0.0.1."""
    run, key, _ = env
    outside = neutral / "outside.yaml"
    outside.write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  containers:\n"
                       "    - name: x\n      image: 127.0.0.1:9/evil/secret:1\n")
    chart = neutral / "k8s" / "charts" / "web"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(hostile.CHART_YAML)
    (chart / "values.yaml").write_text(hostile.CHART_VALUES)
    (chart / "templates" / "deploy.yaml").write_text(hostile.CHART_TEMPLATE)
    (chart / "templates" / "leak.yaml").symlink_to("../../../../outside.yaml")
    assert (chart / "templates" / "leak.yaml").read_text() == outside.read_text()
    if cmd == "images":
        p = run("images", chart, "--json", cwd=neutral)
    else:
        manifest = web_release_manifest(neutral)
        p = run("pack", "-f", manifest, "-o", neutral / "b.tar", "--key", key.private, "--cache", neutral / "c",
                "-q", "--retries", "0", "--plain-http", cwd=neutral)
    assert p.returncode in (1, 2), f"{cmd} followed the symlink (exit {p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr}"
    assert "leak.yaml" in p.stderr and "symlink" in p.stderr.lower(), p.stderr
    assert "evil/secret" not in p.stdout
