#!/usr/bin/env python3
"""Scores `aas-bundle images CHART --json` against the hand-checked truth of the real-chart corpus.

For every chart folder in ../shared/corpus/charts/ (beside the repository), the images that `pack`
would pack as the chart's own (classes `required` and `optional`; `possible` values are not packed,
and `test` images belong to helm test hooks, which the truth leaves out) are compared with
`images_all_referenced` of expected.json after Docker-style normalisation (the corpus README,
"Comparing refs"). Refs in `variants_behind_switches` are neither needed nor counted against.

Prints per chart: found/expected/extra/missing, the exit code and any `error:` lines, then the
totals (recall = found / expected, precision = found / (found + extra)).

Usage: scripts/score-corpus.py [--bin PATH] [--corpus DIR] [--json] [--quiet] [CHART...]
Exit status: 0 when the scoring ran (whatever the score), 2 when the corpus or binary is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus" / "charts"
DEFAULT_BIN = Path(os.environ.get("AAS_BUNDLE", REPO / "build" / "src" / "cli" / "aas-bundle"))

# Classes `pack` packs as images of the chart (test images are packed too, but the truth excludes
# helm test hooks: they are reported separately, neither found nor extra).
FOUND_CLASSES = ("required", "optional")

_TAG = re.compile(r"^[\w][\w.-]{0,127}$")


def normalise(ref: str) -> str:
    """Docker-style normalisation of a reference (the corpus README, "Comparing refs")."""
    ref = ref.strip()
    name, digest = ref, ""
    if "@" in ref:
        name, digest = ref.split("@", 1)
        digest = "@" + digest
    tag = ""
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
    parts = name.split("/")
    first = parts[0]
    if len(parts) > 1 and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, parts[1:]
    else:
        registry, path = "docker.io", parts
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = "docker.io"
    if registry == "docker.io" and len(path) == 1:
        path = ["library"] + path
    if not tag and not digest:
        tag = "latest"
    out = registry + "/" + "/".join(path)
    if tag:
        out += ":" + tag
    return out + digest


def run_chart(binary: Path, chart: Path) -> dict:
    p = subprocess.run([str(binary), "images", str(chart), "--json"], capture_output=True, text=True,
                       timeout=120)
    out = {"rc": p.returncode, "errors": [l for l in p.stderr.splitlines() if "error:" in l],
           "found": {}, "test": set(), "possible": [], "warnings": 0}
    try:
        doc = json.loads(p.stdout)
    except json.JSONDecodeError:
        out["errors"].append(f"(no JSON on stdout; stderr: {p.stderr.strip()[:300]})")
        return out
    for img in doc.get("images", []):
        n = normalise(img["ref"])
        if img["class"] in FOUND_CLASSES:
            out["found"][n] = img["class"]
        else:
            out["test"].add(n)
    out["possible"] = [p["value"] for p in doc.get("possible", [])]
    out["warnings"] = len(doc.get("warnings", []))
    if not out["errors"]:  # errors in the JSON that stderr did not print
        for e in doc.get("errors", []):
            out["errors"].append(f"error (json): {e.get('file')}:{e.get('line')}: {e.get('message')}")
    return out


def score(binary: Path, corpus: Path, only: list[str]) -> dict:
    expected = json.loads((corpus / "expected.json").read_text())
    rows = []
    for e in expected:
        if only and e["chart"] not in only:
            continue
        chart = corpus / e["chart"]
        truth = {normalise(r) for r in e["images_all_referenced"]}
        variants = {normalise(v["ref"]) for v in e.get("variants_behind_switches", [])}
        r = run_chart(binary, chart)
        found = set(r["found"])
        hit = found & truth
        extra = found - truth - variants
        missing = truth - found
        rows.append({"chart": e["chart"], "expected": len(truth), "found": len(hit), "extra": sorted(extra),
                     "missing": sorted(missing), "rc": r["rc"], "errors": r["errors"],
                     "possible": r["possible"], "warnings": r["warnings"], "test": sorted(r["test"])})
    tot_exp = sum(r["expected"] for r in rows)
    tot_found = sum(r["found"] for r in rows)
    tot_extra = sum(len(r["extra"]) for r in rows)
    return {"charts": rows, "expected": tot_exp, "found": tot_found, "extra": tot_extra,
            "recall": tot_found / tot_exp if tot_exp else 1.0,
            "precision": tot_found / (tot_found + tot_extra) if tot_found + tot_extra else 1.0,
            "failing": [r["chart"] for r in rows if r["rc"] != 0 or r["errors"]]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", type=Path, default=DEFAULT_BIN)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--json", action="store_true", help="print the score as JSON")
    ap.add_argument("--quiet", action="store_true", help="only the table, no missing/extra lists")
    ap.add_argument("charts", nargs="*")
    a = ap.parse_args()
    if not (a.corpus / "expected.json").is_file():
        print(f"score-corpus: no corpus at {a.corpus}", file=sys.stderr)
        return 2
    if not a.bin.is_file():
        print(f"score-corpus: no binary at {a.bin} (ninja -C build)", file=sys.stderr)
        return 2
    s = score(a.bin, a.corpus, a.charts)
    if a.json:
        print(json.dumps(s, indent=2))
        return 0
    print(f"{'chart':<26} {'found':>5} {'exp':>4} {'extra':>5} {'miss':>4} {'rc':>3} {'err':>3} {'poss':>4} {'warn':>4}")
    for r in s["charts"]:
        print(f"{r['chart']:<26} {r['found']:>5} {r['expected']:>4} {len(r['extra']):>5} {len(r['missing']):>4} "
              f"{r['rc']:>3} {len(r['errors']):>3} {len(r['possible']):>4} {r['warnings']:>4}")
        if a.quiet:
            continue
        for m in r["missing"]:
            print(f"    missing  {m}")
        for x in r["extra"]:
            print(f"    extra    {x}")
        for err in r["errors"]:
            print(f"    {err}")
    print(f"\ntotal: found {s['found']} of {s['expected']}, extra {s['extra']}; "
          f"recall {s['recall']:.3f}, precision {s['precision']:.3f}; "
          f"charts exiting non-zero or printing errors: {len(s['failing'])}"
          + (f" ({', '.join(s['failing'])})" if s["failing"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
