#pragma once
// The one walk over an image's graph, used by pack, copy, load (walk) and verify's layout
// check (visit, which reports instead of throwing): an image manifest or an index, the
// manifests an index lists (nested indexes too, at most `max_index_depth` deep), and every
// config and layer.
// And the one platform pick: the entries of an index that match the platforms asked for.

#include "aas_bundle/oci/manifest.hpp"

#include <functional>
#include <optional>
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

/// The walk itself, for a reader that reports instead of throwing (verify's layout
/// check); walk() is built on it. Depth first, in index order.
struct Visitor {
    /// A manifest an index lists: its bytes, or nullopt to go on without it (the caller
    /// reported why: missing, or seen already).
    std::function<std::optional<RawManifest>(const Descriptor& child, const RawManifest& parent)> child;
    /// Called with each child after its own children were visited (optional); `image`:
    /// it is an image manifest.
    std::function<void(const RawManifest& child, const Descriptor& listed, bool image)> after_child;
    /// A config or layer of `manifest` (foreign layers too: is_foreign tells).
    std::function<void(const Descriptor& blob, const RawManifest& manifest)> blob;
    /// A manifest that does not parse, or an index nested past max_index_depth: `why`.
    std::function<void(const RawManifest& manifest, const std::string& why)> bad;
};
void visit(const RawManifest& top, const Visitor& v);

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
