// File stores (folders and tar archives) and verified streaming. The tar grammar they index
// with is in tar_index.cpp.

#include "tar_index.hpp"

#include "aas_bundle/bundle/tar_archive.hpp"
#include "aas_bundle/oci/digest.hpp"
#include "aas_bundle/util/error.hpp"
#include "aas_bundle/util/fs.hpp"
#include "aas_bundle/util/log.hpp"

#include <fmt/format.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace aas::source::detail {
namespace fs = std::filesystem;

namespace {

constexpr std::size_t chunk_bytes = 1u << 20;
constexpr std::uint64_t cache_member_bytes = 256u << 10; // compressed tars: members kept in memory
constexpr std::uint64_t cache_total_bytes = 16u << 20;
using util::Fd;

std::size_t pread_full(int fd, void* out, std::size_t n, std::uint64_t offset) {
    auto* p = static_cast<char*>(out);
    std::size_t done = 0;
    while (done < n) {
        long r = util::pread_retrying(fd, p + done, n - done, offset + done);
        if (r < 0) throw Error(fmt::format("read failed at byte {}: {}", offset + done, util::errno_message(errno)));
        if (r == 0) break;
        done += static_cast<std::size_t>(r);
    }
    return done;
}

bool is_compressed_magic(std::string_view head) {
    auto starts = [&](std::string_view m) { return head.substr(0, m.size()) == m; };
    return starts("\x1f\x8b") || starts("\x28\xb5\x2f\xfd") ||
           starts(std::string_view("\xfd"
                                   "7zXZ\0",
                                   6)) ||
           starts("BZh");
}

// ---------------------------------------------------------------------------------------
// A folder

class FolderStore final : public FileStore {
public:
    explicit FolderStore(fs::path root) : root_(std::move(root)) {}

    std::string container() const override { return root_.string(); }

    std::optional<std::uint64_t> size(const std::string& path) const override {
        struct stat st {};
        if (::stat(full(path).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
        return static_cast<std::uint64_t>(st.st_size);
    }

    std::string read(const std::string& path, std::uint64_t max_bytes) const override {
        std::string out;
        stream_impl(path, max_bytes, [&](const char* d, std::size_t n) { out.append(d, n); });
        return out;
    }

    std::string head(const std::string& path, std::size_t n) const override {
        Fd fd(open_file(path));
        std::string out(n, '\0');
        try {
            out.resize(pread_full(fd.get(), out.data(), n, 0));
        } catch (const Error& e) {
            throw Error(fmt::format("reading {}: {}", full(path).string(), e.what()));
        }
        return out;
    }

    void stream(const std::string& path, const ChunkFn& chunk) const override { stream_impl(path, UINT64_MAX, chunk); }

private:
    fs::path full(const std::string& path) const {
        bool bad = path.empty() || path.front() == '/';
        for (std::size_t i = 0; !bad && i <= path.size();) {
            auto j = path.find('/', i);
            if (j == std::string::npos) j = path.size();
            auto part = std::string_view(path).substr(i, j - i);
            if (part.empty() || part == "." || part == "..") bad = true;
            i = j + 1;
        }
        if (bad)
            throw Error(fmt::format("{}: refusing to read \"{}\": not a plain relative path", root_.string(), path));
        return root_ / path;
    }

    int open_file(const std::string& path) const {
        auto p = full(path);
        int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            throw Error(fmt::format("reading {}: {}", p.string(), util::errno_message(e)));
        }
        struct stat st {};
        if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            ::close(fd);
            throw Error(fmt::format("reading {}: not a regular file", p.string()));
        }
        return fd;
    }

    void stream_impl(const std::string& path, std::uint64_t max_bytes, const ChunkFn& chunk) const {
        Fd fd(open_file(path));
        std::uint64_t total = 0;
        util::read_chunks(fd.get(), chunk_bytes, full(path).string(), [&](const char* d, std::size_t n) {
            total += n;
            if (total > max_bytes)
                throw Error(
                    fmt::format("reading {}: larger than the limit of {} bytes", full(path).string(), max_bytes));
            chunk(d, n);
        });
    }

    fs::path root_;
};

// ---------------------------------------------------------------------------------------
// What both kinds of tar share: the archive, its members, and their sizes

class TarStore : public FileStore {
public:
    std::string container() const override { return path_.string(); }

    std::optional<std::uint64_t> size(const std::string& path) const override {
        const auto* m = resolve_member(members_, path);
        if (!m) return std::nullopt;
        return m->size;
    }

protected:
    TarStore(fs::path path, std::string where) : path_(std::move(path)), where_(std::move(where)) {}

    fs::path path_;
    std::string where_;
    std::map<std::string, TarMember> members_;
};

// ---------------------------------------------------------------------------------------
// An uncompressed tar, indexed once, read with pread

class PlainTarStore final : public TarStore {
public:
    PlainTarStore(fs::path path, std::string where, int fd, std::uint64_t file_size)
        : TarStore(std::move(path), std::move(where)), fd_(fd) {
        members_ =
            index_tar([&](void* out, std::size_t n, std::uint64_t off) { return pread_full(fd_.get(), out, n, off); },
                      file_size, where_);
    }

