#pragma once
// File helpers: whole-file reads with size caps, atomic writes, temporary files.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

namespace aas::util {

/// Reads a whole file; throws aas::Error naming the file when it cannot be read or is
/// larger than `max_bytes`.
std::string read_file(const std::filesystem::path& path, std::uint64_t max_bytes = 64u << 20);

/// Writes `data` to `path` atomically: a temporary file in the same folder, fsync, rename.
/// `durable` false skips the fsync: a crash of the process still leaves the old or the new
/// whole file, but a power loss may leave an empty one (for notes that are checked on use).
void write_file_atomic(const std::filesystem::path& path, std::string_view data,
                       std::filesystem::perms perms = std::filesystem::perms::owner_read |
                                                      std::filesystem::perms::owner_write |
                                                      std::filesystem::perms::group_read |
                                                      std::filesystem::perms::others_read,
                       bool durable = true);

/// An owned file descriptor, closed when it goes.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() { reset(); }
    Fd(Fd&& other) noexcept : fd_(other.release()) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = other.release();
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    int release() {
        int fd = fd_;
        fd_ = -1;
        return fd;
    }
    void reset();

private:
    int fd_ = -1;
};

/// `::read` of up to `n` bytes, tried again when a signal interrupts it: the count read
/// (0 at the end of the file), or -1 with errno set.
long read_retrying(int fd, void* out, std::size_t n);

/// Up to `n` bytes from `fd` (0 at the end of the file); throws aas::Error
/// "reading WHAT: <errno text>" on a read error.
std::size_t read_some(int fd, void* out, std::size_t n, std::string_view what);

/// ::pread of up to `n` bytes at `offset`, tried again when a signal interrupts it: its
/// result (-1 with errno set on an error, 0 at the end of the file).
long pread_retrying(int fd, void* out, std::size_t n, std::uint64_t offset);

/// Up to `n` bytes of `fd` at `offset` (0 at the end of the file); throws aas::Error
/// "reading WHAT: <errno text>" on a read error.
std::size_t pread_some(int fd, void* out, std::size_t n, std::uint64_t offset, std::string_view what);

/// Opens `path` for reading (O_CLOEXEC); throws aas::Error "reading PATH: <errno text>".
Fd open_for_reading(const std::filesystem::path& path);

/// Reads `fd` to its end in chunks of at most `chunk` bytes, calling `fn(data, size)` for
/// each; throws aas::Error naming `what` on a read error. Returns the bytes read.
std::uint64_t read_chunks(int fd, std::size_t chunk, std::string_view what,
                          const std::function<void(const char*, std::size_t)>& fn);

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

/// Creates a new folder only this user can enter (mkdtemp, mode 0700) in `parent`
/// (default: $TMPDIR or /tmp), named `prefix` and six random characters. Never reuses or
/// follows what is already there.
std::filesystem::path make_private_dir(const std::string& prefix, const std::filesystem::path& parent = {});

/// A folder that untrusted archive entries are written into. Every path is walked from
/// the root without following a symlink (openat2 with RESOLVE_BENEATH |
/// RESOLVE_NO_SYMLINKS, or an O_NOFOLLOW walk of each component where the kernel lacks
/// openat2), so nothing can be created, replaced or opened outside the root, whatever
/// symlinks the tree holds. Paths are relative, '/'-separated, without "." or ".."
/// components (anything else is refused with aas::Error).
class SafeTree {
public:
    /// `root` must be an existing folder (itself not a symlink).
    explicit SafeTree(const std::filesystem::path& root);
    ~SafeTree();
    SafeTree(const SafeTree&) = delete;
    SafeTree& operator=(const SafeTree&) = delete;

    /// The folder holding `rel`'s last component, opened (missing folders are created
    /// with mode 0755), and that component. The caller closes the descriptor.
    std::pair<int, std::string> parent(std::string_view rel);
    /// Creates the folder `rel` and the missing ones above it.
    void mkdirs(std::string_view rel);
    /// Sets the permission bits of an existing folder or file (not through a symlink).
    void chmod(std::string_view rel, unsigned mode);
    /// Creates the symlink `rel` -> `target` (fails when `rel` exists).
    void symlink(std::string_view rel, const std::string& target);
    const std::filesystem::path& root() const { return root_; }

private:
    std::filesystem::path root_;
    int fd_ = -1;
};

} // namespace aas::util
