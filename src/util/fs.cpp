#include "aas_bundle/util/fs.hpp"

#include "aas_bundle/util/error.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <vector>

namespace aas::util {

void Fd::reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

namespace fs = std::filesystem;

long read_retrying(int fd, void* out, std::size_t n) {
    for (;;) {
        ssize_t r = ::read(fd, out, n);
        if (r >= 0 || errno != EINTR) return static_cast<long>(r);
    }
}

std::size_t read_some(int fd, void* out, std::size_t n, std::string_view what) {
    long r = read_retrying(fd, out, n);
    if (r < 0) throw Error(fmt::format("reading {}: {}", what, errno_message(errno)));
    return static_cast<std::size_t>(r);
}

long pread_retrying(int fd, void* out, std::size_t n, std::uint64_t offset) {
    for (;;) {
        ssize_t r = ::pread(fd, out, n, static_cast<off_t>(offset));
        if (r >= 0 || errno != EINTR) return static_cast<long>(r);
    }
}

std::size_t pread_some(int fd, void* out, std::size_t n, std::uint64_t offset, std::string_view what) {
    long r = pread_retrying(fd, out, n, offset);
    if (r < 0) throw Error(fmt::format("reading {}: {}", what, errno_message(errno)));
    return static_cast<std::size_t>(r);
}

Fd open_for_reading(const fs::path& path) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw Error(fmt::format("reading {}: {}", path.string(), errno_message(errno)));
    return fd;
}

std::uint64_t read_chunks(int fd, std::size_t chunk, std::string_view what,
                          const std::function<void(const char*, std::size_t)>& fn) {
    std::vector<char> buf(chunk);
    std::uint64_t total = 0;
    for (;;) {
        std::size_t n = read_some(fd, buf.data(), buf.size(), what);
        if (n == 0) return total;
        total += n;
        fn(buf.data(), n);
    }
}

std::string read_file(const fs::path& path, std::uint64_t max_bytes) {
    Fd fd = open_for_reading(path);
    std::string out;
    read_chunks(fd.get(), 65536, path.string(), [&](const char* data, std::size_t n) {
        out.append(data, n);
        if (out.size() > max_bytes)
            throw Error(fmt::format("reading {}: larger than the limit of {} bytes", path.string(), max_bytes));
    });
    return out;
}

void write_file_atomic(const fs::path& path, std::string_view data, fs::perms perms, bool durable) {
    fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
    std::string tmpl = (dir / ("." + path.filename().string() + ".tmp-XXXXXX")).string();
    int fd = ::mkstemp(tmpl.data());
    if (fd < 0)
        throw Error(fmt::format("writing {}: cannot create a temporary file in {}: {}", path.string(), dir.string(),
                                errno_message(errno)));
    auto fail = [&](const char* what) {
        auto e = errno_message(errno);
        ::close(fd);
        ::unlink(tmpl.c_str());
        throw Error(fmt::format("writing {}: {}: {}", path.string(), what, e));
    };
    std::size_t off = 0;
    while (off < data.size()) {
        ssize_t n = ::write(fd, data.data() + off, data.size() - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("write");
        }
        off += static_cast<std::size_t>(n);
    }
    if (::fchmod(fd, static_cast<mode_t>(perms)) != 0) fail("chmod");
    if (durable && ::fsync(fd) != 0) fail("fsync");
    if (::close(fd) != 0) {
        auto e = errno_message(errno);
        ::unlink(tmpl.c_str());
        throw Error(fmt::format("writing {}: close: {}", path.string(), e));
    }
    if (::rename(tmpl.c_str(), path.c_str()) != 0) {
        auto e = errno_message(errno);
        ::unlink(tmpl.c_str());
        throw Error(fmt::format("writing {}: rename: {}", path.string(), e));
    }
}

TempFile::TempFile(const fs::path& dir) {
    fs::path base = dir;
    if (base.empty()) {
        const char* t = std::getenv("TMPDIR");
        base = (t && *t) ? fs::path(t) : fs::path("/tmp");
    }
    std::string tmpl = (base / "aas-bundle-XXXXXX").string();
    fd_ = ::mkstemp(tmpl.data());
    if (fd_ < 0) throw Error(fmt::format("creating a temporary file in {}: {}", base.string(), errno_message(errno)));
    path_ = tmpl;
}

TempFile::~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
}

void TempFile::truncate() {
    if (::ftruncate(fd_, 0) != 0) throw Error(fmt::format("truncating {}: {}", path_.string(), errno_message(errno)));
    size_ = 0;
}

void TempFile::append(const void* data, std::size_t n) {
    const char* p = static_cast<const char*>(data);
    std::size_t done = 0;
    while (done < n) {
        ssize_t w = ::pwrite(fd_, p + done, n - done, static_cast<off_t>(size_ + done));
        if (w < 0) {
            if (errno == EINTR) continue;
            throw Error(fmt::format("writing {}: {}", path_.string(), errno_message(errno)));
        }
        done += static_cast<std::size_t>(w);
    }
    size_ += n;
}

std::size_t TempFile::read_at(void* out, std::size_t n, std::uint64_t offset) const {
    return pread_some(fd_, out, n, offset, path_.string());
}