    std::string read(const std::string& path, std::uint64_t max_bytes) const override {
        const auto& m = find(path);
        if (m.size > max_bytes)
            throw Error(fmt::format("{}: member {} is larger than the limit of {} bytes", where_, path, max_bytes));
        std::string out(m.size, '\0');
        read_range(path, m.offset, out.data(), out.size());
        return out;
    }

    std::string head(const std::string& path, std::size_t n) const override {
        const auto& m = find(path);
        std::string out(std::min<std::uint64_t>(n, m.size), '\0');
        read_range(path, m.offset, out.data(), out.size());
        return out;
    }

    void stream(const std::string& path, const ChunkFn& chunk) const override {
        const auto& m = find(path);
        std::vector<char> buf(static_cast<std::size_t>(std::min<std::uint64_t>(chunk_bytes, m.size)));
        std::uint64_t done = 0;
        while (done < m.size) {
            auto n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), m.size - done));
            read_range(path, m.offset + done, buf.data(), n);
            chunk(buf.data(), n);
            done += n;
        }
    }

private:
    const TarMember& find(const std::string& path) const {
        const auto* m = resolve_member(members_, path);
        if (!m) throw Error(fmt::format("{}: the archive has no file {}", where_, path));
        return *m;
    }

    void read_range(const std::string& path, std::uint64_t offset, char* out, std::size_t n) const {
        std::size_t got = 0;
        try {
            got = pread_full(fd_.get(), out, n, offset);
        } catch (const Error& e) {
            throw Error(fmt::format("{}: reading member {}: {}", where_, path, e.what()));
        }
        if (got != n)
            throw Error(fmt::format("{}: reading member {}: the archive ends early (truncated?)", where_, path));
    }

    Fd fd_;
};

// ---------------------------------------------------------------------------------------
// A compressed tar, read through libarchive (bundle::TarArchive)

using Archive = bundle::TarArchive;

class CompressedTarStore final : public TarStore {
public:
    CompressedTarStore(fs::path path, std::string where) : TarStore(std::move(path), std::move(where)) {
        Archive r(Archive::Compression::any, where_);
        open(r);
        std::uint64_t ordinal = 0;
        std::uint64_t cached = 0;
        for (Archive::Member e; next(r, e);) {
            TarMember m;
            m.ordinal = ordinal++;
            std::string name = entry_name(e);
            if (e.hardlink) {
                m.type = '1';
                m.link = normalize_member(*e.hardlink);
            } else if (e.type == Archive::Member::Type::symlink) {
                m.type = '2';
                m.link = e.symlink;
            } else if (e.type == Archive::Member::Type::dir) {
                m.type = '5';
            } else if (e.type == Archive::Member::Type::file) {
                m.type = '0';
                m.size = e.size ? static_cast<std::uint64_t>(*e.size) : 0;
                bool keep = m.size <= cache_member_bytes && cached + m.size <= cache_total_bytes;
                std::string data = read_data(r, name, keep ? m.size : 16);
                if (keep) {
                    cached += m.size;
                    cache_[name] = data;
                }
                heads_[name] = data.substr(0, 16);
            } else {
                continue;
            }
            if (!name.empty()) members_[name] = std::move(m);
        }
    }

    std::string read(const std::string& path, std::uint64_t max_bytes) const override {
        std::string resolved;
        const auto& m = find(path, resolved);
        if (m.size > max_bytes)
            throw Error(fmt::format("{}: member {} is larger than the limit of {} bytes", where_, path, max_bytes));
        if (auto it = cache_.find(resolved); it != cache_.end()) return it->second;
        std::string out;
        stream(path, [&](const char* d, std::size_t n) { out.append(d, n); });
        return out;
    }

    std::string head(const std::string& path, std::size_t n) const override {
        std::string resolved;
        find(path, resolved);
        const auto& h = heads_.at(resolved);
        if (n <= h.size()) return h.substr(0, n);
        return read(path, UINT64_MAX).substr(0, n);
    }

    void stream(const std::string& path, const ChunkFn& chunk) const override {
        std::string resolved;
        const auto& m = find(path, resolved);
        if (auto it = cache_.find(resolved); it != cache_.end()) {
            if (!it->second.empty()) chunk(it->second.data(), it->second.size());
            return;
        }
        log::debug("{}: decompressing the archive up to {} (compressed archives have no random access)", where_,
                   resolved);
        Archive r(Archive::Compression::any, where_);
        open(r);
        std::uint64_t ordinal = 0;
        for (Archive::Member e; next(r, e); ++ordinal) {
            if (ordinal != m.ordinal) continue;
            std::vector<char> buf(chunk_bytes);
            while (std::size_t n = read_some(r, resolved, buf.data(), buf.size())) chunk(buf.data(), n);
            return;
        }
        throw Error(fmt::format("{}: member {} is no longer in the archive (was it changed while being read?)", where_,
                                resolved));
    }

private:
    const TarMember& find(const std::string& path, std::string& resolved) const {
        const auto* m = resolve_member(members_, path, &resolved);
        if (!m) throw Error(fmt::format("{}: the archive has no file {}", where_, path));
        return *m;
    }

