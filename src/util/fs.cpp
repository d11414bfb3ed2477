#include "aas_bundle/util/fs.hpp"

#include "aas_bundle/util/error.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace aas::util {
namespace fs = std::filesystem;

static std::string errno_text() { return std::strerror(errno); }

std::string read_file(const fs::path& path, std::uint64_t max_bytes) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error(fmt::format("reading {}: {}", path.string(), errno_text()));
    std::string out;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            auto e = errno_text();
            ::close(fd);
            throw Error(fmt::format("reading {}: {}", path.string(), e));
        }
        if (n == 0) break;
        out.append(buf, static_cast<std::size_t>(n));
        if (out.size() > max_bytes) {
            ::close(fd);
            throw Error(fmt::format("reading {}: larger than the limit of {} bytes", path.string(), max_bytes));
        }
    }
    ::close(fd);
    return out;
}

void write_file_atomic(const fs::path& path, std::string_view data, fs::perms perms) {
    fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
    std::string tmpl = (dir / ("." + path.filename().string() + ".tmp-XXXXXX")).string();
    int fd = ::mkstemp(tmpl.data());
    if (fd < 0) throw Error(fmt::format("writing {}: cannot create a temporary file in {}: {}", path.string(), dir.string(), errno_text()));
    auto fail = [&](const char* what) {
        auto e = errno_text();
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
    if (::fsync(fd) != 0) fail("fsync");
    if (::close(fd) != 0) {
        auto e = errno_text();
        ::unlink(tmpl.c_str());
        throw Error(fmt::format("writing {}: close: {}", path.string(), e));
    }
    if (::rename(tmpl.c_str(), path.c_str()) != 0) {
        auto e = errno_text();
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
    if (fd_ < 0) throw Error(fmt::format("creating a temporary file in {}: {}", base.string(), errno_text()));
    path_ = tmpl;
}

TempFile::~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
}

void TempFile::truncate() {
    if (::ftruncate(fd_, 0) != 0) throw Error(fmt::format("truncating {}: {}", path_.string(), errno_text()));
    size_ = 0;
}

void TempFile::append(const void* data, std::size_t n) {
    const char* p = static_cast<const char*>(data);
    std::size_t done = 0;
    while (done < n) {
        ssize_t w = ::pwrite(fd_, p + done, n - done, static_cast<off_t>(size_ + done));
        if (w < 0) {
            if (errno == EINTR) continue;
            throw Error(fmt::format("writing {}: {}", path_.string(), errno_text()));
        }
        done += static_cast<std::size_t>(w);
    }
    size_ += n;
}

std::size_t TempFile::read_at(void* out, std::size_t n, std::uint64_t offset) const {
    for (;;) {
        ssize_t r = ::pread(fd_, out, n, static_cast<off_t>(offset));
        if (r < 0) {
            if (errno == EINTR) continue;
            throw Error(fmt::format("reading {}: {}", path_.string(), errno_text()));
        }
        return static_cast<std::size_t>(r);
    }
}

} // namespace aas::util
