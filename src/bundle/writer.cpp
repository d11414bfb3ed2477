// BundleWriter: libarchive (pax_restricted) writes the tar stream into our own client
// callback; we compress it with libzstd ourselves (so the caller controls the threads) and
// hand the result to an output layer that hashes the whole stream, counts it and cuts it
// into parts at exact `split_size` boundaries.
//
//   add_*() -> libarchive -> write_cb -> [ZSTD_compressStream2] -> Output -> temp file(s)
//
// libarchive is C: nothing may throw through it, so write_cb catches and parks the
// exception, returns -1, and the caller rethrows it once libarchive gives up.

#include "aas_bundle/bundle/writer.hpp"
#include "aas_bundle/bundle/parts.hpp"

#include "aas_bundle/util/error.hpp"
#include "aas_bundle/util/fs.hpp"
#include "aas_bundle/util/signals.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <locale.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <optional>
#include <random>
#include <set>

namespace aas::bundle {
namespace fs = std::filesystem;

namespace {

constexpr std::size_t chunk_size = 1u << 20; // add_stream pulls at most this much per read

bool all_digits(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_alnum(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/// If `file` is a temporary file of a writer for `out_name` (".OUT.tmp-PID-XXXXXX" or
/// ".OUT.partNNN.tmp-PID-XXXXXX"), returns its PID; else 0.
pid_t temp_owner(std::string_view file, const std::string& out_name) {
    std::string prefix = "." + out_name;
    if (file.substr(0, prefix.size()) != prefix) return 0;
    file.remove_prefix(prefix.size());
    auto tmp = file.find(".tmp-");
    if (tmp == std::string_view::npos) return 0;
    auto middle = file.substr(0, tmp);
    if (!middle.empty() && !(middle.substr(0, 5) == ".part" && all_digits(middle.substr(5)))) return 0;
    auto rest = file.substr(tmp + 5); // "PID-XXXXXX"
    auto dash = rest.find('-');
    if (dash == std::string_view::npos || dash > 9 || !all_digits(rest.substr(0, dash))) return 0;
    auto suffix = rest.substr(dash + 1);
    if (suffix.size() != 6 || !std::all_of(suffix.begin(), suffix.end(), is_alnum)) return 0;
    return static_cast<pid_t>(std::stol(std::string(rest.substr(0, dash))));
}

/// "OUT.partNNN" for a part number (at least 3 digits).
std::string part_name(const std::string& out_name, std::size_t index, int width) {
    return fmt::format("{}.part{:0{}}", out_name, index, width);
}

void fsync_dir(const fs::path& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw Error(fmt::format("syncing folder {}: {}", dir.string(), util::errno_message(errno)));
    int rc = ::fsync(fd);
    int e = errno;
    ::close(fd);
    if (rc != 0 && e != EINVAL) throw Error(fmt::format("syncing folder {}: {}", dir.string(), util::errno_message(e)));
}

bool valid_utf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        std::size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
        if (len == 0 || i + len > s.size()) return false;
        std::uint32_t cp = len == 1 ? c : c & (0x7f >> len);
        for (std::size_t k = 1; k < len; ++k) {
            auto d = static_cast<unsigned char>(s[i + k]);
            if ((d & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (d & 0x3f);
        }
        static constexpr std::uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += len;
    }
    return true;
}

/// Refuses entry names that could escape the folder the bundle is unpacked in.
void check_entry_path(std::string_view path, const fs::path& out) {
    auto fail = [&](const char* why) { throw Error(fmt::format("adding \"{}\" to {}: {}", path, out.string(), why)); };
    if (path.empty()) fail("the entry name is empty");
    if (path.find('\0') != std::string_view::npos) fail("the entry name contains a NUL byte");
    if (path.front() == '/') fail("the entry name is absolute");
    if (!valid_utf8(path)) fail("the entry name is not valid UTF-8");
    std::size_t start = 0;
    while (start <= path.size()) {
        auto end = path.find('/', start);
        if (end == std::string_view::npos) end = path.size();
        if (path.substr(start, end - start) == "..") fail("the entry name contains a \"..\" component");
        start = end + 1;
    }
}

/// Entry names are UTF-8. libarchive converts names through the current locale's
/// charset (and crashes on a name it cannot convert under LC_CTYPE=C), so headers are
/// written under C.UTF-8 for this thread only.
class Utf8Locale {
public:
    Utf8Locale() {
        static locale_t utf8 = ::newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
        if (utf8) old_ = ::uselocale(utf8);
    }
    ~Utf8Locale() {
        if (old_) ::uselocale(old_);
    }
    Utf8Locale(const Utf8Locale&) = delete;
    Utf8Locale& operator=(const Utf8Locale&) = delete;

private:
    locale_t old_ = static_cast<locale_t>(nullptr);
};

} // namespace

// ---------------------------------------------------------------------------------------
// Output: hashes and counts the (compressed) stream and writes it to one temp file, or to
// one temp file per part, rolling over exactly at `split_size`.

class Output {
public:
    struct File {
        fs::path temp;
        int fd = -1;
        std::uint64_t size = 0;
        oci::Digest sha256;
    };

    /// `adopt`: a killed writer's temporary file to take over (one file only), or empty.
    Output(fs::path out, std::uint64_t split_size, const fs::path& adopt = {})
        : out_(std::move(out)), split_size_(split_size) {
        dir_ = out_.parent_path().empty() ? fs::path(".") : out_.parent_path();
        name_ = out_.filename().string();
        std::random_device rd;
        rng_.seed((static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^ static_cast<std::uint64_t>(::getpid()));
        open_next(split_size_ == 0 ? adopt : fs::path());
    }

    ~Output() {
        for (auto& f : files_) {
            if (f.fd >= 0) ::close(f.fd);
            if (!f.temp.empty()) ::unlink(f.temp.c_str());
        }
    }

    Output(const Output&) = delete;
    Output& operator=(const Output&) = delete;

    void write(const char* p, std::size_t n) {
        while (n > 0) {
            if (split_size_ > 0 && files_.back().size == split_size_) {
                close_current();
                open_next();
            }
            File& f = files_.back();
            std::size_t take = n;
            if (split_size_ > 0) take = static_cast<std::size_t>(std::min<std::uint64_t>(n, split_size_ - f.size));
            write_all(f, p, take);
            part_hash_.update(p, take);
            whole_hash_.update(p, take);
            f.size += take;
            total_ += take;
            p += take;
            n -= take;
        }
    }

    /// Moves `n` bytes on without writing them (a hole that write_at() fills). One file
    /// only: the hashes are then taken by reading the file back at finish().
    void skip(std::uint64_t n) {
        File& f = files_.back();
        if (::lseek(f.fd, static_cast<off_t>(n), SEEK_CUR) < 0)
            throw Error(fmt::format("writing {}: {}", f.temp.string(), util::errno_message(errno)));
        f.size += n;
        total_ += n;
        holes_ = true;
    }

    /// Writes at `offset` of the one file (any thread, before finish()).
    void write_at(std::uint64_t offset, const char* p, std::size_t n) { write_all(files_.front(), p, n, offset); }

    /// Reads at `offset` of the one file (any thread, before finish()).
    std::size_t read_at(std::uint64_t offset, char* p, std::size_t n) const {
        const File& f = files_.front();
        return util::pread_some(f.fd, p, n, offset, f.temp.string());
    }

    const fs::path& adopted() const { return adopted_; }

    /// Ends the stream: fsyncs and closes the last file, finishes the hashes.
    void finish() {
        if (!adopted_.empty() && ::ftruncate(files_.front().fd, static_cast<off_t>(total_)) != 0)
            throw Error(fmt::format("writing {}: cutting it to {} bytes: {}", files_.front().temp.string(), total_,
                                    util::errno_message(errno)));
        if (holes_) rehash();
        close_current();
        whole_sha256_ = rehashed_ ? *rehashed_ : whole_hash_.finish();
    }

    std::vector<File>& files() { return files_; }
    bool single() const { return split_size_ == 0; }
    const fs::path& dir() const { return dir_; }
    const std::string& name() const { return name_; }
    std::uint64_t total() const { return total_; }
    const oci::Digest& sha256() const { return whole_sha256_; }

private:
    std::vector<std::unique_ptr<util::RemoveOnSignal>> on_signal_; // temp files, removed on SIGINT/SIGTERM
    /// Opens the next temporary file; `adopt` (not empty): renamed to that name first and
    /// opened as it is, when it is still a regular file of ours with one link (else that
    /// name is removed, as any dead writer's file is, and a new file made).
    void open_next(const fs::path& adopt = {}) {
        std::string base = "." + name_;
        if (split_size_ > 0) base += fmt::format(".part{:03}", files_.size());
        base += fmt::format(".tmp-{}-", ::getpid());
        static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        std::uniform_int_distribution<int> pick(0, sizeof alphabet - 2);
        for (int attempt = 0; attempt < 100; ++attempt) {
            std::string suffix;
            for (int i = 0; i < 6; ++i) suffix += alphabet[pick(rng_)];
            fs::path temp = dir_ / (base + suffix);
            if (!adopt.empty() && files_.empty()) {
                if (::renameat2(AT_FDCWD, adopt.c_str(), AT_FDCWD, temp.c_str(), RENAME_NOREPLACE) != 0) {
                    if (errno == EEXIST) continue;
                } else if (int fd = ::open(temp.c_str(), O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC); fd >= 0) {
                    struct stat st {};
                    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == ::geteuid() && st.st_nlink == 1) {
                        files_.push_back(File{temp, fd, 0, {}});
                        on_signal_.push_back(std::make_unique<util::RemoveOnSignal>(temp));
                        adopted_ = fs::absolute(adopt);
                        return;
                    }
                    ::close(fd);
                    ::unlink(temp.c_str()); // not ours to write into: only this name goes, as for any stale file
                } else {
                    ::unlink(temp.c_str());
                }
            }
            int fd = ::open(temp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
            if (fd < 0 && errno == EEXIST) continue;
            if (fd < 0)
                throw Error(fmt::format("writing {}: cannot create a temporary file in {}: {}", out_.string(),
                                        dir_.string(), util::errno_message(errno)));
            files_.push_back(File{temp, fd, 0, {}});
            on_signal_.push_back(std::make_unique<util::RemoveOnSignal>(temp));
            if (::fchmod(fd, 0644) != 0)
                throw Error(fmt::format("writing {}: chmod: {}", temp.string(), util::errno_message(errno)));
            return;
        }
        throw Error(fmt::format("writing {}: cannot find a free temporary name in {}", out_.string(), dir_.string()));
    }

    void rehash() {
        File& f = files_.front();
        std::vector<char> buf(1u << 20);
        oci::Hasher h;
        for (std::uint64_t at = 0; at < f.size;) {
            long r = util::pread_retrying(f.fd, buf.data(), buf.size(), at);
            if (r <= 0)
                throw Error(fmt::format("writing {}: reading it back: {}", f.temp.string(),
                                        r < 0 ? util::errno_message(errno) : "it is shorter than written"));
            h.update(buf.data(), static_cast<std::size_t>(r));
            at += static_cast<std::uint64_t>(r);
        }
        rehashed_ = h.finish();
    }

    /// At the file's position, or at `at` (pwrite: the position does not move).
    static void write_all(File& f, const char* p, std::size_t n, std::optional<std::uint64_t> at = std::nullopt) {
        while (n > 0) {
            ssize_t w = at ? ::pwrite(f.fd, p, n, static_cast<off_t>(*at)) : ::write(f.fd, p, n);
            if (w < 0) {
                if (errno == EINTR) continue;
                throw Error(fmt::format("writing {}: {}", f.temp.string(), util::errno_message(errno)));
            }
            p += w;
            n -= static_cast<std::size_t>(w);
            if (at) *at += static_cast<std::uint64_t>(w);
        }
    }

    void close_current() {
        File& f = files_.back();
        if (f.fd < 0) return;
        if (::fsync(f.fd) != 0)
            throw Error(fmt::format("writing {}: fsync: {}", f.temp.string(), util::errno_message(errno)));
        int rc = ::close(f.fd);
        f.fd = -1;
        if (rc != 0) throw Error(fmt::format("writing {}: close: {}", f.temp.string(), util::errno_message(errno)));
        f.sha256 = rehashed_ ? *rehashed_ : part_hash_.finish();
    }

    fs::path out_;
    fs::path dir_;
    std::string name_;
    std::uint64_t split_size_;
    std::vector<File> files_;
    oci::Hasher part_hash_;
    oci::Hasher whole_hash_;
    oci::Digest whole_sha256_;
    std::optional<oci::Digest> rehashed_; // the one file's, read back (it has holes filled later)
    fs::path adopted_;                    // the killed writer's name of the file taken over (absolute), or empty
    bool holes_ = false;
    std::uint64_t total_ = 0;
    std::mt19937_64 rng_;
};

// ---------------------------------------------------------------------------------------

struct BundleWriter::Impl {
    fs::path out;
    WriteOptions opts;
    std::unique_ptr<Output> output;
    ZSTD_CCtx* zstd = nullptr;
    std::vector<char> zbuf;  // zstd output buffer
    std::vector<char> chunk; // add_stream buffer
    struct archive* ar = nullptr;
    std::exception_ptr pending; // thrown inside write_cb, rethrown by the caller
    bool discard = false;       // destroyed without commit: swallow libarchive's trailer
    bool failed = false;
    bool committed = false;
    std::uint64_t hole = 0; // bytes of a reserved entry's data still to skip (reserve())

    ~Impl() {
        if (ar) {
            discard = true;
            archive_write_free(ar);
        }
        if (zstd) ZSTD_freeCCtx(zstd);
    }

    void start() {
        fs::path adopt = remove_stale_temps(opts.adopt_partial && !opts.zstd && opts.split_size == 0);
        output = std::make_unique<Output>(out, opts.split_size, adopt);
        if (opts.zstd) {
            zstd = ZSTD_createCCtx();
            if (!zstd) throw Error(fmt::format("writing {}: cannot create a zstd context", out.string()));
            zstd_check(ZSTD_CCtx_setParameter(zstd, ZSTD_c_compressionLevel, opts.zstd_level), "setting the level");
            zstd_check(ZSTD_CCtx_setParameter(zstd, ZSTD_c_checksumFlag, 1), "enabling checksums");
            if (opts.zstd_workers > 0) {
                zstd_check(ZSTD_CCtx_setParameter(zstd, ZSTD_c_nbWorkers, opts.zstd_workers),
                           "setting the worker threads");
                // Jobs of 2 MiB keep the workers' buffers small (the default grows with the
                // level's window); fixed, so the output stays deterministic.
                zstd_check(ZSTD_CCtx_setParameter(zstd, ZSTD_c_jobSize, 2 << 20), "setting the job size");
            }
            zbuf.resize(ZSTD_CStreamOutSize());
        }
        ar = archive_write_new();
        if (!ar) throw Error(fmt::format("writing {}: cannot create a libarchive writer", out.string()));
        if (archive_write_set_format_pax_restricted(ar) != ARCHIVE_OK ||
            archive_write_add_filter_none(ar) != ARCHIVE_OK ||
            // A plain tar in one file is written unblocked: every header reaches the
            // output when it is written, so that the output's size is the next entry's
            // data offset (reserve()). The bytes are those of 64 KiB blocks with an
            // unpadded last block, which the rest keeps (fewer, larger writes to zstd).
            archive_write_set_bytes_per_block(ar, opts.zstd || opts.split_size ? 65536 : 0) != ARCHIVE_OK ||
            archive_write_set_bytes_in_last_block(ar, 1) != ARCHIVE_OK)
            archive_fail("setting up the tar writer");
        if (archive_write_open2(ar, this, nullptr, &Impl::write_cb, nullptr, nullptr) != ARCHIVE_OK)
            archive_fail("opening the tar writer");
    }

    /// Removes the temporary files of dead writers for `out`. `keep_one`: the largest
    /// whole-file one (not a part) is kept and returned, for Output to take over.
    fs::path remove_stale_temps(bool keep_one) {
        fs::path dir = out.parent_path().empty() ? fs::path(".") : out.parent_path();
        std::string name = out.filename().string();
        std::error_code ec;
        std::vector<std::pair<std::uint64_t, fs::path>> dead;
        for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
            std::string file = it->path().filename().string();
            pid_t pid = temp_owner(file, name);
            if (pid <= 0 || pid == ::getpid()) continue;
            if (::kill(pid, 0) != 0 && errno == ESRCH) {
                struct stat st {};
                const std::string whole_prefix = "." + name + ".tmp-"; // not ".OUT.partNNN.tmp-"
                bool whole = file.compare(0, whole_prefix.size(), whole_prefix) == 0;
                if (keep_one && whole && ::lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode))
                    dead.emplace_back(static_cast<std::uint64_t>(st.st_size), it->path());
                else
                    ::unlink(it->path().c_str());
            }
        }
        std::sort(dead.begin(), dead.end());
        fs::path keep = dead.empty() ? fs::path() : dead.back().second;
        for (std::size_t i = 0; i + 1 < dead.size(); ++i) ::unlink(dead[i].second.c_str());
        return keep;
    }

    static la_ssize_t write_cb(struct archive*, void* self, const void* buf, size_t n) {
        auto* impl = static_cast<Impl*>(self);
        if (impl->discard) return static_cast<la_ssize_t>(n);
        try {
            const char* p = static_cast<const char*>(buf);
            std::size_t left = n;
            if (impl->hole > 0) { // a reserved entry's data: libarchive's zeros become a hole
                auto take = static_cast<std::size_t>(std::min<std::uint64_t>(impl->hole, left));
                impl->output->skip(take);
                impl->hole -= take;
                p += take;
                left -= take;
            }
            if (left > 0) impl->consume(p, left, ZSTD_e_continue);
            return static_cast<la_ssize_t>(n);
        } catch (...) {
            impl->pending = std::current_exception();
            return -1;
        }
    }

    /// Tar bytes in: compressed (or not) and passed to the output.
    void consume(const char* p, std::size_t n, ZSTD_EndDirective mode) {
        if (!zstd) {
            output->write(p, n);
            return;
        }
        ZSTD_inBuffer in{p, n, 0};
        for (;;) {
            ZSTD_outBuffer zout{zbuf.data(), zbuf.size(), 0};
            std::size_t left = ZSTD_compressStream2(zstd, &zout, &in, mode);
            zstd_check(left, "compressing");
            output->write(zbuf.data(), zout.pos);
            if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size) break;
        }
    }

