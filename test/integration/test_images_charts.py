"""`aas-bundle images` on the project's own charts: the example shop
(manifests/example) and the edge-case charts under test/data/charts. Each has an
expected.json worked out by hand from the rules in discovery.hpp."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHARTS = REPO / "test" / "data" / "charts"


def run_images(run_aas, *args):
    p = run_aas("images", *args, "--json")
    assert p.stdout, p.stderr
    return p, json.loads(p.stdout)


def classes(out):
    got = {"required": [], "optional": [], "test": []}
    for i in out["images"]:
        if not i.get("source"):
            got[i["class"]].append(i["ref"])
    return {k: sorted(v) for k, v in got.items()}


def check_expected(out, expected):
    got = classes(out)
    assert got["required"] == sorted(expected["required"])
    assert got["optional"] == sorted(expected["optional"])
    assert got["test"] == sorted(expected["test_hooks"])
    found = {i["ref"] for i in out["images"]}
    for ref in expected.get("must_not_find", []):
        assert ref not in found, f"{ref} must not be discovered"
    assert len(out["errors"]) == len(expected["errors"])
    for want, got_e in zip(expected["errors"], out["errors"]):
        assert got_e["file"].endswith(want["file"]) and got_e["line"] == want["line"]
        assert got_e["values_path"] == want["values_path"]
        assert "64 hex digits" in got_e["message"]
    for ne in expected.get("not_evaluated", []):
        assert any(ne["file"] in w and f":{ne['line']}:" in w and "beyond what is evaluated" in w
                   for w in out["warnings"]), ne
    for pos in expected.get("possible", []):
        assert any(p["value"] == pos["value"] and p["file"].endswith(pos["file"].split("k8s/", 1)[-1])
                   for p in out["possible"]), pos


@pytest.mark.parametrize("chart", ["forms", "nested-tgz", "hooks"])
def test_edge_case_chart(run_aas, chart):
    expected = json.loads((CHARTS / chart / "expected.json").read_text())
    p, out = run_images(run_aas, str(CHARTS / chart))
    check_expected(out, expected)
    assert p.returncode == (1 if expected["errors"] else 0)


# One chart per way real charts hand images to what they run (see test/data/charts/README.md).
PATTERNS = ["env-images", "args-images", "flag-images", "configmap-text", "split-cr", "recursive-merge",
            "offbranch-toyaml", "untagged-fallback", "digest-switch"]


@pytest.mark.parametrize("chart", PATTERNS)
def test_pattern_chart(run_aas, chart):
    expected = json.loads((CHARTS / chart / "expected.json").read_text())
    p, out = run_images(run_aas, str(CHARTS / chart))
    check_expected(out, expected)
    assert p.returncode == 0, p.stderr
    assert "error:" not in p.stderr
    assert out["incomplete"] == []
    # What is an image is not also a possible image.
    refs = {i["ref"] for i in out["images"]}
    assert not [q for q in out["possible"] if q["value"] in refs]
    assert len(out["possible"]) == len(expected["possible"])


def test_recursion_past_the_nesting_limit_is_named_incomplete(run_aas, workdir):
    chart = workdir / "deep"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: deep\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("depth: 400\nimage: registry.example.io/deep/app:1.0\n")
    (chart / "templates" / "_h.tpl").write_text(
        '{{- define "down" -}}{{- if gt (int .n) 0 -}}{{- include "down" (dict "n" (sub (int .n) 1) "v" .v) -}}'
        '{{- else -}}{{ .v }}{{- end -}}{{- end -}}\n')
    (chart / "templates" / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\nspec:\n  containers:\n"
        "    - name: a\n      image: {{ .Values.image }}\n"
        "    - name: b\n      image: {{ include \"down\" (dict \"n\" .Values.depth \"v\" .Values.image) }}\n")
    p, out = run_images(run_aas, str(chart))
    assert len(out["incomplete"]) == 1, out["warnings"]
    assert "templates/pod.yaml" in out["incomplete"][0] and "256 levels" in out["incomplete"][0]
    assert "incomplete" in p.stderr
    assert [i["ref"] for i in out["images"]] == ["registry.example.io/deep/app:1.0"]


def test_packed_chart_is_read_from_the_tgz(run_aas):
    p, out = run_images(run_aas, str(CHARTS / "nested-tgz" / "charts" / "worker-0.2.0.tgz"))
    assert p.returncode == 0, p.stderr
    files = {s["template"] for i in out["images"] for s in i["sites"]}
    assert any(".tgz:worker/templates/" in f for f in files), files
    assert any("sidecar-0.1.0.tgz:sidecar/templates/" in f for f in files), files


def test_example_manifest(run_aas):
    expected = json.loads((REPO / "manifests" / "example" / "expected-images.json").read_text())
    p, out = run_images(run_aas, "-f", str(REPO / "manifests" / "example" / "example.yaml"))
    assert p.returncode == 0, p.stderr
    check_expected(out, expected)
    assert out["unresolved"] == []
    local = [i for i in out["images"] if i.get("source")]
    assert [(i["ref"], i["source"]) for i in local] == [
        (t["resolved_by_manifest"]["ref"], t["resolved_by_manifest"]["from"]) for t in expected["app_targets"]]


def test_k8s_override(run_aas, workdir):
    """The manifest stays the same when the k8s checkout lives elsewhere."""
    import shutil
    other = workdir / "checkout" / "k8s"
    shutil.copytree(REPO / "manifests" / "example" / "k8s", other)
    p, out = run_images(run_aas, "-f", str(REPO / "manifests" / "example" / "example.yaml"), "--k8s", str(other))
    assert p.returncode == 0, p.stderr
    assert any(i["ref"] == "docker.io/example/kvstore:7.0.5-r1" for i in out["images"])


def test_table_output(run_aas):
    p = run_aas("images", "-f", str(REPO / "manifests" / "example" / "example.yaml"))
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0].split()[:3] == ["IMAGE", "CLASS", "WHERE"]
    assert "docker.io/example/kvstore:7.0.5-r1" in p.stdout
    assert "images:" in p.stdout and "required" in p.stdout


def test_manifest_errors_are_usage_errors(run_aas, workdir):
    bad = workdir / "bad.yaml"
    bad.write_text("apiVersion: aas-bundle/v1\nkind: Bundle\nname: x\nversion: '1'\nrelases: []\n")
    p = run_aas("images", "-f", str(bad))
    assert p.returncode == 2
    assert f"{bad}:5: unknown key \"relases\"" in p.stderr
    assert "did you mean \"releases\"?" in p.stderr


def test_missing_chart_names_the_release(run_aas, workdir):
    (workdir / "k8s").mkdir()
    m = workdir / "m.yaml"
    m.write_text("apiVersion: aas-bundle/v1\nkind: Bundle\nname: x\nversion: '1'\nk8s: k8s\n"
                 "releases:\n  - name: db\n    chart: charts/nope\n")
    p = run_aas("images", "-f", str(m))
    assert p.returncode == 2
    assert "m.yaml:7: release \"db\": chart charts/nope not found" in p.stderr


def test_annotation_cross_check(run_aas, workdir):
    """Chart annotations listing images are compared with what discovery found, both ways."""
    import shutil
    chart = workdir / "kvstore"
    shutil.copytree(REPO / "manifests" / "example" / "k8s" / "charts" / "dependencies" / "kvstore", chart)
    # As shipped, the annotation names exactly what is found: no warning.
    p = run_aas("images", str(chart), "--warnings")
    assert "annotation images" not in p.stderr, p.stderr
    text = (chart / "Chart.yaml").read_text()
    text = text.replace("    - name: os-shell\n      image: docker.io/example/os-shell:12-r3\n",
                        "    - name: ghost\n      image: docker.io/example/ghost:1.0\n")
    (chart / "Chart.yaml").write_text(text)
    p = run_aas("images", str(chart), "--warnings")
    assert "annotation images names docker.io/example/ghost:1.0, which discovery did not find" in p.stderr
    assert "discovery found docker.io/example/os-shell:12-r3, which annotation images does not name" in p.stderr


def test_template_symlink_leaving_the_chart_is_refused(run_aas, workdir):
    (workdir / "outside.yaml").write_text("apiVersion: v1\nkind: Pod\nspec:\n  containers:\n"
                                          "    - image: registry.example.io/leak/secret:1.0\n")
    chart = workdir / "leaky"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: leaky\nversion: 0.1.0\n")
    (chart / "templates" / "pod.yaml").symlink_to("../../outside.yaml")
    p = run_aas("images", str(chart), "--json")
    assert p.returncode != 0
    assert "templates/pod.yaml is a symlink to ../../outside.yaml, outside the chart" in p.stderr
    assert "registry.example.io/leak/secret" not in p.stdout


def test_kube_version_sets_capabilities_and_flags_the_image(run_aas, workdir):
    chart = workdir / "kubectl"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: kubectl\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("image:\n  repository: registry.example.io/tools/kubectl\n")
    (chart / "templates" / "job.yaml").write_text(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: k\nspec:\n  template:\n    spec:\n      containers:\n"
        "        - name: k\n          image: \"{{ .Values.image.repository }}:"
        "{{ .Capabilities.KubeVersion.Major }}.{{ .Capabilities.KubeVersion.Minor }}\"\n")
    p, out = run_images(run_aas, str(chart))
    assert p.returncode == 0, p.stderr
    assert [(i["ref"], i.get("kube_version_dependent")) for i in out["images"]] == \
        [("registry.example.io/tools/kubectl:1.29", True)]
    assert any("KubeVersion" in w for w in out["warnings"])
    p, out = run_images(run_aas, str(chart), "--kube-version", "1.31.2")
    assert [i["ref"] for i in out["images"]] == ["registry.example.io/tools/kubectl:1.31"]
    p = run_aas("images", str(chart), "--kube-version", "latest")
    assert p.returncode != 0 and "v1.29.0" in p.stderr
