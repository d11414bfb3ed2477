#include "k8s_scan.hpp"

#include "aas_bundle/util/error.hpp"
#include "aas_bundle/util/fs.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <string>
#include <sys/stat.h>

namespace aas::pack {
namespace fs = std::filesystem;

namespace {

std::int64_t mtime_of(const struct stat& st) {
    return static_cast<std::int64_t>(st.st_mtim.tv_sec);
}

oci::Digest hash_file(const fs::path& p, std::uint64_t& size) {
    util::Fd fd = util::open_for_reading(p);
    oci::Hasher h;
    size =
        util::read_chunks(fd.get(), 1u << 20, p.string(), [&](const char* data, std::size_t n) { h.update(data, n); });
    return h.finish();
}

// The record of `p` (at `rel` in the folder, lstat'ed into `st`), or the reason it cannot
// be shipped.
std::optional<K8sEntry> k8s_entry(const fs::path& p, const std::string& rel, const struct stat& st,
                                  std::vector<std::string>& problems) {
    K8sEntry e;
    e.source = p;
    e.mtime = mtime_of(st);
    e.rec.path = std::string(bundle::k8s_dir) + "/" + rel;
    e.rec.mode = st.st_mode & 0777u;
    if (S_ISDIR(st.st_mode)) {
        e.rec.type = "dir";
    } else if (S_ISREG(st.st_mode)) {
        e.rec.type = "file";
        e.rec.sha256 = hash_file(p, e.rec.size);
    } else if (S_ISLNK(st.st_mode)) {
        e.rec.type = "symlink";
        e.rec.target = fs::read_symlink(p).string();
        fs::path resolved = (fs::path(rel).parent_path() / e.rec.target).lexically_normal();
        auto first = resolved.empty() ? std::string() : resolved.begin()->string();
        if (fs::path(e.rec.target).is_absolute() || first == "..") {
            problems.push_back(fmt::format("{}: symlink to {} points outside the k8s folder; replace it with the "
                                           "file it points to",
                                           p.string(), e.rec.target));
            return std::nullopt;
        }
    } else {
        problems.push_back(fmt::format("{}: not a regular file, folder or symlink (a device, FIFO or socket); "
                                       "remove it from the k8s folder",
                                       p.string()));
        return std::nullopt;
    }
    return e;
}

} // namespace

std::vector<K8sEntry> scan_k8s(const fs::path& root) {
    std::vector<K8sEntry> out;
    if (root.empty()) {
        out.push_back({{std::string(bundle::k8s_dir), "dir", 0755, 0, {}, {}}, {}, -1});
        return out;
    }
    struct stat st {};
    if (::stat(root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        throw UsageError(fmt::format("the k8s folder {} is not a folder", root.string()));
    out.push_back({{std::string(bundle::k8s_dir), "dir", st.st_mode & 0777u, 0, {}, {}}, root, mtime_of(st)});
    std::vector<std::string> problems;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::none, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (ec) throw Error(fmt::format("reading the k8s folder {}: {}", root.string(), ec.message()));
        const auto& p = it->path();
        auto rel = p.lexically_relative(root).generic_string(); // fs::relative would follow symlinks
        if (::lstat(p.c_str(), &st) != 0)
            throw Error(fmt::format("reading {}: {}", p.string(), util::errno_message(errno)));
        if (auto e = k8s_entry(p, rel, st, problems)) out.push_back(std::move(*e));
    }
    if (!problems.empty()) {
        std::string msg = "the k8s folder cannot be shipped as it is:";
        for (const auto& pr : problems) msg += "\n  " + pr;
        throw UsageError(msg);
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.rec.path < b.rec.path; });
    return out;
}

} // namespace aas::pack
