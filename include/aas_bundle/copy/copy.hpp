#pragma once
// Copying an image or an index from one registry to another, digests preserved.
//
// Order: every blob first (in parallel, `jobs` at a time; skipped when the target has it,
// mounted when source and target are the same registry), then the image manifests by
// digest, then the top manifest under the target tag. Manifests are pushed with the exact
// bytes the source served, so every digest at the target equals the source's. The
// application-level use of the registry client, next to pack and load; the CLI prints
// what it returns (`CopyResult::warnings` included).

#include "aas_bundle/oci/platform.hpp"
#include "aas_bundle/ref/reference.hpp"
#include "aas_bundle/registry/client.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace aas::copy {

struct CopyOptions {
    /// Empty: the whole image or index. One platform: the image for that platform out of an
    /// index (the copy then has that image's digest, not the index's).
    std::vector<oci::Platform> platforms;
    int jobs = 4;
    std::filesystem::path temp_dir; ///< where blobs are spooled between pull and push
    /// Progress: called from worker threads as blob bytes are pulled (`pulled`) and pushed.
    std::function<void(std::uint64_t pulled, std::uint64_t pushed)> on_bytes;
    /// Called once per blob when it is done: its digest, size and outcome.
    std::function<void(const oci::Descriptor&, registry::PushOutcome)> on_blob;
};

struct CopyResult {
    std::string source;      ///< normalised source reference
    std::string destination; ///< normalised target reference (with tag or digest)
    oci::Digest digest;      ///< digest of the top manifest copied
    std::string media_type;
    std::vector<std::string> platforms; ///< platforms of the images copied
    std::size_t manifests = 0;
    std::size_t blobs_uploaded = 0, blobs_skipped = 0, blobs_mounted = 0;
    std::uint64_t bytes_uploaded = 0; ///< blob bytes sent to the target
    std::uint64_t bytes_total = 0;    ///< blob bytes the copied images reference
    /// Not problems: e.g. non-distributable foreign layers, which are not copied.
    std::vector<std::string> warnings;
};

/// Copies `from` (read through `src`) to `to` (written through `dst`). `to` without a tag
/// or digest of its own takes `from`'s. Throws aas::Error listing every blob that failed.
CopyResult copy_image(registry::Client& src, const ref::Reference& from, registry::Client& dst,
                      const ref::Reference& to, const CopyOptions& options);

} // namespace aas::copy
