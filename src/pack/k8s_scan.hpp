#pragma once
// The k8s folder as pack ships it (private to the module): every entry, sorted by its path
// in the bundle, files with their SHA-256; symlinks must stay inside the folder.

#include "aas_bundle/bundle/format.hpp"

#include <cstdint>
#include <filesystem>
#include <vector>

namespace aas::pack {

struct K8sEntry {
    bundle::FileRecord rec;       ///< as bundle.json lists it ("k8s/…")
    std::filesystem::path source; ///< the file on disk
    std::int64_t mtime = 0;       ///< seconds; -1 for the k8s/ of an images-only manifest
};

/// Every entry of `root` (the first is k8s/ itself). `root` empty: an images-only
/// manifest, whose bundle gets an empty k8s/ folder. Throws aas::UsageError when `root` is
/// not a folder, or listing every entry that cannot be shipped (a symlink pointing outside,
/// a device, FIFO or socket); aas::Error when it cannot be read.
std::vector<K8sEntry> scan_k8s(const std::filesystem::path& root);

} // namespace aas::pack
