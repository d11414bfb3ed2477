#pragma once
// The cluster side of a load: registry mirror configuration that makes nodes pull the
// upstream names (docker.io/bitnami/mongodb:…) from the private registry. It is the belt
// to the values rewrite's braces: images no values file names (operators that launch
// images at run time, init containers of CRDs) still come from the private registry.
//
// Written under OUT/registries/, one tree per runtime, each with the CA when --ca-file
// was given (copied as ca.crt):
//   containerd/certs.d/<upstream>/hosts.toml   containerd 1.5+ (config_path), also used by
//                                              `ctr --hosts-dir`, nerdctl; copy the
//                                              folders to /etc/containerd/certs.d/
//   registries.conf.d/50-aas-bundle.conf      CRI-O, podman, skopeo, buildah
//                                              (containers-registries.conf v2); copy to
//                                              /etc/containers/registries.conf.d/
//   registries.yaml                            RKE2 and k3s; copy to /etc/rancher/rke2/ or
//                                              /etc/rancher/k3s/
// A mirror keeps the repository path: upstream U's REPO is REGISTRY/PREFIX/REPO, which is
// where load pushed it. With --flatten the paths differ, so nothing is written.

#include <filesystem>
#include <string>
#include <vector>

namespace aas::load {

struct MirrorOptions {
    std::string registry;    ///< HOST[:PORT][/PREFIX], as given to load
    bool plain_http = false; ///< the private registry speaks HTTP
    bool insecure = false;   ///< HTTPS without verification
    std::string ca_file;     ///< its CA (PEM), copied next to each configuration
};

/// One file to write: path relative to the output folder, and its text.
struct MirrorFile {
    std::string path;
    std::string text;
};

/// The configuration files for mirroring every registry in `upstreams` ("docker.io",
/// "gcr.io", "127.0.0.1:5000"…) to `o.registry`. The CA, when given, is read and returned
/// as files too. Throws aas::Error when the CA cannot be read.
std::vector<MirrorFile> mirror_files(const std::vector<std::string>& upstreams, const MirrorOptions& o);

} // namespace aas::load