fs::path make_private_dir(const std::string& prefix, const fs::path& parent) {
    fs::path base = parent;
    if (base.empty()) {
        const char* t = std::getenv("TMPDIR");
        base = (t && *t) ? fs::path(t) : fs::path("/tmp");
    }
    std::string tmpl = (base / (prefix + "XXXXXX")).string();
    if (::mkdtemp(tmpl.data()) == nullptr)
        throw Error(fmt::format("creating a private folder in {}: {}", base.string(), errno_message(errno)));
    return tmpl;
}

// ---------------------------------------------------------------------------------------
// SafeTree

namespace {

std::vector<std::string> components(std::string_view rel) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= rel.size()) {
        auto end = rel.find('/', start);
        if (end == std::string_view::npos) end = rel.size();
        auto c = rel.substr(start, end - start);
        if (c.empty() || c == "." || c == ".." || c.find('\0') != std::string_view::npos)
            throw Error(fmt::format("\"{}\" is not a plain relative path", rel));
        out.emplace_back(c);
        start = end + 1;
    }
    return out;
}

// openat2 confined to `dirfd` and refusing every symlink; -1 with errno ENOSYS where the
// kernel lacks it.
int open_beneath(int dirfd, const std::string& rel, int flags) {
#ifdef SYS_openat2
    open_how how{};
    how.flags = static_cast<std::uint64_t>(flags);
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    for (;;) {
        long fd = ::syscall(SYS_openat2, dirfd, rel.c_str(), &how, sizeof how);
        if (fd >= 0 || errno != EAGAIN) return static_cast<int>(fd);
    }
#else
    (void)dirfd, (void)rel, (void)flags;
    errno = ENOSYS;
    return -1;
#endif
}

} // namespace

SafeTree::SafeTree(const fs::path& root) : root_(root) {
    fd_ = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd_ < 0) throw Error(fmt::format("opening the folder {}: {}", root.string(), errno_message(errno)));
}

SafeTree::~SafeTree() {
    if (fd_ >= 0) ::close(fd_);
}

std::pair<int, std::string> SafeTree::parent(std::string_view rel) {
    auto parts = components(rel);
    std::string last = parts.back();
    parts.pop_back();
    const int dflags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    if (parts.empty()) {
        int fd = ::dup(fd_);
        if (fd < 0) throw Error(fmt::format("extracting {}: {}", rel, errno_message(errno)));
        return {fd, last};
    }
    std::string joined;
    for (const auto& c : parts) joined += (joined.empty() ? "" : "/") + c;
    if (int fd = open_beneath(fd_, joined, dflags); fd >= 0) return {fd, last};
    if (errno != ENOSYS && errno != ENOENT)
        throw Error(fmt::format("extracting {}: the folder {} cannot be entered without following a symlink or "
                                "leaving {}: {}",
                                rel, joined, root_.string(), errno_message(errno)));
    // One component at a time, never following a symlink, creating what is missing.
    int cur = ::dup(fd_);
    if (cur < 0) throw Error(fmt::format("extracting {}: {}", rel, errno_message(errno)));
    for (const auto& c : parts) {
        int next = ::openat(cur, c.c_str(), dflags);
        if (next < 0 && errno == ENOENT) {
            if (::mkdirat(cur, c.c_str(), 0755) != 0 && errno != EEXIST) {
                auto e = errno_message(errno);
                ::close(cur);
                throw Error(fmt::format("extracting {}: creating the folder {}: {}", rel, c, e));
            }
            next = ::openat(cur, c.c_str(), dflags);
        }
        if (next < 0) {
            auto e = errno == ELOOP || errno == ENOTDIR ? std::string("a symlink or a file is in the way")
                                                        : errno_message(errno);
            ::close(cur);
            throw Error(fmt::format("extracting {}: {} is not a folder: {}", rel, c, e));
        }
        ::close(cur);
        cur = next;
    }
    return {cur, last};
}

void SafeTree::mkdirs(std::string_view rel) {
    auto [dir, name] = parent(rel);
    if (::mkdirat(dir, name.c_str(), 0755) != 0 && errno != EEXIST) {
        auto e = errno_message(errno);
        ::close(dir);
        throw Error(fmt::format("extracting {}: creating the folder: {}", rel, e));
    }
    struct stat st {};
    bool ok = ::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
    ::close(dir);
    if (!ok) throw Error(fmt::format("extracting {}: something that is not a folder is in the way", rel));
}

void SafeTree::chmod(std::string_view rel, unsigned mode) {
    auto [dir, name] = parent(rel);
    int fd = ::openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    ::close(dir);
    if (fd < 0) throw Error(fmt::format("extracting {}: {}", rel, errno_message(errno)));
    int rc = ::fchmod(fd, static_cast<mode_t>(mode & 0777u));
    auto e = errno_message(errno);
    ::close(fd);
    if (rc != 0) throw Error(fmt::format("extracting {}: chmod: {}", rel, e));
}

void SafeTree::symlink(std::string_view rel, const std::string& target) {
    auto [dir, name] = parent(rel);
    int rc = ::symlinkat(target.c_str(), dir, name.c_str());
    auto e = errno_message(errno);
    ::close(dir);
    if (rc != 0) throw Error(fmt::format("extracting {}: creating the symlink: {}", rel, e));
}

} // namespace aas::util
