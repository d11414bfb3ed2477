#pragma once
// Split bundles: the parts index, and reading a bundle (whole or split) as one stream.
//
// The parts index OUT.parts is JSON:
//   {"format": "aas-bundle-parts/v1",
//    "bundle": "x.tar.zst",                         the whole's file name
//    "size": 123, "sha256": "sha256:<hex>",          the whole stream (concatenated parts)
//    "part_size": 4294967295,
//    "parts": [{"name": "x.tar.zst.part000", "size": 4294967295, "sha256": "sha256:<hex>"}, …]}
// Part names are plain file names in the index's folder (never paths); an index naming
// anything else is refused.

#include "aas_bundle/bundle/writer.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace aas::bundle {

struct PartsIndex {
    std::string bundle;
    std::uint64_t size = 0;
    oci::Digest sha256;
    std::uint64_t part_size = 0;
    std::vector<PartInfo> parts;

    std::string to_json() const;
    /// Parses and validates (names are plain file names, sizes add up); throws aas::Error
    /// naming `where`.
    static PartsIndex parse(std::string_view json, const std::string& where);
};

/// What a user path names: a whole bundle file, or a split bundle given by its index,
/// its first part (OUT.part000) or its whole name OUT when only OUT.parts exists.
struct BundleLocation {
    std::filesystem::path whole;     ///< set for a whole bundle
    std::filesystem::path index;     ///< set for a split bundle
    std::optional<PartsIndex> parts; ///< the parsed index of a split bundle
    /// Part files beside the index that it does not list (ignored), one sentence each.
    std::vector<std::string> warnings;
};

/// Resolves `path` as above. Throws aas::UsageError naming the path when it names none.
BundleLocation locate(const std::filesystem::path& path);

/// Problems found while reading parts (each a full sentence, e.g.
/// "part 3 of 5 (x.tar.zst.part002) missing", "part 2 of 5 (x.tar.zst.part001): sha256
/// mismatch (the part is damaged or is not from this bundle)").
class PartError : public aas::Error {
public:
    using aas::Error::Error;
};

/// Sequential reader over a bundle's bytes (compressed or not, as stored). For a split
/// bundle, each part is hashed before its bytes are handed out: a part is read whole into
/// its hash first (one read pass of that part), then streamed; a missing, short or altered
/// part throws PartError naming it. The user's files are only ever opened read-only.
class StreamReader {
public:
    explicit StreamReader(const BundleLocation& where);
    ~StreamReader();
    /// Reads up to `n` bytes; 0 at the end of the whole. At the end, the whole's size and
    /// sha256 are checked against the index (split) and a mismatch throws PartError.
    std::size_t read(char* out, std::size_t n);
    /// Bytes handed out so far (offset in the whole stream).
    std::uint64_t offset() const;
    /// Moves `n` bytes on without reading them, when the bundle is one file (a split
    /// bundle's parts are hashed as they are read: false, nothing moved). A skip past the
    /// end is found by the next read, which returns 0.
    bool skip(std::uint64_t n);
    /// The bundle's one file ("" for a split bundle): a reader may read it at offsets.
    const std::filesystem::path& whole_file() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace aas::bundle
