// Reading a bundle's tar stream: zstd decoding with a bounded window and output, and
// libarchive's tar reader fed through callbacks (nothing may throw through libarchive:
// the callback parks the exception and libarchive's failure rethrows it).

#include "aas_bundle/bundle/reader.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <optional>
#include <vector>

namespace aas::bundle {

namespace {
constexpr unsigned char zstd_magic[4] = {0x28, 0xB5, 0x2F, 0xFD};
constexpr std::size_t tar_block = 256u << 10;
} // namespace

// ---------------------------------------------------------------------------------------
// Decoder

struct Decoder::Zstd {
    ZSTD_DCtx* dctx = nullptr;
    std::vector<char> buf;
    ZSTD_inBuffer in{nullptr, 0, 0};
    ~Zstd() { ZSTD_freeDCtx(dctx); }
};

Decoder::Decoder(ReadFn in, std::string name, SkipFn skip)
    : in_(std::move(in)), skip_(std::move(skip)), name_(std::move(name)) {}
Decoder::~Decoder() = default;

std::size_t Decoder::pull(char* out, std::size_t n) {
    std::size_t got = in_(out, n);
    in_bytes_ += got;
    return got;
}

void Decoder::start() {
    started_ = true;
    char head[4];
    std::size_t have = 0;
    while (have < 4) {
        std::size_t got = pull(head + have, 4 - have);
        if (got == 0) break;
        have += got;
    }
    if (have == 0) throw FatalError(fmt::format("{}: the file is empty, not a bundle", name_));
    compressed_ = have == 4 && std::memcmp(head, zstd_magic, 4) == 0;
    if (!compressed_) {
        prefix_.assign(head, have);
        return;
    }
    z_ = std::make_unique<Zstd>();
    z_->dctx = ZSTD_createDCtx();
    if (!z_->dctx) throw Error("zstd: out of memory creating a decoder");
    ZSTD_DCtx_setParameter(z_->dctx, ZSTD_d_windowLogMax, max_window_log);
    z_->buf.resize(ZSTD_DStreamInSize());
    std::memcpy(z_->buf.data(), head, 4);
    z_->in = {z_->buf.data(), 4, 0};
}

std::size_t Decoder::decode(char* out, std::size_t n) {
    ZSTD_outBuffer ob{out, n, 0};
    for (;;) {
        if (z_->in.pos == z_->in.size && !flush_pending_) {
            if (eof_) {
                if (last_ret_ != 0)
                    throw FatalError(fmt::format("{}: the zstd stream is truncated at byte {} (the file is shorter "
                                                 "than the bundle it was; copy it again)",
                                                 name_, in_bytes_));
                return 0;
            }
            std::size_t got = pull(z_->buf.data(), z_->buf.size());
            if (got == 0) {
                eof_ = true;
                continue;
            }
            z_->in = {z_->buf.data(), got, 0};
        }
        std::size_t r = ZSTD_decompressStream(z_->dctx, &ob, &z_->in);
        if (ZSTD_isError(r)) {
            std::uint64_t at = in_bytes_ - (z_->in.size - z_->in.pos);
            auto code = ZSTD_getErrorCode(r);
            if (code == ZSTD_error_frameParameter_windowTooLarge)
                throw FatalError(fmt::format("{}: the zstd frame at byte {} needs a window larger than {} MiB; "
                                             "refused (pack never writes one)",
                                             name_, at, (1u << max_window_log) >> 20));
            throw FatalError(fmt::format("{}: broken zstd data near byte {}: {} (the file is damaged)", name_, at,
                                         ZSTD_getErrorName(r)));
        }
        last_ret_ = r;
        flush_pending_ = ob.pos == ob.size;
        if (ob.pos > 0) return ob.pos;
    }
}

std::size_t Decoder::read(char* out, std::size_t n) {
    if (!started_) start();
    if (n == 0) return 0;
    std::size_t got;
    if (!prefix_.empty()) {
        got = std::min(n, prefix_.size());
        std::memcpy(out, prefix_.data(), got);
        prefix_.erase(0, got);
    } else if (compressed_) {
        got = decode(out, n);
    } else {
        got = eof_ ? 0 : pull(out, n);
        if (got == 0) eof_ = true;
    }
    out_bytes_ += got;
    check_limits();
    return got;
}

std::uint64_t Decoder::skip(std::uint64_t n) {
    if (!can_skip() || !prefix_.empty() || eof_ || n == 0) return 0;
    if (!skip_(n)) return 0;
    in_bytes_ += n;
    out_bytes_ += n;
    check_limits();
    return n;
}

void Decoder::check_limits() const {
    if (out_bytes_ > limit_)
        throw FatalError(fmt::format("{}: the tar stream goes past the {} bytes {}; stopped reading at byte {} "
                                     "(a decompression bomb, or data added to the bundle)",
                                     name_, limit_, limit_why_, limit_));
    if (ratio_ && out_bytes_ > in_bytes_ * ratio_ + slack_)
        throw FatalError(fmt::format("{}: the tar stream grows to {} bytes from {} bytes of the archive, past the "
                                     "{}x + {} MiB allowed while bundle.json is not authenticated; stopped reading "
                                     "(a decompression bomb; give --key to check the signature)",
                                     name_, out_bytes_, in_bytes_, ratio_, slack_ >> 20));
}

// ---------------------------------------------------------------------------------------
// Entries

namespace {

/// "." / ".." / empty components, for names and for symlink targets.
bool has_dotdot(std::string_view p) {
    std::size_t start = 0;
    while (start <= p.size()) {
        auto end = p.find('/', start);
        if (end == std::string_view::npos) end = p.size();
        if (p.substr(start, end - start) == "..") return true;
        start = end + 1;
    }
    return false;
}

/// Where a symlink at `link` pointing to `target` leads, lexically, or "" when it climbs
/// above the archive's root.
std::string resolve_link(std::string_view link, std::string_view target) {
    std::vector<std::string_view> parts;
    auto push_all = [&](std::string_view p) -> bool {
        std::size_t start = 0;
        while (start <= p.size()) {
            auto end = p.find('/', start);
            if (end == std::string_view::npos) end = p.size();
            auto part = p.substr(start, end - start);
            if (part == "..") {
                if (parts.empty()) return false;
                parts.pop_back();
            } else if (!part.empty() && part != ".") {
                parts.push_back(part);
            }
            start = end + 1;
        }
        return true;
    };
    auto slash = link.rfind('/');
    if (slash != std::string_view::npos && !push_all(link.substr(0, slash))) return "";
    if (!push_all(target)) return "";
    std::string out;
    for (auto p : parts) out += (out.empty() ? "" : "/") + std::string(p);
    return out.empty() ? "." : out;
}

} // namespace

std::string refusal(const TarEntry& e) {
    if (e.name.empty()) return "the entry has no name";
    if (e.name.find('\0') != std::string::npos) return "the name holds a NUL byte";
    if (e.name.front() == '/') return "the name is absolute";
    if (has_dotdot(e.name)) return "the name has a \"..\" component";
    switch (e.type) {
    case TarEntry::Type::file:
    case TarEntry::Type::dir:
        break;
    case TarEntry::Type::hardlink:
        return fmt::format("it is a hard link (to \"{}\"); bundles hold none", e.target);
    case TarEntry::Type::symlink: {
        if (e.name.rfind("k8s/", 0) != 0) return fmt::format("it is a symlink (to \"{}\") outside k8s/", e.target);
        if (e.target.empty()) return "it is a symlink with an empty target";
        if (e.target.front() == '/') return fmt::format("it is a symlink to the absolute path \"{}\"", e.target);
        auto to = resolve_link(e.name, e.target);
        if (to.empty() || (to != "k8s" && to.rfind("k8s/", 0) != 0))
            return fmt::format("it is a symlink to \"{}\", outside k8s/", e.target);
        break;
    }
    case TarEntry::Type::other:
        return fmt::format("it is a {}; bundles hold only files, folders and symlinks", e.type_name);
    }
    if (e.sparse) return "it is a sparse file";
    return {};
}

// ---------------------------------------------------------------------------------------
// TarReader

struct TarReader::Impl {
    archive* a = nullptr;
    Decoder* dec = nullptr;
    // Two buffers used in turn: libarchive needs only the last one handed out, so the one
    // before stays intact for drain() to scan what libarchive read ahead of the end.
    std::vector<char> buf[2];
    std::size_t buf_len[2] = {0, 0};
    std::uint64_t buf_at[2] = {0, 0}; // tar stream offset of each buffer's first byte
    int cur = 1;
    std::uint64_t fed = 0;          // bytes handed to libarchive
    std::int64_t end_consumed = -1; // bytes libarchive consumed when it saw the end
    std::exception_ptr error;
    std::uint64_t data_offset = 0; // of the current entry's next block
    std::string name;