    void zstd_check(std::size_t rc, const char* what) const {
        if (ZSTD_isError(rc))
            throw Error(fmt::format("writing {}: zstd {}: {}", out.string(), what, ZSTD_getErrorName(rc)));
    }

    [[noreturn]] void archive_fail(const std::string& what) {
        failed = true;
        if (pending) {
            auto p = pending;
            pending = nullptr;
            try {
                std::rethrow_exception(p);
            } catch (const Error& e) {
                throw Error(wrap_message(what, e.what()));
            }
        }
        const char* msg = ar ? archive_error_string(ar) : nullptr;
        throw Error(fmt::format("{}: {}", what, msg ? msg : "libarchive failed"));
    }

    void check_usable(std::string_view what) const {
        if (committed) throw Error(fmt::format("{} {}: the bundle was already committed", what, out.string()));
        if (failed)
            throw Error(fmt::format("{} {}: the writer is unusable after an earlier error", what, out.string()));
    }

    /// Writes an entry header; `type` is AE_IFREG, AE_IFDIR or AE_IFLNK.
    void header(std::string_view path, unsigned type, unsigned mode, std::uint64_t size, std::int64_t mtime,
                std::string_view target = {}) {
        check_usable(fmt::format("adding \"{}\" to", path));
        check_entry_path(path, out);
        if (type == AE_IFLNK && (target.empty() || target.find('\0') != std::string_view::npos || !valid_utf8(target)))
            throw Error(fmt::format("adding symlink \"{}\" to {}: invalid target \"{}\"", path, out.string(), target));
        Utf8Locale utf8;
        struct archive_entry* e = archive_entry_new();
        if (!e) throw Error(fmt::format("adding \"{}\" to {}: out of memory", path, out.string()));
        std::string p(path);
        archive_entry_set_pathname_utf8(e, p.c_str());
        archive_entry_set_filetype(e, type);
        archive_entry_set_perm(e, static_cast<__LA_MODE_T>(mode & 07777));
        archive_entry_set_uid(e, 0);
        archive_entry_set_gid(e, 0);
        archive_entry_set_mtime(e, mtime < 0 ? opts.mtime : mtime, 0);
        archive_entry_set_size(e, static_cast<la_int64_t>(size));
        std::string t(target);
        if (type == AE_IFLNK) archive_entry_set_symlink_utf8(e, t.c_str());
        int rc = archive_write_header(ar, e);
        archive_entry_free(e);
        if (rc != ARCHIVE_OK) archive_fail(fmt::format("adding \"{}\" to {}", path, out.string()));
    }

