#pragma once
// pack's blob cache (private to the module): CACHE/blobs/<alg>/<hex>, each renamed into
// place only after its digest matched; downloads in progress are ".tmp-PID-…" files beside
// them. CACHE/refs/<alg>/<hex> notes where a bundle an earlier pack wrote (a plain .tar)
// holds a blob, so that its bytes are not kept twice. Neither is trusted: every blob the
// cache gives is hashed again on its way into a bundle (copy_verified(), or the caller's
// own check).

#include "aas_bundle/oci/digest.hpp"
#include "aas_bundle/oci/manifest.hpp"
#include "aas_bundle/registry/client.hpp"
#include "aas_bundle/util/fs.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

namespace aas::pack {

class Cache {
public:
    /// Opens (creates) the cache at `root` and removes the downloads of processes that are
    /// gone.
    explicit Cache(std::filesystem::path root);

    /// Where the cache's own copy of `d` is (whether or not it is there).
    std::filesystem::path path(const oci::Digest& d) const;

    /// A blob's bytes the cache can give: its own file, or a reference into a bundle an
    /// earlier pack wrote (a plain .tar's blobs are written there once, not into the cache).
    /// Either is hashed again when it goes into the bundle.
    struct Located {
        util::Fd fd;
        std::uint64_t offset = 0;
        std::string where; ///< for messages
        bool ref = false;
    };
    /// Where `d`'s bytes are, when a file of the right size holds them (not hashed here).
    std::optional<Located> locate(const oci::Descriptor& d) const;
    bool has(const oci::Descriptor& d) const { return locate(d).has_value(); }

    /// Reads the copy locate() finds, `chunk` bytes at a time, giving each to
    /// `out(data, size, offset in the blob)` and its size to `moved`, and hashes it on the
    /// way. True when all `d.size` bytes came and hash to `d.digest`; false when there is
    /// no copy or a damaged one (what `out` got is then not the blob).
    bool copy_verified(const oci::Descriptor& d, std::size_t chunk,
                       const std::function<void(const char*, std::size_t, std::uint64_t)>& out,
                       const std::function<void(std::uint64_t)>& moved) const;

    /// Notes that `bundle` (absolute) holds the blob at `offset`. Not synced: a note lost
    /// or cut by a power loss is ignored, and every one is hashed again on use.
    void add_ref(const oci::Digest& d, const std::filesystem::path& bundle, std::uint64_t offset,
                 std::uint64_t size) const;

    /// The note add_ref() left for `d`, when there is a well-formed one.
    struct RefNote {
        std::filesystem::path bundle;
        std::uint64_t offset = 0, size = 0;
    };
    std::optional<RefNote> ref_note(const oci::Digest& d) const;

    /// Downloads `d` through `fetch` (which verifies size and digest while it streams)
    /// into the cache: a temporary file, renamed into place when `fetch` returns.
    void fill(const oci::Descriptor& d, const std::function<void(registry::BlobSink&)>& fetch);

    /// Forgets `d`: its file and its note.
    void drop(const oci::Digest& d) const;

private:
    std::filesystem::path ref_path(const oci::Digest& d) const;
    std::filesystem::path dir_;
};

} // namespace aas::pack
