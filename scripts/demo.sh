#!/usr/bin/env bash
# The main job end to end on the built-in example (manifests/example/): installs what is
# missing, builds, starts two registries on 127.0.0.1 (an "online" mirror of docker.io,
# gcr.io, quay.io and registry.example.io without auth, and an "offline" private one with
# TLS and a password), fills the mirror with the example's images built here without
# Docker, then packs the example into a signed bundle split in parts, verifies and
# inspects it, loads it into the private registry, prints the values diff and the
# generated install.sh, and checks every digest with skopeo. Cleans up the registries;
# leaves the bundle and the offline folder under bundles/.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
if [ ! -f build/build.ninja ]; then meson setup build >/dev/null; fi
ninja -C build -j"$(nproc 2>/dev/null || echo 2)" src/cli/aas-bundle
exec /usr/bin/python3 scripts/demo.py "$(pwd)/build/src/cli/aas-bundle"