    void data(std::string_view path, const char* p, std::size_t n) {
        la_ssize_t w = archive_write_data(ar, p, n);
        if (w < 0 || static_cast<std::size_t>(w) != n)
            archive_fail(fmt::format("adding \"{}\" to {}", path, out.string()));
    }
};

BundleWriter::BundleWriter(fs::path output, WriteOptions options) : impl_(std::make_unique<Impl>()) {
    impl_->out = std::move(output);
    impl_->opts = options;
    if (impl_->out.filename().empty())
        throw UsageError(fmt::format("writing bundle \"{}\": the output must name a file", impl_->out.string()));
    impl_->start();
}

BundleWriter::~BundleWriter() = default;

oci::Digest BundleWriter::add_file(std::string_view path, std::string_view data, unsigned mode, std::int64_t mtime) {
    impl_->header(path, AE_IFREG, mode, data.size(), mtime);
    std::size_t off = 0;
    while (off < data.size()) {
        std::size_t n = std::min(chunk_size, data.size() - off);
        impl_->data(path, data.data() + off, n);
        off += n;
    }
    return oci::Digest::of(data);
}

oci::Digest BundleWriter::add_stream(std::string_view path, std::uint64_t size, const ReadFn& read, unsigned mode,
                                     std::int64_t mtime) {
    impl_->header(path, AE_IFREG, mode, size, mtime);
    auto& buf = impl_->chunk;
    if (buf.size() < chunk_size) buf.resize(chunk_size);
    oci::Hasher hash;
    std::uint64_t done = 0;
    while (done < size) {
        std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(chunk_size, size - done));
        std::size_t got = 0;
        try {
            got = read(buf.data(), want);
        } catch (...) {
            impl_->failed = true; // the entry is half written
            throw;
        }
        if (got == 0) {
            impl_->failed = true;
            throw Error(fmt::format("adding \"{}\" to {}: the source ended after {} of {} bytes", path,
                                    impl_->out.string(), done, size));
        }
        if (got > want) {
            impl_->failed = true;
            throw Error(fmt::format("adding \"{}\" to {}: the source gave {} bytes when {} were asked for", path,
                                    impl_->out.string(), got, want));
        }
        hash.update(buf.data(), got);
        impl_->data(path, buf.data(), got);
        done += got;
    }
    return hash.finish();
}

