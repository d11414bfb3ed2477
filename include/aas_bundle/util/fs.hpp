#pragma once
// File helpers: whole-file reads with size caps, atomic writes, temporary files.

#include <cstdint>
#include <filesystem>
#include <string>

namespace aas::util {

/// Reads a whole file; throws aas::Error naming the file when it cannot be read or is
/// larger than `max_bytes`.
std::string read_file(const std::filesystem::path& path, std::uint64_t max_bytes = 64u << 20);

/// Writes `data` to `path` atomically: a temporary file in the same folder, fsync, rename.
void write_file_atomic(const std::filesystem::path& path, std::string_view data,
                       std::filesystem::perms perms = std::filesystem::perms::owner_read |
                                                      std::filesystem::perms::owner_write |
                                                      std::filesystem::perms::group_read |
                                                      std::filesystem::perms::others_read);

/// A file opened for reading and writing that is deleted when this object goes away.
/// Used to spool blobs between a download and an upload.
class TempFile {
public:
    /// Creates the file in `dir` (default: $TMPDIR or /tmp).
    explicit TempFile(const std::filesystem::path& dir = {});
    ~TempFile();
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;

    int fd() const { return fd_; }
    const std::filesystem::path& path() const { return path_; }

    /// Drops all content (for a transfer that restarts from zero).
    void truncate();
    /// Appends `n` bytes; throws aas::Error on a short write (disk full).
    void append(const void* data, std::size_t n);
    /// Reads up to `n` bytes at `offset`; returns the count read.
    std::size_t read_at(void* out, std::size_t n, std::uint64_t offset) const;
    std::uint64_t size() const { return size_; }

private:
    std::filesystem::path path_;
    int fd_ = -1;
    std::uint64_t size_ = 0;
};

} // namespace aas::util
