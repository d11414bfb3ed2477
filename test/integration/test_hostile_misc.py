"""The smaller points of issue 11 (rules 6 and 9): a YAML alias bomb in a chart's
values, ``--key`` given a private key, and a part file beyond the parts index.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from harness import hostile

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
        hostile.write_layout(neutral / "layout")
        manifest = neutral / "bundle.yaml"
        manifest.write_text("apiVersion: aas-bundle/v1\nkind: Bundle\nname: demo\nversion: 1.0.0\nk8s: k8s\n"
                            "releases:\n  - name: web\n    chart: charts/web\n    namespace: shop\n"
                            f"images:\n  - ref: shop/web:1.0\n    from: oci:{neutral / 'layout'}:web\n")
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