bool BundleWriter::can_reserve() const {
    return !impl_->opts.zstd && impl_->opts.split_size == 0;
}

BundleWriter::Slot BundleWriter::reserve(std::string_view path, std::uint64_t size, unsigned mode, std::int64_t mtime) {
    Impl& m = *impl_;
    if (!can_reserve())
        throw Error(
            fmt::format("adding \"{}\" to {}: only a plain tar in one file has room reserved", path, m.out.string()));
    m.header(path, AE_IFREG, mode, size, mtime);
    Slot slot{m.output->total(), size};
    m.hole = size;
    if (archive_write_finish_entry(m.ar) != ARCHIVE_OK)
        m.archive_fail(fmt::format("adding \"{}\" to {}", path, m.out.string()));
    if (m.hole != 0) {
        m.failed = true;
        throw Error(fmt::format("adding \"{}\" to {}: the tar writer left {} bytes of it unaccounted", path,
                                m.out.string(), m.hole));
    }
    return slot;
}

void BundleWriter::write_at(const Slot& slot, std::uint64_t pos, const char* data, std::size_t n) {
    if (pos > slot.size || n > slot.size - pos)
        throw Error(fmt::format("writing {}: {} bytes at {} do not fit an entry of {}", impl_->out.string(), n, pos,
                                slot.size));
    impl_->output->write_at(slot.offset + pos, data, n);
}

