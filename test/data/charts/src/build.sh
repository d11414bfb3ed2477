#!/usr/bin/env bash
# Rebuilds the packed test charts from their sources, byte for byte reproducibly:
#   src/sidecar/ -> src/worker/charts/sidecar-0.1.0.tgz
#   src/worker/  -> nested-tgz/charts/worker-0.2.0.tgz   (holds the sidecar .tgz)
# Each archive holds one top folder named after the chart, as `helm package` makes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
pack() { # SRC_PARENT CHART OUT
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
        --mode='u+rwX,go+rX,go-w' -czf "$3" -C "$1" "$2"
}
pack "$here" sidecar "$here/worker/charts/sidecar-0.1.0.tgz"
pack "$here" worker "$here/../nested-tgz/charts/worker-0.2.0.tgz"
