"""SIGINT and SIGTERM during pack and load: the temporary files go, the exit status is
128 + the signal (130, 143), and a rerun completes."""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from harness import bundles, images
from harness.checks import assert_ok
from harness.faultproxy import Rule


def wait_for(pred, seconds=30.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.005)
    return False


@pytest.fixture
def big_project(workdir):
    """A project whose single image has a 48 MiB incompressible layer, from an OCI layout."""
    img = images.oci_image([images.make_layer("sig-big", 48 << 20)])
    layout = images.write_oci_layout(workdir / "layout", {"1.0": img})
    return bundles.project(workdir / "proj", ["shop/big:1.0"],
                           extra_images=[{"ref": "shop/big:1.0", "from": f"oci:{layout}:1.0"}])


@pytest.mark.parametrize("sig,rc", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_during_pack_removes_the_temporary_file(aas_bundle, run_aas, workdir, key, big_project, sig, rc):
    out = workdir / "o" / "b.tar.zst"
    out.parent.mkdir()
    cmd = [str(aas_bundle), "pack", "-f", str(big_project), "-o", str(out), "--key", f"{key}.key",
           "--cache", str(workdir / "cache"), "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    temps = lambda: glob.glob(str(out.parent / ".b.tar.zst.tmp-*"))  # noqa: E731
    seen = wait_for(lambda: temps() or proc.poll() is not None)
    assert seen and proc.poll() is None, f"pack ended before writing ({proc.returncode}): {proc.communicate()}"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == rc, err
    assert temps() == [], "the temporary bundle file outlived the signal"
    assert not out.exists()
    # A rerun completes from the cache.
    assert_ok(subprocess.run(cmd, capture_output=True, text=True, timeout=120))
    assert out.exists() and temps() == []


@pytest.mark.parametrize("sig,rc", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_during_load_removes_extracted_files_and_the_lock(aas_bundle, run_aas, workdir, key, big_project,
                                                                  registry_factory, fault_proxy, sig, rc):
    bundle = workdir / "b.tar"
    assert_ok(run_aas("pack", "-f", big_project, "-o", bundle, "--key", f"{key}.key", "--cache", workdir / "cache",
                      "-q", timeout=120))
    target = registry_factory("plain")
    proxy = fault_proxy(target, [Rule(path_regex="/blobs/uploads/", action="delay", seconds=0.5, times=None)])
    out = workdir / "out"
    cmd = [str(aas_bundle), "load", str(bundle), "--registry", f"{proxy.host}/airgap", "--out", str(out),
           "--plain-http", "--key", f"{key}.pub", "-j", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Wait until it is pushing (the proxy saw an upload), then interrupt.
    assert wait_for(lambda: proxy.requests(path_regex="/blobs/uploads/") or proc.poll() is not None)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == rc, err
    assert not out.exists()
    assert not (workdir / "out.aas-load.lock").exists()
    assert not (workdir / "out.aas-load" / "bundle").exists(), "the extracted bundle outlived the signal"
    proxy.set_rules([])
    assert_ok(subprocess.run(cmd + ["--json"], capture_output=True, text=True, timeout=180))
    assert (out / ".aas-load").is_file()


def test_signal_during_dry_run_leaves_no_temporary_folder(aas_bundle, run_aas, workdir, key, big_project):
    bundle = workdir / "b.tar"
    assert_ok(run_aas("pack", "-f", big_project, "-o", bundle, "--key", f"{key}.key", "--cache", workdir / "cache",
                      "-q", timeout=120))
    tmp = workdir / "tmp"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp))
    proc = subprocess.Popen([str(aas_bundle), "load", str(bundle), "--registry", "127.0.0.1:9/x", "--out",
                             str(workdir / "out"), "--dry-run", "--key", f"{key}.pub"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert wait_for(lambda: any(tmp.iterdir()) or proc.poll() is not None)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode in (143, 0)
    assert list(tmp.iterdir()) == []
