"""Acceptance: `aas-bundle images` on the real AI App Store k8s folder equals
../shared/corpus/appstore-ai/expected-images.json. Skipped when ../shared is absent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpus" / "appstore-ai"
K8S = CORPUS / "k8s"
EXPECTED = CORPUS / "expected-images.json"

pytestmark = pytest.mark.skipif(not EXPECTED.is_file(),
                                reason=f"the AI App Store corpus is not at {CORPUS} (../shared absent)")


def images_json(run_aas, *args):
    p = run_aas("images", *args, "--json")
    assert p.stdout, p.stderr
    return p, json.loads(p.stdout)


def by_class(out, cls, local=False):
    return sorted(i["ref"] for i in out["images"] if i["class"] == cls and bool(i.get("source")) == local)


@pytest.fixture(scope="module")
def expected():
    return json.loads(EXPECTED.read_text())


@pytest.fixture
def manifest_run(run_aas):
    return images_json(run_aas, "-f", str(REPO / "manifests" / "ai-appstore.yaml"), "--k8s", str(K8S))


def test_required_optional_and_test_sets(manifest_run, expected):
    _, out = manifest_run
    assert by_class(out, "required") == sorted(expected["required"])
    assert by_class(out, "optional") == sorted(expected["optional"])
    assert by_class(out, "test") == sorted(expected["test_hooks"])


def test_invalid_queue_digest_is_reported_at_its_line(manifest_run, expected):
    p, out = manifest_run
    assert p.returncode == 1
    want = [(e["file"], e["line"], e["values_path"]) for e in expected["errors"]]
    got = [(e["file"], e["line"], e["values_path"]) for e in out["errors"]]
    assert got == want
    assert "a sha256 digest is 64 hex digits" in out["errors"][0]["message"]
    assert "did you mean ':v1.8.3'?" in out["errors"][0]["message"]
    assert "aas-knative-backend-values.yaml:6" in p.stderr


def test_app_images_come_from_the_manifest(manifest_run, expected):
    _, out = manifest_run
    assert out["unresolved"] == []
    local = {i["ref"]: i for i in out["images"] if i.get("source")}
    for target in expected["app_targets"]:
        path_tag = target["target"].split("/", 1)[1]  # ai-appstore/aas-frontend:1.2.2
        ref = f"docker.io/{path_tag}"
        assert ref in local, f"{ref} not packed from the manifest's source"
        assert local[ref]["source"].startswith("docker-archive:")
        assert any(s["values_path"] == target["values_path"] for s in local[ref]["sites"])


def test_without_sources_the_app_images_are_unresolved(run_aas, workdir, expected):
    text = (REPO / "manifests" / "ai-appstore.yaml").read_text()
    text = text[:text.index("images:")]
    m = workdir / "no-images.yaml"
    m.write_text(text)
    p, out = images_json(run_aas, "-f", str(m), "--k8s", str(K8S))
    assert p.returncode == 1
    got = sorted((u["chart"], u["values_path"], u["target"]) for u in out["unresolved"])
    want = sorted((t["chart"], t["values_path"], t["target"]) for t in expected["app_targets"])
    assert got == want
    assert "name its source in the bundle manifest" in out["unresolved"][0]["message"]


def test_shared_image_has_every_site(manifest_run):
    _, out = manifest_run
    emissary = next(i for i in out["images"] if i["ref"] == "docker.io/emissaryingress/emissary:3.4.0")
    releases = {s.get("release") for s in emissary["sites"]}
    assert {"emissary-crds", "emissary-ingress"} <= releases
    for s in emissary["sites"]:
        assert s["file"].startswith("k8s/environments/production/emiss")
        assert s["written"] == "<REGISTRY>/emissaryingress/emissary"


def test_commented_and_ci_values_are_not_images(manifest_run):
    _, out = manifest_run
    for img in out["images"]:
        for s in img["sites"]:
            # chart-testing values live in a chart's ci/ folder (paths relative to the k8s folder's parent)
            assert not (s["file"].startswith("k8s/") and "/ci/" in s["file"]), img["ref"]


def test_whole_folder_without_manifest(run_aas):
    p, out = images_json(run_aas, str(K8S))
    refs = {i["ref"] for i in out["images"]}
    assert "quay.io/metallb/controller:v0.13.7" in refs
    assert "quay.io/metallb/speaker:v0.13.7" in refs
    assert "gcr.io/kubebuilder/kube-rbac-proxy:v0.12.0" in refs
    assert any(r.startswith("gcr.io/knative-releases/knative.dev/operator/cmd/operator@sha256:") for r in refs), refs
    # chart defaults: the knative chart's digest-pinned defaults, the app's bare names
    assert any(r.startswith("gcr.io/knative-releases/knative.dev/serving/cmd/queue@sha256:") for r in refs)
