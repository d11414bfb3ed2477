#pragma once
// The one walk over an image's graph, used by pack, copy and load (verify's layout check
// walks the whole layout against bundle.json, reporting instead of throwing, with the same
// depth rule): an image manifest or an index, the manifests an index lists (nested
// indexes too, at most `max_index_depth` deep), and every config and layer, each once.
// And the one platform pick: the entries of an index that match the platforms asked for.

#include "aas_bundle/oci/manifest.hpp"

#include <functional>
#include <string>
#include <vector>

namespace aas::oci {

/// Indexes may nest this deep (the top counts as 1); deeper is refused.
inline constexpr int max_index_depth = 4;

struct Graph {
    /// Every manifest below the top, each after the manifests it lists: pushing them in
    /// this order, then the top, never names a manifest the registry lacks.
    std::vector<RawManifest> children;
    /// Every config and layer, each once, in the order met (config first per image).
    std::vector<Descriptor> blobs;
    /// Non-distributable (foreign) layers, left out of `blobs` (see is_foreign).
    std::vector<Descriptor> foreign;
    /// The platforms of the image manifests an index lists, in index order.
    std::vector<std::string> platforms;
};

/// A child manifest an index lists, by its descriptor: its bytes (checked against the
/// descriptor's digest by the caller's source) or aas::Error.
using FetchManifest = std::function<RawManifest(const Descriptor& child)>;

/// Walks `top`. Throws aas::Error for a manifest that does not parse, a child whose bytes
/// do not have the digest its index names, or indexes nested deeper than max_index_depth.
Graph walk(const RawManifest& top, const FetchManifest& fetch);

/// The entries of `index` whose platform matches one of `wanted`, in index order. Throws
/// aas::Error naming `what`, the platforms asked for and those the index has when none does.
std::vector<const Descriptor*> pick_platforms(const Index& index, const std::vector<Platform>& wanted,
                                              const std::string& what);

} // namespace aas::oci