std::size_t BundleWriter::read_at(const Slot& slot, std::uint64_t pos, char* data, std::size_t n) const {
    if (pos > slot.size) return 0;
    return impl_->output->read_at(slot.offset + pos, data,
                                  static_cast<std::size_t>(std::min<std::uint64_t>(n, slot.size - pos)));
}

fs::path BundleWriter::partial() const {
    return impl_->output->files().empty() ? fs::path() : fs::absolute(impl_->output->files().front().temp);
}

fs::path BundleWriter::adopted() const {
    return impl_->output->adopted();
}

void BundleWriter::add_directory(std::string_view path, unsigned mode, std::int64_t mtime) {
    impl_->header(path, AE_IFDIR, mode, 0, mtime);
}

void BundleWriter::add_symlink(std::string_view path, std::string_view target, std::int64_t mtime) {
    impl_->header(path, AE_IFLNK, 0777, 0, mtime, target);
}

namespace {

// Removes the file `p` (not a folder) if it is there, for a commit of `out`.
void remove_if_file(const fs::path& out, const fs::path& p) {
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0 || S_ISDIR(st.st_mode)) return;
    if (::unlink(p.c_str()) != 0 && errno != ENOENT)
        throw Error(
            fmt::format("writing {}: removing the old {}: {}", out.string(), p.string(), util::errno_message(errno)));
}

