"""The README's main command stays green: scripts/demo.py end to end."""

import subprocess
import sys


def test_demo_end_to_end(aas_bundle, repo_root):
    p = subprocess.run([sys.executable, str(repo_root / "scripts" / "demo.py"), str(aas_bundle)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "demo passed: 12 images packed, verified and loaded with identical digests" in p.stdout
    assert "FAIL" not in p.stdout
    # The diff shows the rewritten values, and install.sh the releases in order.
    assert "+  repository: 127.0.0.1:" in p.stdout or "+  registry: 127.0.0.1:" in p.stdout
    assert p.stdout.index("helm upgrade --install edge-ingress") < p.stdout.index("helm upgrade --install shop-frontend")
