#!/usr/bin/env bash
# The main job end to end on a built-in example: installs what is missing, builds, starts
# two local registries on 127.0.0.1 (an "online" source without auth, and an "offline"
# private one with TLS and a password), fills the source with small images built here,
# copies them with aas-bundle and checks every digest with skopeo. Cleans up what it started.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
if [ ! -f build/build.ninja ]; then meson setup build >/dev/null; fi
ninja -C build -j"$(nproc 2>/dev/null || echo 2)" src/cli/aas-bundle
exec /usr/bin/python3 scripts/demo.py "$(pwd)/build/src/cli/aas-bundle"