// Gives each part file its final name "OUT.partNNN" (appending each to `renamed` as soon as
// it has it) and returns the parts index that lists them.
PartsIndex rename_parts(Output& o, std::uint64_t part_size, std::vector<fs::path>& renamed) {
    auto& files = o.files();
    int width = 3;
    for (std::size_t n = files.size() - 1; n >= 1000; n /= 10) ++width;
    PartsIndex pi;
    pi.bundle = o.name();
    pi.size = o.total();
    pi.sha256 = o.sha256();
    pi.part_size = part_size;
    for (std::size_t i = 0; i < files.size(); ++i) {
        std::string final_name = part_name(o.name(), i, width);
        fs::path final_path = o.dir() / final_name;
        if (::rename(files[i].temp.c_str(), final_path.c_str()) != 0)
            throw Error(fmt::format("writing {}: renaming {}: {}", final_path.string(), files[i].temp.string(),
                                    util::errno_message(errno)));
        files[i].temp.clear();
        renamed.push_back(final_path);
        pi.parts.push_back(PartInfo{final_name, files[i].size, files[i].sha256});
    }
    return pi;
}

// Part files of an older, longer bundle under the same name: "OUT.partNNN" beside the
// parts of `pi` that `pi` does not list.
std::vector<fs::path> stale_parts(const fs::path& dir, const PartsIndex& pi) {
    std::set<std::string> names;
    for (const auto& p : pi.parts) names.insert(p.name);
    std::string prefix = pi.bundle + ".part";
    std::error_code ec;
    std::vector<fs::path> stale;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        std::string f = it->path().filename().string();
        if (f.size() > prefix.size() && f.compare(0, prefix.size(), prefix) == 0 &&
            all_digits(std::string_view(f).substr(prefix.size())) && !names.count(f))
            stale.push_back(it->path());
    }
    return stale;
}

} // namespace

