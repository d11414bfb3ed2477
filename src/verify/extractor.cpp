// Extracting a bundle's accepted entries (extractor.hpp): files through a ".partial" name,
// folders and symlinks through util::SafeTree.

#include "extractor.hpp"

#include "aas_bundle/util/error.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace aas::verify::detail {
namespace fs = std::filesystem;

Extractor::~Extractor() {
    if (fd_ >= 0) {
        ::close(fd_);
        ::unlinkat(dir_, partial_.c_str(), 0);
    }
    if (dir_ >= 0) ::close(dir_);
}

void Extractor::dir(const std::string& name, unsigned mode) {
    tree().mkdirs(name);
    dirs_.emplace_back(name, mode);
}

void Extractor::open(const std::string& name, unsigned mode) {
    name_ = name;
    auto [dir, base] = tree().parent(name);
    dir_ = dir;
    base_ = base;
    partial_ = base + ".partial";
    ::unlinkat(dir_, partial_.c_str(), 0);
    fd_ = ::openat(dir_, partial_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd_ < 0) fail("creating");
    mode_ = mode & 0777u;
}

void Extractor::write(const char* p, std::size_t n) {
    while (n > 0) {
        ssize_t w = ::write(fd_, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) fail("writing");
        p += w;
        n -= static_cast<std::size_t>(w);
    }
}

void Extractor::close() {
    if (::fchmod(fd_, mode_) != 0) fail("writing");
    if (::close(fd_) != 0) {
        fd_ = -1;
        fail("writing");
    }
    fd_ = -1;
    if (::renameat(dir_, partial_.c_str(), dir_, base_.c_str()) != 0) fail("renaming");
    ::close(dir_);
    dir_ = -1;
}

void Extractor::finish(bool tree_ok) {
    if (o_.extract_to.empty()) return;
    if (tree_ok)
        for (const auto& [name, target] : links_) tree().symlink(name, target);
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) tree().chmod(it->first, (it->second | 0700u) & 0777u);
}

util::SafeTree& Extractor::tree() {
    if (!tree_) {
        fs::create_directories(o_.extract_to); // the caller's folder, trusted
        tree_ = std::make_unique<util::SafeTree>(o_.extract_to);
    }
    return *tree_;
}

void Extractor::fail(const char* what) {
    std::string e = util::errno_message(errno);
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    if (dir_ >= 0) {
        ::unlinkat(dir_, partial_.c_str(), 0);
        ::close(dir_);
        dir_ = -1;
    }
    throw Error(fmt::format("extracting: {} {}: {}", what, (o_.extract_to / name_).string(), e));
}

} // namespace aas::verify::detail
