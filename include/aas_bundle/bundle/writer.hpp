#pragma once
// Writing a bundle archive: a POSIX tar (pax where a name needs it), optionally
// zstd-compressed, optionally split into parts, committed atomically.
//
// Output names, for an output path OUT:
//   whole      OUT
//   split      OUT.part000, OUT.part001, … (each exactly `split_size` bytes but the last;
//              `cat OUT.part* > OUT` gives the whole) and the parts index OUT.parts
//              (see parts.hpp), written last.
// While writing, bytes go to hidden temporary files beside OUT (".OUT.tmp-PID-XXXXXX",
// ".OUT.part000.tmp-PID-XXXXXX"); `commit()` fsyncs them, renames them to their final
// names and fsyncs the folder. Split: any old OUT.parts is removed first, then the parts
// are renamed, then OUT.parts is written atomically, so a folder killed mid-commit never
// holds an index that matches parts it does not have. A writer destroyed without
// commit() removes its temporary files. Temporary files left by a process that was
// killed (their PID is not alive) are removed when a new writer for OUT starts; with
// WriteOptions::adopt_partial, the largest such whole-file one is taken over instead
// (only a regular file owned by this user with one link; the others are removed).
//
// Entries are written with uid/gid 0, no user or group names, and the mtime given, so the
// same content and times give the same bytes.

#include "aas_bundle/bundle/reader.hpp" // ReadFn
#include "aas_bundle/oci/digest.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace aas::bundle {

struct WriteOptions {
    bool zstd = false; ///< compress the tar stream with zstd
    int zstd_level = 3;
    int zstd_workers = 2;         ///< libzstd worker threads (0: compress in the caller's thread)
    std::uint64_t split_size = 0; ///< 0: one file; else the size of every part but the last
    std::int64_t mtime = 0;       ///< default mtime of entries (seconds since the epoch)
    /// A plain tar in one file only: take over the temporary file a killed writer for the
    /// same OUT left (see adopted()) instead of removing it, so that the data already in
    /// its reserved slots can be kept. Everything written is written again over it (and
    /// the file cut to the new length): only what the caller proves is in place (hashes
    /// at a slot) is left as it was.
    bool adopt_partial = false;
};

struct PartInfo {
    std::string name; ///< file name (no folder): "x.tar.zst.part000"
    std::uint64_t size = 0;
    oci::Digest sha256;
};

struct WriteResult {
    std::vector<std::filesystem::path> files; ///< final files written (OUT, or the parts and OUT.parts)
    std::uint64_t size = 0;                   ///< bytes of the whole archive (compressed)
    oci::Digest sha256;                       ///< sha256 of the whole archive stream
    std::vector<PartInfo> parts;              ///< empty when not split
};

class BundleWriter {
public:
    BundleWriter(std::filesystem::path output, WriteOptions options);
    ~BundleWriter();
    BundleWriter(const BundleWriter&) = delete;
    BundleWriter& operator=(const BundleWriter&) = delete;

    /// A regular file from memory. Returns the sha256 of `data`.
    oci::Digest add_file(std::string_view path, std::string_view data, unsigned mode = 0644, std::int64_t mtime = -1);

    /// A regular file of exactly `size` bytes pulled from `read`; returns the sha256 of the
    /// bytes written. Throws aas::Error naming `path` when `read` ends early or gives more.
    oci::Digest add_stream(std::string_view path, std::uint64_t size, const ReadFn& read, unsigned mode = 0644,
                           std::int64_t mtime = -1);

    /// Room for a regular file of `size` bytes whose data comes later, from any thread,
    /// through write_at(): its header is written now and its data left as a hole (so pack
    /// writes each downloaded byte once, at its final offset). Only for a plain tar in one
    /// file (can_reserve()); the caller must fill every byte before commit(), which then
    /// reads the file back once for its sha256.
    struct Slot {
        std::uint64_t offset = 0; ///< of the data in the file
        std::uint64_t size = 0;
    };
    bool can_reserve() const;
    Slot reserve(std::string_view path, std::uint64_t size, unsigned mode = 0644, std::int64_t mtime = -1);
    /// `n` bytes at `pos` of the slot's data. Thread-safe; throws aas::Error (disk full…).
    void write_at(const Slot& slot, std::uint64_t pos, const char* data, std::size_t n);
    /// Reads up to `n` bytes at `pos` of the slot's data as the file holds them now (with
    /// adopt_partial, what the killed writer left there). Thread-safe; returns the count.
    std::size_t read_at(const Slot& slot, std::uint64_t pos, char* data, std::size_t n) const;

    /// The temporary file being written (absolute), and, with adopt_partial, the name the
    /// killed writer's file had before this writer took it over (empty when none was).
    std::filesystem::path partial() const;
    std::filesystem::path adopted() const;

    void add_directory(std::string_view path, unsigned mode = 0755, std::int64_t mtime = -1);
    void add_symlink(std::string_view path, std::string_view target, std::int64_t mtime = -1);

    /// Ends the archive and makes it visible under its final name(s). Throws aas::Error
    /// (disk full, …) leaving nothing at the final names.
    WriteResult commit();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace aas::bundle
