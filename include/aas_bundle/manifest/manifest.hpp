#pragma once
// The bundle manifest: what a bundle holds and how the application installs.
//
//   apiVersion: aas-bundle/v1          required, exactly this
//   kind: Bundle                       required, exactly this
//   name: ai-appstore                  required: [a-z0-9]([-a-z0-9._]*[a-z0-9])?
//   version: 1.2.0                     required: a non-empty string
//   k8s: ../k8s                        folder shipped in the bundle, relative to the manifest
//                                      (--k8s DIR overrides); required when releases exist
//   releases:                          install order
//     - name: mongodb                  required, unique
//       chart: charts/dependencies/mongodb     required, relative to k8s (folder or .tgz)
//       namespace: ai-appstore         default "default"
//       values: [environments/production/mongodb-values.yaml]   relative to k8s, in order
//   manifests: [knative-operator.yaml] plain manifests applied at install, relative to k8s
//   images:                            extra images, and the sources of locally built ones
//     - ref: docker.io/bitnami/redis:7.0.5-debian-11-r25
//     - ref: ai-appstore/aas-frontend:1.2.2
//       from: docker-archive:../build/aas-frontend.tar   docker-archive:PATH | oci:PATH[:TAG] |
//                                                        a registry reference; PATH relative
//                                                        to the manifest
//   exclude: [docker.io/library/busybox]   a reference (that exact image) or a name (every tag)
//   mirrors: {docker.io: "127.0.0.1:5000"} pull through HOST[:PORT] instead of the registry
//   platforms: [linux/amd64]
//
// Errors are collected, each as "FILE:LINE: what is wrong", and reported together.

#include "aas_bundle/oci/platform.hpp"
#include "aas_bundle/ref/reference.hpp"
#include "aas_bundle/util/error.hpp"

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace aas::manifest {

/// Where a manifest entry was written.
struct Location {
    std::string file;
    int line = 0;
};

struct Release {
    std::string name;
    std::string chart; ///< relative to the k8s folder
    std::string namespace_ = "default";
    std::vector<std::string> values; ///< relative to the k8s folder, in --values order
    Location where;
};

struct Image {
    ref::Reference ref;
    std::string from; ///< as written: "docker-archive:…", "oci:…", a reference, or ""
    Location where;
};

/// Every problem found, one "FILE:LINE: message" per line of what().
class ManifestError : public aas::UsageError {
public:
    explicit ManifestError(std::vector<std::string> problems);
    const std::vector<std::string>& problems() const { return problems_; }

private:
    std::vector<std::string> problems_;
};

struct Manifest {
    std::filesystem::path file; ///< the manifest file
    std::string name;
    std::string version;
    std::filesystem::path k8s; ///< absolute; empty when not given
    std::vector<Release> releases;
    std::vector<std::string> plain_manifests;
    std::vector<Image> images;
    std::vector<std::string> exclude; ///< normalised references or names
    std::map<std::string, std::string> mirrors;
    std::vector<oci::Platform> platforms;

    /// True when `r` is excluded: an exclude entry equals its full string, or its name.
    bool excluded(const ref::Reference& r) const;
};

/// Reads and validates a manifest. Throws ManifestError with every problem found.
Manifest load(const std::filesystem::path& file);

} // namespace aas::manifest
