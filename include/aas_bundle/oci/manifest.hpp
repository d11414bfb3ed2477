#pragma once
// Descriptors, image manifests and indexes (OCI and Docker schema 2).
//
// A `RawManifest` keeps the bytes exactly as received with their media type and digest;
// the parsed views below are for reading only and are never serialised back.

#include "aas_bundle/oci/digest.hpp"
#include "aas_bundle/oci/platform.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace aas::oci {

struct Descriptor {
    std::string media_type;
    Digest digest;
    std::int64_t size = 0;
    std::optional<Platform> platform;
    std::vector<std::string> urls;
    std::map<std::string, std::string> annotations;
};

struct ImageManifest {
    std::string media_type;
    Descriptor config;
    std::vector<Descriptor> layers;
};

struct Index {
    std::string media_type;
    std::vector<Descriptor> manifests;
};

/// A manifest as the registry served it.
struct RawManifest {
    std::string bytes;
    std::string media_type;
    Digest digest;

    /// Builds from bytes and the media type a registry sent (`content_type` may be empty
    /// or generic, such as "application/json"; the document's own `mediaType` then
    /// decides). Computes the digest over `bytes`. Throws aas::Error for schema 1 and
    /// for documents that are not manifests.
    static RawManifest from_bytes(std::string bytes, std::string_view content_type);
};

using Parsed = std::variant<ImageManifest, Index>;

/// Parses `raw` into an image manifest or an index. Throws aas::Error naming the digest
/// and what is wrong: invalid JSON, a missing or invalid field, a schema 1 manifest.
Parsed parse(const RawManifest& raw);

/// Every blob an image manifest references: the config first, then the layers.
std::vector<Descriptor> blobs_of(const ImageManifest& m);

/// A non-distributable ("foreign") layer: one with download URLs whose media type is
/// Docker's foreign layer or an OCI non-distributable layer. Registries accept a manifest
/// naming one without holding it, so pack leaves it out, verify does not miss it, load
/// does not push it and copy does not copy it: the one rule, used by all four.
bool is_foreign(const Descriptor& d);

} // namespace aas::oci
