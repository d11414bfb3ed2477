"""Integration-test harness for aas-bundle: real registries, a token server,
a fault-injecting proxy, in-memory test images and skopeo helpers.
See test/integration/README.md."""

from .faultproxy import FaultProxy, Rule
from .images import (ANONYMOUS, Index, Image, Layer, RegistryClient, RegistryError,
                     docker_image, docker_manifest_list, fetch_manifest, make_layer,
                     manifest_digest, multiarch, oci_image, oci_index, push,
                     write_oci_layout)
from .registry import MODES, Registry, start_registry, write_auth_file
from .skopeo import Skopeo, docker_ref
from .tokenserver import TokenServer

__all__ = [
    "ANONYMOUS", "FaultProxy", "Image", "Index", "Layer", "MODES", "Registry",
    "RegistryClient", "RegistryError", "Rule", "Skopeo", "TokenServer", "docker_image",
    "docker_manifest_list", "docker_ref", "fetch_manifest", "make_layer", "manifest_digest",
    "multiarch", "oci_image", "oci_index", "push", "start_registry", "write_auth_file",
    "write_oci_layout",
]