WriteResult BundleWriter::commit() {
    Impl& m = *impl_;
    m.check_usable("committing");
    const fs::path& out = m.out;
    try {
        if (archive_write_close(m.ar) != ARCHIVE_OK) m.archive_fail(fmt::format("finishing {}", out.string()));
        archive_write_free(m.ar);
        m.ar = nullptr;
        if (m.zstd) m.consume(nullptr, 0, ZSTD_e_end);
        m.output->finish();
    } catch (...) {
        m.failed = true;
        throw;
    }

    Output& o = *m.output;
    auto& files = o.files();
    const fs::path& dir = o.dir();
    WriteResult result;
    result.size = o.total();
    result.sha256 = o.sha256();

    if (m.opts.split_size == 0) {
        if (::rename(files[0].temp.c_str(), out.c_str()) != 0) {
            m.failed = true;
            throw Error(fmt::format("writing {}: renaming {}: {}", out.string(), files[0].temp.string(),
                                    util::errno_message(errno)));
        }
        files[0].temp.clear();
        fsync_dir(dir);
        result.files.push_back(out);
        m.committed = true;
        return result;
    }

    // Split: drop the old index (and an old whole OUT, which would hide the new parts
    // from locate(OUT)) before any part takes its final name.
    fs::path index = dir / (o.name() + ".parts");
    std::vector<fs::path> renamed;
    try {
        remove_if_file(out, index);
        remove_if_file(out, out);
        fsync_dir(dir);
        PartsIndex pi = rename_parts(o, m.opts.split_size, renamed);
        for (const auto& p : stale_parts(dir, pi)) remove_if_file(out, p);
        util::write_file_atomic(index, pi.to_json());
        fsync_dir(dir);
        result.parts = pi.parts;
        result.files = renamed;
        result.files.push_back(index);
    } catch (...) {
        m.failed = true;
        for (const auto& p : renamed) ::unlink(p.c_str());
        throw;
    }
    m.committed = true;
    return result;
}

} // namespace aas::bundle
