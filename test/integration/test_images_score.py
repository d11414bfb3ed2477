"""Acceptance of issue 12: over the real-chart corpus (../shared/corpus/charts, hand-checked
expected.json), `images --json` reaches recall >= 0.98 and precision >= 0.95 on
images_all_referenced, and no chart exits non-zero or prints an error. The scoring is
scripts/score-corpus.py's. Skipped (visibly) when ../shared is absent."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpus" / "charts"


def load_scorer():
    spec = importlib.util.spec_from_file_location("score_corpus", REPO / "scripts" / "score-corpus.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_normalisation_follows_the_corpus_rules():
    n = load_scorer().normalise
    assert n("x") == "docker.io/library/x:latest"
    assert n("busybox:latest") == "docker.io/library/busybox:latest"
    assert n("index.docker.io/a/b:1") == "docker.io/a/b:1"
    assert n("registry-1.docker.io/a/b") == "docker.io/a/b:latest"
    assert n("localhost/a") == "localhost/a:latest"
    assert n("reg:5000/a:1") == "reg:5000/a:1"
    assert n("a/b:1@sha256:00") == "docker.io/a/b:1@sha256:00"
    assert n("a/b@sha256:00") == "docker.io/a/b@sha256:00"


def test_corpus_score_reaches_the_targets():
    if not (CORPUS / "expected.json").is_file():
        pytest.skip(f"the real-chart corpus is not at {CORPUS} (../shared absent)")
    binary = Path(os.environ.get("AAS_BUNDLE", REPO / "build" / "src" / "cli" / "aas-bundle"))
    s = load_scorer().score(binary, CORPUS, [])
    detail = "\n".join(f"{r['chart']}: missing {r['missing']} extra {r['extra']} rc {r['rc']} {r['errors']}"
                       for r in s["charts"] if r["missing"] or r["extra"] or r["rc"] or r["errors"])
    assert len(s["charts"]) >= 12
    assert s["recall"] >= 0.98, detail
    assert s["precision"] >= 0.95, detail
    assert s["failing"] == [], detail