    static std::string error(const Archive& r) { return r.error() ? r.error() : "unknown error"; }

    void open(Archive& r) const {
        if (!r.open(path_))
            throw Error(
                fmt::format("{}: opening the compressed archive: {}", where_, r.error() ? r.error() : "cannot open"));
    }

    /// The next member's header into `e`; false at the end of the archive.
    bool next(Archive& r, Archive::Member& e) const {
        auto got = r.next(e);
        if (got == Archive::Next::failed)
            throw Error(fmt::format("{}: reading the compressed archive: {}", where_, error(r)));
        return got == Archive::Next::member;
    }

    static std::string entry_name(const Archive::Member& e) {
        const auto& p = e.name ? e.name : e.utf8_name;
        return p ? normalize_member(*p) : std::string();
    }

    std::size_t read_some(Archive& r, const std::string& name, char* out, std::size_t n) const {
        auto got = r.read(out, n);
        if (!got) throw Error(fmt::format("{}: reading member {}: {}", where_, name, error(r)));
        return *got;
    }

    std::string read_data(Archive& r, const std::string& name, std::uint64_t n) const {
        std::string out(n, '\0');
        std::size_t done = 0;
        while (done < out.size()) {
            std::size_t got = read_some(r, name, out.data() + done, out.size() - done);
            if (got == 0) break;
            done += got;
        }
        out.resize(done);
        return out;
    }

    std::map<std::string, std::string> cache_;
    std::map<std::string, std::string> heads_;
};

} // namespace

std::unique_ptr<FileStore> open_folder(const fs::path& root) {
    std::error_code ec;
    if (!fs::is_directory(root, ec))
        throw Error(fmt::format("{}: not a folder{}", root.string(), ec ? ": " + ec.message() : std::string()));
    return std::make_unique<FolderStore>(root);
}

std::unique_ptr<FileStore> open_tar(const fs::path& archive_path, std::string where) {
    int raw = ::open(archive_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (raw < 0) {
        int e = errno;
        throw Error(fmt::format("{}: cannot open the archive: {}", where, util::errno_message(e)));
    }
    Fd fd(raw);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) throw Error(fmt::format("{}: not a regular file", where));
    std::string head(8, '\0');
    head.resize(pread_full(fd.get(), head.data(), head.size(), 0));
    if (is_compressed_magic(head)) return std::make_unique<CompressedTarStore>(archive_path, where);
    int dup = ::dup(fd.get());
    if (dup < 0) {
        int e = errno;
        throw Error(fmt::format("{}: {}", where, util::errno_message(e)));
    }
    ::fcntl(dup, F_SETFD, FD_CLOEXEC);
    return std::make_unique<PlainTarStore>(archive_path, std::move(where), dup, static_cast<std::uint64_t>(st.st_size));
}

void stream_verified(const FileStore& store, const std::string& path, const oci::Descriptor& blob,
                     registry::BlobSink& sink, const registry::ByteCallback& on_bytes, const std::string& where) {
    std::string what = fmt::format("{}: blob {} ({})", where, blob.digest.str(), path);
    auto size = store.size(path);
    if (!size) throw Error(fmt::format("{}: the file is missing", what));
    const auto expected = static_cast<std::uint64_t>(blob.size);
    if (*size != expected)
        throw Error(fmt::format("{}: the file has {} bytes, the descriptor says {}", what, *size, expected));
    oci::Hasher hasher(blob.digest.algorithm());
    std::uint64_t received = 0;
    sink.reset();
    store.stream(path, [&](const char* data, std::size_t n) {
        if (received + n > expected)
            throw Error(fmt::format("{}: more than the {} bytes the descriptor gives", what, expected));
        hasher.update(data, n);
        sink.write(data, n);
        received += n;
        if (on_bytes) on_bytes(n);
    });
    if (received != expected)
        throw Error(fmt::format("{}: read {} bytes, the descriptor says {}", what, received, expected));
    auto got = hasher.finish();
    if (got != blob.digest)
        throw Error(
            fmt::format("{}: digest mismatch: the content hashes to {} (the file is corrupt)", what, got.str()));
}

std::string blob_path(const oci::Digest& digest) {
    // A parsed Digest holds only an algorithm name and lower-case hex: no '/' or "..".
    const char* alg = digest.algorithm() == oci::Algorithm::sha512 ? "sha512" : "sha256";
    return fmt::format("blobs/{}/{}", alg, digest.hex());
}

} // namespace aas::source::detail
