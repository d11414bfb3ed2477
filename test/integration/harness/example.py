"""The images of the project's own example (manifests/example/), built without Docker.

Every image is deterministic down to the byte: layers are seeded pseudo-random bytes
(not gzip, whose output depends on the zlib version), configs and manifests are
serialised by the harness, so the digests pinned in the example's charts
(edge-ingress `digest`/`digestChroot`, plain/operator.yaml) are the digests of these
images, on every machine. ``python3 -m harness.example`` prints them.

``EXAMPLE_IMAGES`` maps each upstream reference (as the example's values name it) to a
harness Image or Index; ``FRONTEND`` is the locally built front end that the manifest
reads from an OCI layout (``oci:../../build/shop-frontend``).
"""

from __future__ import annotations

import random

from harness import images


def _layer(name: str, size: int) -> images.Layer:
    blob = random.Random(f"aas-example:{name}").randbytes(size)
    return images.Layer(blob, images.sha256_digest(blob))


_BASE = _layer("debian-slim", 768 << 10)  # shared by most images, stored once


def _img(name: str, size: int = 96 << 10, kind: str = "oci", platform=("linux", "amd64", None)):
    build = images.oci_image if kind == "oci" else images.docker_image
    return build([_BASE, _layer(f"{name}-{'/'.join(p for p in platform if p)}", size)], platform)


def _multi(name: str, kind: str = "oci"):
    children = [_img(name, kind=kind), _img(name, kind=kind, platform=("linux", "arm64", "v8"))]
    return images.oci_index(children) if kind == "oci" else images.docker_manifest_list(children)


_CONTROLLER = _multi("edge-controller")
_CHROOT = _multi("edge-controller-chroot")
_OPERATOR = _img("shop-operator", kind="docker")

# Upstream references, keyed the way discovery reports them; pinned ones by digest.
EXAMPLE_IMAGES = {
    "docker.io/example/kvstore:7.0.5-r1": _img("kvstore", 512 << 10, kind="docker"),
    "docker.io/example/kvstore-exporter:1.4.2-r0": _img("kvstore-exporter"),
    "docker.io/example/os-shell:12-r3": _img("os-shell"),
    "docker.io/library/busybox:latest": _multi("busybox"),
    "docker.io/servinglabs/envoy-lite:1.21.4": _multi("envoy-lite", kind="docker"),
    "gcr.io/example-serving/serving/router:v0.9.2": _multi("router"),
    "gcr.io/example-serving/serving/autoscaler:v0.9.2": _img("autoscaler"),
    f"quay.io/exampleshop/shop-operator@{_OPERATOR.digest}": _OPERATOR,
    f"registry.example.io/edge/controller:v1.4.0@{_CONTROLLER.digest}": _CONTROLLER,
    f"registry.example.io/edge/controller-chroot:v1.4.0@{_CHROOT.digest}": _CHROOT,
    "registry.example.io/edge/default-backend:1.6.0": _img("default-backend"),
}

FRONTEND_REF = "docker.io/shop/shop-frontend:2.1.0"
FRONTEND = _img("shop-frontend", 256 << 10)

PINNED = {"controller": _CONTROLLER.digest, "controller-chroot": _CHROOT.digest, "shop-operator": _OPERATOR.digest}


def push_all(registry) -> dict[str, str]:
    """Pushes every image to ``registry`` as a mirror of each upstream registry
    (``HOST/<upstream registry>/<path>``); returns ``--mirror`` values by upstream."""
    mirrors = {}
    for ref, obj in EXAMPLE_IMAGES.items():
        name, _, digest = ref.partition("@")
        host, _, rest = name.partition("/")
        path, tag = (rest.rsplit(":", 1) if ":" in rest.split("/")[-1] else (rest, None))
        images.push(registry, f"{host}/{path}", tag, obj)
        mirrors[host] = f"{registry.host}/{host}"
    return mirrors


if __name__ == "__main__":
    for k, v in PINNED.items():
        print(f"{k}: {v}")
