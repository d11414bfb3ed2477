#pragma once
// What pack stores of one image (private to the module): its top manifest, narrowed to the
// platforms asked for as include/aas_bundle/pack/pack.hpp says, the manifests it lists and
// every config and layer, each once.

#include "aas_bundle/discovery/discovery.hpp"
#include "aas_bundle/oci/manifest.hpp"
#include "aas_bundle/oci/platform.hpp"
#include "aas_bundle/source/source.hpp"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace aas::pack {

struct Planned {
    const discovery::Image* img = nullptr;
    std::string ref;
    std::unique_ptr<source::ImageSource> src;
    oci::RawManifest top;
    std::vector<oci::RawManifest> children; ///< manifests an index lists (nested ones too)
    std::vector<oci::Descriptor> blobs;     ///< config and layers, each once
    std::vector<std::string> platforms;
    std::optional<oci::Digest> index_digest;
    bool filtered = false;
    bool failed = false;
    bool possible = false; ///< one of discovery's possible images (--include-possible)
};

/// Reads the top manifest of `p` from `p.src` and every manifest it needs, fills in `p`,
/// narrowed to `platforms` (an index reached through a tag only). Foreign layers are not
/// packed: a warning says each. Throws aas::Error when the source fails or the top
/// manifest is not the digest `ref` pins.
void plan_image(Planned& p, const ref::Reference& ref, const std::vector<oci::Platform>& platforms,
                std::vector<std::string>& warnings);

/// The platform of a single image ("linux/amd64") from its config `file`, when it names one.
std::optional<std::string> config_platform(const std::filesystem::path& file);

} // namespace aas::pack