    ~Impl() {
        if (a) archive_read_free(a);
    }
};

namespace {
la_ssize_t tar_read_cb(archive* a, void* ud, const void** out) {
    auto* m = static_cast<TarReader::Impl*>(ud);
    try {
        int k = 1 - m->cur;
        std::size_t got = m->dec->read(m->buf[k].data(), m->buf[k].size());
        m->cur = k;
        m->buf_len[k] = got;
        m->buf_at[k] = m->fed;
        m->fed += got;
        *out = m->buf[k].data();
        return static_cast<la_ssize_t>(got);
    } catch (...) {
        m->error = std::current_exception();
        archive_set_error(a, EIO, "reading the bundle failed");
        return ARCHIVE_FATAL;
    }
}

la_int64_t tar_skip_cb(archive* a, void* ud, la_int64_t request) {
    auto* m = static_cast<TarReader::Impl*>(ud);
    try {
        if (request <= 0) return 0;
        auto n = m->dec->skip(static_cast<std::uint64_t>(request));
        m->fed += n;
        return static_cast<la_int64_t>(n);
    } catch (...) {
        m->error = std::current_exception();
        archive_set_error(a, EIO, "reading the bundle failed");
        return ARCHIVE_FATAL;
    }
}
} // namespace

TarReader::TarReader(ReadFn in, std::string name, SkipFn skip)
    : dec_(std::make_unique<Decoder>(std::move(in), name, std::move(skip))), impl_(std::make_unique<Impl>()) {
    impl_->name = std::move(name);
    impl_->dec = dec_.get();
    impl_->buf[0].resize(tar_block);
    impl_->buf[1].resize(tar_block);
    impl_->a = archive_read_new();
    if (!impl_->a) throw Error("libarchive: out of memory");
    archive_read_support_format_tar(impl_->a);
    archive_read_support_format_gnutar(impl_->a);
    if (archive_read_open2(impl_->a, impl_.get(), nullptr, tar_read_cb, tar_skip_cb, nullptr) != ARCHIVE_OK)
        fail("opening the archive");
}

TarReader::~TarReader() = default;

void TarReader::fail(const char* doing) {
    if (impl_->error) {
        auto e = impl_->error;
        impl_->error = nullptr;
        std::rethrow_exception(e);
    }
    const char* msg = archive_error_string(impl_->a);
    std::string why = msg ? msg : "unknown error";
    std::string hint;
    if (why.find("Unrecognized archive format") != std::string::npos ||
        why.find("Damaged tar archive") != std::string::npos)
        hint = " (not a tar archive: the file is damaged, or not a bundle)";
    else if (why.find("runcated") != std::string::npos)
        hint = " (the file is shorter than the bundle it was; copy it again)";
    throw FatalError(
        fmt::format("{}: {} at byte {} of the tar stream: {}{}", impl_->name, doing, dec_->out_bytes(), why, hint));
}

bool TarReader::next(TarEntry& e) {
    archive_entry* ae = nullptr;
    int r = archive_read_next_header(impl_->a, &ae);
    if (r == ARCHIVE_EOF) {
        impl_->end_consumed = archive_filter_bytes(impl_->a, 0);
        return false;
    }
    if (r < ARCHIVE_WARN || ae == nullptr) fail("reading an entry header");
    e = TarEntry{};
    e.offset = static_cast<std::uint64_t>(std::max<la_int64_t>(0, archive_read_header_position(impl_->a)));
    // Bytes libarchive consumed: the header (pax records included) is behind it.
    e.data_offset = static_cast<std::uint64_t>(std::max<la_int64_t>(0, archive_filter_bytes(impl_->a, 0)));
    const char* name = archive_entry_pathname(ae);
    e.name = name ? name : "";
    if (e.name.size() > 1 && e.name.back() == '/') e.name.pop_back();
    e.size = static_cast<std::uint64_t>(std::max<la_int64_t>(0, archive_entry_size(ae)));
    e.mode = static_cast<unsigned>(archive_entry_perm(ae)) & 07777u;
    e.sparse = archive_entry_sparse_count(ae) > 0;
    if (const char* hl = archive_entry_hardlink(ae)) {
        e.type = TarEntry::Type::hardlink;
        e.type_name = "hard link";
        e.target = hl;
    } else {
        switch (archive_entry_filetype(ae)) {
        case AE_IFREG:
            e.type = TarEntry::Type::file;
            e.type_name = "file";
            break;
        case AE_IFDIR:
            e.type = TarEntry::Type::dir;
            e.type_name = "folder";
            break;
        case AE_IFLNK: {
            e.type = TarEntry::Type::symlink;
            e.type_name = "symlink";
            const char* t = archive_entry_symlink(ae);
            e.target = t ? t : "";
            break;
        }
        case AE_IFCHR:
            e.type_name = "character device";
            break;
        case AE_IFBLK:
            e.type_name = "block device";
            break;
        case AE_IFIFO:
            e.type_name = "FIFO";
            break;
        case AE_IFSOCK:
            e.type_name = "socket";
            break;
        default:
            e.type_name = "entry of an unknown type";
            break;
        }
    }
    impl_->data_offset = 0;
    return true;
}

std::size_t TarReader::read_block(const char** p) {
    const void* buf = nullptr;
    size_t size = 0;
    la_int64_t off = 0;
    int r = archive_read_data_block(impl_->a, &buf, &size, &off);
    if (r == ARCHIVE_EOF) return 0;
    if (r < ARCHIVE_WARN) fail("reading an entry's data");
    if (off < 0 || static_cast<std::uint64_t>(off) != impl_->data_offset)
        throw FatalError(fmt::format("{}: an entry's data has a hole at byte {} of the tar stream (a sparse "
                                     "file); refused",
                                     impl_->name, dec_->out_bytes()));
    impl_->data_offset += size;
    *p = static_cast<const char*>(buf);
    if (size == 0) return read_block(p);
    return size;
}

void TarReader::skip() {
    if (archive_read_data_skip(impl_->a) < ARCHIVE_WARN) fail("skipping an entry's data");
}

std::optional<std::uint64_t> TarReader::drain() {
    std::optional<std::uint64_t> first;
    auto scan = [&](const char* p, std::size_t n, std::uint64_t at) {
        if (first) return;
        auto it = std::find_if(p, p + n, [](char c) { return c != 0; });
        if (it != p + n) first = at + static_cast<std::uint64_t>(it - p);
    };
    // What libarchive read past the end-of-archive marker, still in the two buffers.
    if (impl_->end_consumed >= 0) {
        auto from = static_cast<std::uint64_t>(impl_->end_consumed);
        for (int k : {1 - impl_->cur, impl_->cur}) {
            std::uint64_t lo = impl_->buf_at[k], hi = lo + impl_->buf_len[k];
            if (hi <= from || impl_->buf_len[k] == 0) continue;
            std::uint64_t start = std::max(lo, from);
            scan(impl_->buf[k].data() + (start - lo), static_cast<std::size_t>(hi - start), start);
        }
    }
    auto& b = impl_->buf[0];
    for (;;) {
        std::uint64_t at = dec_->out_bytes();
        std::size_t got = dec_->read(b.data(), b.size());
        if (got == 0) break;
        scan(b.data(), got, at);
    }
    return first;
}

} // namespace aas::bundle
