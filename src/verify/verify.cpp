// verify: one streaming pass over a bundle (see verify.hpp for the order of the checks).

#include "aas_bundle/verify/verify.hpp"

#include "hashpool.hpp"

#include "aas_bundle/bundle/reader.hpp"
#include "aas_bundle/oci/manifest.hpp"
#include "aas_bundle/oci/media_types.hpp"
#include "aas_bundle/oci/walk.hpp"
#include "aas_bundle/signing/signing.hpp"
#include "aas_bundle/util/error.hpp"
#include "aas_bundle/util/fs.hpp"
#include "aas_bundle/util/strings.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <set>
#include <thread>

namespace aas::verify {
namespace fs = std::filesystem;
using bundle::FatalError;
using bundle::TarEntry;
using bundle::TarReader;

namespace {

constexpr std::size_t chunk_size = 512u << 10;
constexpr std::size_t chunk_count = 32;             // 16 MiB of buffers
constexpr std::uint64_t max_signature = 1024;
constexpr std::uint64_t max_manifest = 4u << 20;    // one manifest, index or index.json
constexpr std::uint64_t max_retained = 48u << 20;   // all of them together
constexpr std::uint64_t entry_overhead = 8u << 10;  // headers (pax included) allowed per entry
constexpr std::string_view blob_prefix = "images/blobs/sha256/";

// Integrity-only reading (no key): the tar stream may be at most this many times the
// archive bytes read so far, plus the slack; sizes from an unauthenticated bundle.json
// never bound anything alone.
constexpr std::uint64_t unauthenticated_ratio = 128;
constexpr std::uint64_t unauthenticated_slack = 16u << 20;

std::uint64_t round512(std::uint64_t n) { return n > UINT64_MAX - 511 ? UINT64_MAX : (n + 511) / 512 * 512; }
std::uint64_t sat_add(std::uint64_t a, std::uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

/// Thrown when a key was given and bundle.json's signature does not verify: the pass
/// stops there (the signature problem is in the report).
struct Untrusted {};

bool is_hex64(std::string_view s) {
    return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

std::string mode_str(unsigned m) { return fmt::format("{:04o}", m & 07777u); }

std::string users(const std::vector<std::string>& refs) {
    if (refs.empty()) return "no image";
    if (refs.size() == 1) return refs[0];
    if (refs.size() == 2) return refs[0] + " and " + refs[1];
    return fmt::format("{}, {} and {} more", refs[0], refs[1], refs.size() - 2);
}

bool is_manifest_type(std::string_view mt) {
    return oci::media_type::is_image_manifest(mt) || oci::media_type::is_index(mt);
}

/// Writes accepted entries under Options::extract_to while they are checked. Every path is
/// created through util::SafeTree (no symlink is ever followed); symlinks are created only
/// at the end, once the whole tree has been checked; modes lose setuid, setgid and sticky.
class Extractor {
public:
    explicit Extractor(const Options& o) : o_(o) {}
    ~Extractor() {
        if (fd_ >= 0) {
            ::close(fd_);
            ::unlinkat(dir_, partial_.c_str(), 0);
        }
        if (dir_ >= 0) ::close(dir_);
    }
    bool wants(const std::string& name) const { return !o_.extract_to.empty() && (!o_.extract || o_.extract(name)); }

    void dir(const std::string& name, unsigned mode) {
        tree().mkdirs(name);
        dirs_.emplace_back(name, mode);
    }
    void symlink(const std::string& name, const std::string& target) { links_.emplace_back(name, target); }
    void open(const std::string& name, unsigned mode) {
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
    bool is_open() const { return fd_ >= 0; }
    void write(const char* p, std::size_t n) {
        while (n > 0) {
            ssize_t w = ::write(fd_, p, n);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) fail("writing");
            p += w;
            n -= static_cast<std::size_t>(w);
        }
    }
    void close() {
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
    /// After the whole pass: when `tree_ok` (every symlink was resolved against the final
    /// tree and stays inside k8s/), the symlinks; then folder modes, last, so that folders
    /// stay writable while they are filled.
    void finish(bool tree_ok) {
        if (o_.extract_to.empty()) return;
        if (tree_ok)
            for (const auto& [name, target] : links_) tree().symlink(name, target);
        for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) tree().chmod(it->first, (it->second | 0700u) & 0777u);
    }

private:
    util::SafeTree& tree() {
        if (!tree_) {
            fs::create_directories(o_.extract_to); // the caller's folder, trusted
            tree_ = std::make_unique<util::SafeTree>(o_.extract_to);
        }
        return *tree_;
    }
    [[noreturn]] void fail(const char* what) {
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
    const Options& o_;
    std::unique_ptr<util::SafeTree> tree_;
    int fd_ = -1;
    int dir_ = -1;
    unsigned mode_ = 0644;
    std::string name_, base_, partial_;
    std::vector<std::pair<std::string, unsigned>> dirs_;
    std::vector<std::pair<std::string, std::string>> links_;
};

/// One entry whose content is being hashed.
struct Hashed {
    std::size_t seq;
    detail::HashPool::Job* job;
    bool blob;
    std::string subject; // digest or path
    std::string label;   // "blob sha256:… (layer of …)" or the path
    oci::Digest expect;
    bool retain = false;
    std::string data;    // retained bytes (manifests, index.json)
};

class Checker {
public:
    Checker(Report& rep, std::string name, const Options& o) : rep_(rep), name_(std::move(name)), o_(o), out_(o) {}

    void run(const bundle::ReadFn& read, const bundle::SkipFn& skip = {});

private:
    void add(std::size_t seq, std::string kind, std::string subject, std::string message) {
        problems_.push_back({seq, {std::move(kind), std::move(subject), std::move(message)}});
    }
    std::string blob_label(const bundle::BlobRecord& b) const {
        return fmt::format("blob {} ({} of {})", b.digest.str(), b.kind, users(b.images));
    }
    std::string read_small(TarReader& tr, std::uint64_t limit);
    void header_entries(TarReader& tr, TarEntry& pending, bool& have_pending);
    void check_signature(const std::string& json, const std::optional<std::string>& sig);
    void index_doc();
    void entry(TarReader& tr, const TarEntry& e);
    void hash(TarReader& tr, const TarEntry& e, bool blob, std::string subject, std::string label,
              oci::Digest expect, bool retain, unsigned mode,
              const std::function<void(const char*, std::size_t)>& sink = {});
    void finish_hashes();
    void completeness();
    void layout();
    void tree_check();
    std::string resolve(const std::string& link, int& hops, bool& escaped) const;

    Report& rep_;
    std::string name_;
    const Options& o_;
    Extractor out_;
    std::vector<std::pair<std::size_t, Problem>> problems_;
    std::size_t seq_ = 0;
    std::unique_ptr<detail::HashPool> pool_;
    std::deque<Hashed> hashed_;
    std::uint64_t retained_ = 0;

    const bundle::BundleDoc* doc_ = nullptr;
    std::map<oci::Digest, const bundle::BlobRecord*> blobs_;
    std::map<oci::Digest, const bundle::AssumedRecord*> assumed_; // a delta's blobs not stored
    std::map<std::string, const bundle::FileRecord*> files_;
    std::set<oci::Digest> blobs_seen_;
    std::set<std::string> files_seen_;
    std::map<std::string, std::uint64_t> names_; // name -> offset, for duplicates
    /// Accepted entries (listed, of the listed type): type and symlink target, the tree
    /// that symlinks are resolved against.
    std::map<std::string, std::pair<TarEntry::Type, std::string>> tree_;
    std::map<oci::Digest, std::string> manifests_; // verified manifest bytes
    std::optional<std::string> index_json_;         // verified images/index.json
    std::set<oci::Digest> blobs_ok_;                // present with the right content
    bundle::Decoder* decoder_ = nullptr;
    std::uint64_t tr_limit_base_ = 0;
};

std::string Checker::read_small(TarReader& tr, std::uint64_t limit) {
    std::string out;
    const char* p;
    while (std::size_t n = tr.read_block(&p)) {
        if (out.size() + n > limit) throw FatalError("entry grew past its header's size"); // libarchive prevents it
        out.append(p, n);
    }
    return out;
}

void Checker::check_signature(const std::string& json, const std::optional<std::string>& sig) {
    if (o_.key.empty()) {
        rep_.signature = sig ? Signature::not_checked : Signature::unsigned_;
        return;
    }
    std::string key = o_.key.filename().string();
    if (!sig) {
        rep_.signature = Signature::unsigned_;
        add(0, "signature", "bundle.json.sig",
            fmt::format("the bundle is unsigned (no bundle.json.sig): it cannot be authenticated with key {}", key));
        return;
    }
    if (signing::verify(o_.key, json, *sig)) {
        rep_.signature = Signature::valid;
        return;
    }
    rep_.signature = Signature::invalid;
    add(0, "signature", "bundle.json.sig", fmt::format("signature does not match key {}", key));
}

void Checker::header_entries(TarReader& tr, TarEntry& pending, bool& have_pending) {
    TarEntry e;
    if (!tr.next(e)) throw FatalError(fmt::format("{}: an empty tar archive, not a bundle (no bundle.json)", name_));
    names_[e.name] = e.offset;
    if (e.name != bundle::bundle_json_path || e.type != TarEntry::Type::file)
        throw FatalError(fmt::format("{}: the first entry is \"{}\", not bundle.json: not a bundle, or a damaged one",
                                     name_, e.name));
    if (e.size > bundle::max_bundle_json)
        throw FatalError(fmt::format("{}: bundle.json is {} bytes, more than the limit of {}; refused", name_, e.size,
                                     bundle::max_bundle_json));
    std::string json = read_small(tr, e.size);
    rep_.bundle_json_digest = oci::Digest::of(json);

    std::optional<std::string> sig;
    have_pending = tr.next(pending);
    if (have_pending && pending.name == bundle::signature_path) {
        names_[pending.name] = pending.offset;
        have_pending = false;
        if (pending.type != TarEntry::Type::file || pending.size > max_signature) {
            add(1, "refused", "bundle.json.sig",
                fmt::format("bundle.json.sig is a {} of {} bytes, not a signature; refused", pending.type_name,
                            pending.size));
            tr.skip();
        } else {
            sig = read_small(tr, pending.size);
        }
    }
    check_signature(json, sig);
    bool authenticated = rep_.signature == Signature::valid;
    if (!o_.key.empty() && !authenticated) {
        // Trust order: nothing past an unauthenticated bundle.json is read, hashed or written.
        try {
            auto doc = bundle::BundleDoc::parse(json, name_ + ": bundle.json");
            rep_.signer = doc.signer;
            if (!doc.signer.empty() && !rep_.key_fingerprint.empty() && doc.signer != rep_.key_fingerprint)
                for (auto& [s, p] : problems_)
                    if (p.kind == "signature")
                        p.message += fmt::format(" (bundle.json names signer {}; {} is {})",
                                                 util::escape_control(doc.signer), o_.key.filename().string(),
                                                 rep_.key_fingerprint);
        } catch (const Error&) {
        }
        for (auto& [s, p] : problems_)
            if (p.kind == "signature") p.message += "; nothing after bundle.json was read";
        throw Untrusted();
    }

    try {
        rep_.doc = bundle::BundleDoc::parse(json, name_ + ": bundle.json");
    } catch (const Error& ex) {
        throw FatalError(fmt::format("{} (nothing else can be checked without it)", ex.what()));
    }
    doc_ = &*rep_.doc;
    tr_limit_base_ = decoder_->out_bytes();
    rep_.signer = doc_->signer;
    for (auto& fp : bundle::field_problems(*doc_)) add(1, "field", fp.field, fp.message);
    index_doc();
    if (!authenticated) decoder_->set_ratio_cap(unauthenticated_ratio, unauthenticated_slack);
    if (o_.on_header) o_.on_header(rep_);
}

void Checker::index_doc() {
    std::uint64_t limit = tr_limit_base_;
    for (const auto& b : doc_->blobs) {
        if (!blobs_.emplace(b.digest, &b).second)
            add(2, "layout", b.digest.str(), fmt::format("bundle.json lists blob {} twice", b.digest.str()));
        limit = sat_add(limit, entry_overhead + round512(static_cast<std::uint64_t>(b.size)));
    }
    for (const auto& a : doc_->assumed) assumed_.emplace(a.digest, &a); // unique: BundleDoc::parse checks
    for (const auto& f : doc_->files) {
        if (!files_.emplace(f.path, &f).second)
            add(2, "layout", f.path, fmt::format("bundle.json lists {} twice", f.path));
        limit = sat_add(limit, sat_add(entry_overhead + f.path.size() + f.target.size(), round512(f.size)));
    }
    limit += 1u << 20; // end of archive, block padding
    decoder_->set_limit(limit, "that bundle.json accounts for");
}

void Checker::hash(TarReader& tr, const TarEntry& e, bool blob, std::string subject, std::string label,
                   oci::Digest expect, bool retain, unsigned mode,
                   const std::function<void(const char*, std::size_t)>& sink) {
    if (out_.wants(e.name)) out_.open(e.name, mode);
    Hashed& h = hashed_.emplace_back();
    h.seq = seq_;
    h.job = pool_->start();
    h.blob = blob;
    h.subject = std::move(subject);
    h.label = std::move(label);
    h.expect = std::move(expect);
    if (retain && e.size > max_manifest) {
        add(seq_, "refused", h.subject,
            fmt::format("{}: a JSON document of {} bytes, more than the limit of {}; not read as one", h.label, e.size,
                        max_manifest));
        retain = false;
    }
    if (retain && retained_ + e.size > max_retained) {
        add(seq_, "refused", h.subject,
            fmt::format("{}: the layout's manifests add up to more than {} bytes; not read as one", h.label,
                        max_retained));
        retain = false;
    }
    h.retain = retain;
    if (retain) retained_ += e.size;
    char* buf = nullptr;
    std::size_t fill = 0;
    const char* p;
    while (std::size_t n = tr.read_block(&p)) {
        if (h.retain) h.data.append(p, n);
        if (out_.is_open()) out_.write(p, n);
        if (sink) sink(p, n);
        while (n > 0) {
            if (!buf) buf = pool_->buffer();
            std::size_t take = std::min(n, pool_->chunk_size() - fill);
            std::memcpy(buf + fill, p, take);
            fill += take;
            p += take;
            n -= take;
            if (fill == pool_->chunk_size()) {
                pool_->submit(h.job, buf, fill, false);
                buf = nullptr;
                fill = 0;
            }
        }
    }
    pool_->submit(h.job, buf, fill, true);
    if (sink) sink(nullptr, 0);
    if (out_.is_open()) out_.close();
    rep_.bytes_hashed += e.size;
}

void Checker::entry(TarReader& tr, const TarEntry& e) {
    auto at = fmt::format("at byte {} of the tar stream", e.offset);
    if (auto why = bundle::refusal(e); !why.empty()) {
        add(seq_, "refused", e.name, fmt::format("entry \"{}\" ({}) refused: {}", e.name, at, why));
        tr.skip();
        return;
    }
    if (auto [it, fresh] = names_.emplace(e.name, e.offset); !fresh) {
        add(seq_, "refused", e.name,
            fmt::format("entry \"{}\" ({}) refused: a second entry with this name (the first is at byte {})", e.name,
                        at, it->second));
        tr.skip();
        return;
    }
    std::string_view name = e.name;
    if (name.substr(0, blob_prefix.size()) == blob_prefix && is_hex64(name.substr(blob_prefix.size()))) {
        auto d = oci::Digest::parse("sha256:" + std::string(name.substr(blob_prefix.size())));
        auto it = blobs_.find(d);
        if (it == blobs_.end()) {
            add(seq_, "unlisted", d.str(),
                fmt::format("blob {}: in the archive but not listed in bundle.json (added after packing)", d.str()));
            tr.skip();
            return;
        }
        const auto& b = *it->second;
        blobs_seen_.insert(d);
        ++rep_.blobs_checked;
        if (e.type != TarEntry::Type::file) {
            add(seq_, "blob", d.str(), fmt::format("{}: a {}, expected a file", blob_label(b), e.type_name));
            tr.skip();
            return;
        }
        auto want = static_cast<std::uint64_t>(b.size);
        if (e.size != want) {
            add(seq_, "blob", d.str(),
                fmt::format("{}: size {}, expected {}{}", blob_label(b), e.size, want,
                            e.size > want ? " (larger than bundle.json says; not read)" : " (truncated)"));
            tr.skip();
            return;
        }
        bool retain = b.kind == "index" || b.kind == "manifest" || is_manifest_type(b.media_type);
        if (!retain && o_.defer_blobs && decoder_->can_skip()) {
            // load reads it at this offset later, hashing every byte (verify.hpp).
            rep_.deferred.push_back({d, e.data_offset, e.size});
            tr.skip();
            return;
        }
        std::function<void(const char*, std::size_t)> sink;
        if (!retain && o_.on_blob) sink = o_.on_blob(b);
        hash(tr, e, true, d.str(), blob_label(b), d, retain, 0644, sink);
        return;
    }
    auto it = files_.find(e.name);
    if (it == files_.end()) {
        add(seq_, "unlisted", e.name,
            fmt::format("{}: a {} in the archive but not listed in bundle.json (added after packing)", e.name,
                        e.type_name));
        tr.skip();
        return;
    }
    const auto& f = *it->second;
    files_seen_.insert(f.path);
    ++rep_.files_checked;
    std::string want_type = f.type == "dir" ? "folder" : f.type;
    if (e.type_name != want_type) {
        add(seq_, "file", f.path, fmt::format("{}: modified (a {}, expected a {})", f.path, e.type_name, want_type));
        tr.skip();
        return;
    }
    if (f.type != "symlink" && e.mode != f.mode)
        add(seq_, "file", f.path, fmt::format("{}: mode {}, expected {}", f.path, mode_str(e.mode), mode_str(f.mode)));
    if (f.type != "symlink" && (e.mode & 07000u)) {
        add(seq_, "refused", f.path,
            fmt::format("entry \"{}\" ({}) refused: mode {} sets setuid, setgid or sticky bits", f.path, at,
                        mode_str(e.mode)));
        tr.skip();
        return;
    }
    tree_[e.name] = {e.type, e.target};
    if (f.type == "symlink") {
        if (e.target != f.target)
            add(seq_, "file", f.path,
                fmt::format("{}: modified (symlink to \"{}\", expected \"{}\")", f.path, e.target, f.target));
        else if (out_.wants(e.name))
            out_.symlink(e.name, e.target);
        tr.skip();
        return;
    }
    if (f.type == "dir") {
        if (out_.wants(e.name)) out_.dir(e.name, f.mode);
        tr.skip();
        return;
    }
    if (e.size != f.size) {
        add(seq_, "file", f.path,
            fmt::format("{}: modified (size {}, expected {}){}", f.path, e.size, f.size,
                        e.size > f.size ? "; not read" : ""));
        tr.skip();
        return;
    }
    hash(tr, e, false, f.path, f.path, f.sha256, f.path == bundle::index_json_path, f.mode);
}

void Checker::finish_hashes() {
    pool_->wait();
    for (auto& h : hashed_) {
        if (!h.job->complete) continue; // the pass stopped inside it
        if (h.job->result != h.expect) {
            if (h.blob)
                add(h.seq, "blob", h.subject, fmt::format("{}: content hash mismatch (sha256 {})", h.label,
                                                          h.job->result.str()));
            else
                add(h.seq, "file", h.subject,
                    fmt::format("{}: modified (same size, but sha256 {}, expected {})", h.label, h.job->result.str(),
                                h.expect.str()));
            continue;
        }
        if (h.blob) blobs_ok_.insert(h.expect);
        if (!h.retain) continue;
        if (h.blob)
            manifests_[h.expect] = std::move(h.data);
        else
            index_json_ = std::move(h.data);
    }
}

void Checker::completeness() {
    constexpr std::size_t last = SIZE_MAX;
    if (rep_.stopped_on_request) { // the k8s folder whole; blobs and the layout were not read
        for (const auto& f : doc_->files)
            if ((f.path == bundle::k8s_dir || f.path.rfind("k8s/", 0) == 0) && !files_seen_.count(f.path))
                add(last, "missing", f.path,
                    fmt::format("{}: missing where the k8s folder ends (the reading stopped there)", f.path));
        tree_check();
        return;
    }
    if (rep_.stopped) {
        std::size_t nb = 0, nf = 0;
        for (const auto& [d, b] : blobs_) nb += !blobs_seen_.count(d);
        for (const auto& [p, f] : files_) nf += !files_seen_.count(p);
        if (nb + nf > 0)
            add(last, "archive", name_,
                fmt::format("{} blobs and {} files listed in bundle.json come after the point where reading stopped "
                            "and were not checked",
                            nb, nf));
        return;
    }
    for (const auto& [d, b] : blobs_)
        if (!blobs_seen_.count(d)) add(last, "missing", d.str(), fmt::format("{}: missing", blob_label(*b)));
    for (const auto& f : doc_->files)
        if (!files_seen_.count(f.path)) add(last, "missing", f.path, fmt::format("{}: missing", f.path));
    tree_check();
    layout();
}

// Where the symlink `link` leads in the final tree: its target taken component by
// component from the link's folder, every symlink met on the way expanded in turn (as the
// kernel does), at most 40 of them. `escaped` is set when the walk climbs above the
// bundle's root; the result is the path reached ("" for the root).
std::string Checker::resolve(const std::string& link, int& hops, bool& escaped) const {
    std::vector<std::string> cur = util::split(link, '/');
    cur.pop_back(); // the link's folder
    auto joined = [&] {
        std::string out;
        for (const auto& c : cur) out += (out.empty() ? "" : "/") + c;
        return out;
    };
    std::function<void(const std::string&)> walk = [&](const std::string& target) {
        if (!target.empty() && target.front() == '/') {
            escaped = true;
            return;
        }
        for (const auto& c : util::split(target, '/')) {
            if (escaped || hops > 40) return;
            if (c.empty() || c == ".") continue;
            if (c == "..") {
                if (cur.empty()) {
                    escaped = true;
                    return;
                }
                cur.pop_back();
                continue;
            }
            cur.push_back(c);
            auto it = tree_.find(joined());
            if (it != tree_.end() && it->second.first == TarEntry::Type::symlink) {
                if (++hops > 40) return;
                cur.pop_back();
                walk(it->second.second);
            }
        }
    };
    auto it = tree_.find(link);
    walk(it == tree_.end() ? std::string() : it->second.second);
    return joined();
}

// Symlinks checked against the whole tree, as extraction will leave it: no entry lies
// beneath a symlink, and every symlink, followed through the others, ends inside k8s/.
void Checker::tree_check() {
    for (const auto& [name, node] : tree_) {
        if (node.first != TarEntry::Type::symlink) continue;
        auto below = tree_.lower_bound(name + "/");
        if (below != tree_.end() && below->first.rfind(name + "/", 0) == 0)
            add(SIZE_MAX, "refused", below->first,
                fmt::format("entry \"{}\" refused: its path goes through the symlink \"{}\" (-> \"{}\")",
                            below->first, name, node.second));
        int hops = 0;
        bool escaped = false;
        auto to = resolve(name, hops, escaped);
        if (hops > 40)
            add(SIZE_MAX, "refused", name,
                fmt::format("entry \"{}\" refused: the symlink (-> \"{}\") does not resolve: more than 40 symlinks "
                            "in a row (a loop)",
                            name, node.second));
        else if (escaped || (to != bundle::k8s_dir && to.rfind("k8s/", 0) != 0))
            add(SIZE_MAX, "refused", name,
                fmt::format("entry \"{}\" refused: the symlink (-> \"{}\"), followed through the other symlinks, "
                            "leads to {}, outside k8s/",
                            name, node.second,
                            escaped ? "above the bundle's root" : to.empty() ? "the bundle's root" : "\"" + to + "\""));
    }
}

void Checker::layout() {
    constexpr std::size_t last = SIZE_MAX;
    auto fail = [&](const std::string& subject, const std::string& msg) { add(last, "layout", subject, msg); };
    // Every image's top manifest is a blob of the bundle.
    for (const auto& img : doc_->images)
        if (!blobs_.count(img.digest))
            fail(img.digest.str(), fmt::format("image {}: its manifest {} is not among bundle.json's blobs", img.ref,
                                               img.digest.str()));
    if (!index_json_) return; // missing or modified: reported already
    nlohmann::json index = nlohmann::json::parse(*index_json_, nullptr, false);
    std::string where(bundle::index_json_path);
    if (index.is_discarded() || !index.is_object() || !index.contains("manifests") || !index["manifests"].is_array()) {
        fail(where, where + ": not an OCI image index");
        return;
    }
    const auto& entries = index["manifests"];
    if (entries.size() != doc_->images.size())
        fail(where, fmt::format("{}: {} entries, but bundle.json lists {} images", where, entries.size(),
                                doc_->images.size()));

    struct Todo {
        oci::Descriptor d;
        std::string ref;
        std::string parent;
    };
    std::deque<Todo> todo;
    for (std::size_t i = 0; i < entries.size(); ++i) {
        const auto& e = entries[i];
        std::string label = fmt::format("{}: entry {}", where, i + 1);
        if (!e.is_object() || !e.contains("digest") || !e["digest"].is_string() || !e.contains("mediaType") ||
            !e["mediaType"].is_string() || !e.contains("size") || !e["size"].is_number_integer()) {
            fail(where, label + ": not a descriptor (digest, mediaType and size)");
            continue;
        }
        oci::Descriptor d;
        try {
            d.digest = oci::Digest::parse(e["digest"].get<std::string>());
        } catch (const Error& ex) {
            fail(where, fmt::format("{}: {}", label, ex.what()));
            continue;
        }
        d.media_type = e["mediaType"].get<std::string>();
        d.size = e["size"].get<std::int64_t>();
        std::string ref;
        if (e.contains("annotations") && e["annotations"].is_object()) {
            const auto& a = e["annotations"];
            if (a.contains("org.opencontainers.image.ref.name") && a["org.opencontainers.image.ref.name"].is_string())
                ref = a["org.opencontainers.image.ref.name"].get<std::string>();
        }
        if (i < doc_->images.size()) {
            const auto& img = doc_->images[i];
            if (ref != img.ref)
                fail(where, fmt::format("{} names \"{}\", but bundle.json's image {} is {}", label, ref, i + 1, img.ref));
            if (d.digest != img.digest || d.media_type != img.media_type || d.size != img.size)
                fail(where, fmt::format("{} ({}) is {} {} of {} bytes, but bundle.json says {} {} of {} bytes", label,
                                        img.ref, d.media_type, d.digest.str(), d.size, img.media_type,
                                        img.digest.str(), img.size));
        }
        todo.push_back({d, ref.empty() ? label : ref, where});
    }

    // Each image's graph through oci::visit (the walk pack, copy and load use), every
    // descriptor checked once: listed with its size, manifests read from the verified bytes.
    std::set<oci::Digest> seen;
    auto kind_of = [](const std::string& media_type, bool as_manifest) -> std::string {
        return as_manifest ? (oci::media_type::is_index(media_type) ? "index" : "manifest") : "blob";
    };
    auto parent_of = [&](const oci::RawManifest& m) {
        return fmt::format("{} {}", kind_of(m.media_type, true), m.digest.str());
    };
    std::set<oci::Digest> assumed_used; // assumed blobs some manifest references
    // True when `d` is listed (its size checked); a foreign layer may be absent.
    auto check = [&](const oci::Descriptor& d, const std::string& ref, const std::string& parent, bool as_manifest) {
        std::string label = fmt::format("blob {} ({} of {})", d.digest.str(), kind_of(d.media_type, as_manifest), ref);
        auto listed = blobs_.find(d.digest);
        if (listed == blobs_.end()) {
            // A delta: a config or layer its base says the target registry holds.
            if (auto a = assumed_.find(d.digest); a != assumed_.end() && !as_manifest) {
                assumed_used.insert(d.digest);
                if (a->second->size != d.size)
                    fail(d.digest.str(), fmt::format("{}: {} gives size {}, bundle.json's assumed entry {}", label,
                                                     parent, d.size, a->second->size));
                return false;
            }
            if (!oci::is_foreign(d))
                fail(d.digest.str(), fmt::format("{}: missing: {} references it, but it is neither in bundle.json "
                                                 "nor in the archive",
                                                 label, parent));
            return false;
        }
        if (listed->second->size != d.size)
            fail(d.digest.str(), fmt::format("{}: {} gives size {}, bundle.json {}", label, parent, d.size,
                                             listed->second->size));
        return true;
    };
    // The verified bytes of the manifest `d`, or nullopt (missing or damaged: reported).
    auto bytes_of = [&](const oci::Descriptor& d, const std::string& ref,
                        const std::string& parent) -> std::optional<oci::RawManifest> {
        auto m = manifests_.find(d.digest);
        if (m != manifests_.end()) return oci::RawManifest{m->second, d.media_type, d.digest};
        if (blobs_ok_.count(d.digest)) { // present and whole, but not read as a manifest
            const auto& listed = *blobs_.at(d.digest);
            fail(d.digest.str(), fmt::format("blob {} ({} of {}): {} references it as a {}, but bundle.json lists it "
                                             "as a {} ({})",
                                             d.digest.str(), kind_of(d.media_type, true), ref, parent,
                                             kind_of(d.media_type, true), listed.kind, listed.media_type));
        }
        return std::nullopt;
    };
    for (const auto& t : todo) {
        if (!seen.insert(t.d.digest).second) continue;
        bool as_manifest = is_manifest_type(t.d.media_type);
        if (!check(t.d, t.ref, t.parent, as_manifest) || !as_manifest) continue;
        auto top = bytes_of(t.d, t.ref, t.parent);
        if (!top) continue;
        oci::Visitor v;
        v.child = [&](const oci::Descriptor& c, const oci::RawManifest& parent) -> std::optional<oci::RawManifest> {
            if (!seen.insert(c.digest).second) return std::nullopt;
            bool child_manifest = is_manifest_type(c.media_type);
            if (!check(c, t.ref, parent_of(parent), child_manifest) || !child_manifest) return std::nullopt;
            return bytes_of(c, t.ref, parent_of(parent));
        };
        v.blob = [&](const oci::Descriptor& b, const oci::RawManifest& m) {
            if (seen.insert(b.digest).second) check(b, t.ref, parent_of(m), false);
        };
        v.bad = [&](const oci::RawManifest& m, const std::string& why) {
            fail(m.digest.str(), fmt::format("blob {} ({} of {}): not a valid manifest: {}", m.digest.str(),
                                             kind_of(m.media_type, true), t.ref, why));
        };
        oci::visit(*top, v);
    }
    for (const auto& a : doc_->assumed)
        if (!assumed_used.count(a.digest))
            fail(a.digest.str(), fmt::format("assumed blob {}: no manifest of the bundle references it", a.digest.str()));
}

void Checker::run(const bundle::ReadFn& read, const bundle::SkipFn& skip) {
    unsigned workers = o_.workers ? o_.workers : std::max(1u, std::thread::hardware_concurrency());
    std::size_t chunks = o_.buffer_bytes ? std::max<std::size_t>(4, o_.buffer_bytes / chunk_size) : chunk_count;
    pool_ = std::make_unique<detail::HashPool>(workers, chunk_size, chunks);
    auto counted = [&](char* out, std::size_t n) -> std::size_t {
        std::size_t got = read(out, n);
        rep_.archive_bytes += got;
        if (o_.progress && got) o_.progress(got);
        return got;
    };
    std::unique_ptr<TarReader> tr;
    bool untrusted = false;
    try {
        bundle::SkipFn counted_skip;
        if (skip)
            counted_skip = [&](std::uint64_t n) {
                if (!skip(n)) return false;
                rep_.archive_bytes += n;
                if (o_.progress) o_.progress(n);
                return true;
            };
        tr = std::make_unique<TarReader>(counted, name_, counted_skip);
        decoder_ = &tr->decoder();
        decoder_->set_limit(bundle::max_bundle_json + max_signature + 64 * entry_overhead,
                            "allowed before bundle.json is read");
        TarEntry pending;
        bool have_pending = false;
        header_entries(*tr, pending, have_pending);
        seq_ = 2;
        auto stop = [&](const TarEntry& e) {
            if (o_.stop_before && o_.stop_before(e.name)) rep_.stopped_on_request = true;
            return rep_.stopped_on_request;
        };
        if (have_pending && !stop(pending)) {
            entry(*tr, pending);
            ++seq_;
        }
        if (!rep_.stopped_on_request)
            for (TarEntry e; tr->next(e); ++seq_) {
                if (stop(e)) break;
                entry(*tr, e);
            }
        if (rep_.stopped_on_request) {
            // what follows is not read
        } else if (auto junk = tr->drain())
            add(seq_, "archive", name_,
                fmt::format("{}: data follows the end of the tar archive, from byte {} of the tar stream (appended "
                            "to the bundle; only zero padding may follow)",
                            name_, *junk));
    } catch (const Untrusted&) {
        untrusted = true;
        rep_.stopped = true;
    } catch (const bundle::PartError& e) {
        add(seq_, "part", name_, e.what());
        rep_.stopped = true;
    } catch (const FatalError& e) {
        add(seq_, "archive", name_, e.what());
        rep_.stopped = true;
    }
    if (decoder_) rep_.tar_bytes = decoder_->out_bytes();
    finish_hashes();
    if (doc_ && !untrusted) completeness();
    out_.finish(problems_.empty());
    rep_.manifests = std::move(manifests_);
    std::stable_sort(problems_.begin(), problems_.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [s, p] : problems_) rep_.problems.push_back(std::move(p));
}

} // namespace

namespace {

/// Reads a file with plain read(2), for inspect and for the parts left after a failure.
class FileIn {
public:
    explicit FileIn(const fs::path& p) : path_(p) {
        fd_ = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd_ < 0) err_ = errno;
    }
    ~FileIn() {
        if (fd_ >= 0) ::close(fd_);
    }
    FileIn(const FileIn&) = delete;
    FileIn& operator=(const FileIn&) = delete;
    int error() const { return err_; }
    std::size_t read(char* out, std::size_t n) {
        for (;;) {
            ssize_t r = ::read(fd_, out, n);
            if (r >= 0) return static_cast<std::size_t>(r);
            if (errno != EINTR) throw Error(fmt::format("reading {}: {}", path_.string(), util::errno_message(errno)));
        }
    }

private:
    fs::path path_;
    int fd_ = -1;
    int err_ = 0;
};

std::string part_label(const bundle::PartsIndex& pi, std::size_t k) {
    return fmt::format("part {} of {} ({})", k + 1, pi.parts.size(), pi.parts[k].name);
}

/// After the reader stopped at a bad part: checks every part from `first` on, so that the
/// report names every part to copy again, and recognises parts that were swapped.
void check_remaining_parts(const bundle::BundleLocation& loc, std::size_t first, Report& rep) {
    const auto& pi = *loc.parts;
    fs::path dir = loc.index.parent_path().empty() ? fs::path(".") : loc.index.parent_path();
    std::vector<char> buf(1u << 20);
    for (std::size_t k = first; k < pi.parts.size(); ++k) {
        const auto& p = pi.parts[k];
        FileIn in(dir / p.name);
        std::string problem;
        oci::Hasher h;
        std::uint64_t size = 0;
        if (in.error() == ENOENT) {
            problem = fmt::format("{} missing", part_label(pi, k));
        } else if (in.error() != 0) {
            problem = fmt::format("{}: cannot open: {}", part_label(pi, k), util::errno_message(in.error()));
        } else {
            while (std::size_t n = in.read(buf.data(), buf.size())) {
                h.update(buf.data(), n);
                size += n;
            }
            auto got = h.finish();
            std::string swapped;
            for (std::size_t j = 0; j < pi.parts.size(); ++j)
                if (j != k && pi.parts[j].sha256 == got && pi.parts[j].size == size)
                    swapped = fmt::format(" it holds the bytes of {}: the parts were swapped or renamed",
                                          part_label(pi, j));
            if (k == first) { // reported by the reader already: add what was learnt
                if (!swapped.empty())
                    for (auto& pr : rep.problems)
                        if (pr.kind == "part" && pr.message.find(part_label(pi, k)) != std::string::npos)
                            pr.message += ";" + swapped;
                continue;
            }
            if (size != p.size)
                problem = fmt::format("{}: size {}, expected {}", part_label(pi, k), size, p.size);
            else if (got != p.sha256)
                problem = fmt::format("{}: sha256 mismatch ({})", part_label(pi, k),
                                      swapped.empty() ? "the part is damaged or is not from this bundle"
                                                      : swapped.substr(1));
        }
        if (k == first) continue;
        if (!problem.empty()) rep.problems.push_back({"part", p.name, problem});
    }
}

} // namespace

namespace {

Report verify_with(const bundle::ReadFn& read, const bundle::SkipFn& skip, const std::string& name, const Options& o) {
    Report rep;
    rep.bundle = name;
    if (!o.key.empty()) {
        std::error_code ec;
        if (!fs::is_regular_file(o.key, ec))
            throw UsageError(fmt::format("--key {}: no such file (give the public key NAME.pub that aas-bundle "
                                         "keygen wrote)",
                                         o.key.string()));
        try {
            rep.key_fingerprint = signing::public_fingerprint(o.key);
        } catch (const Error& e) {
            throw UsageError(fmt::format("--key {}: {}", o.key.string(), e.what()));
        }
    }
    Checker(rep, name, o).run(read, skip);
    return rep;
}

} // namespace

Report verify_stream(const std::function<std::size_t(char*, std::size_t)>& read, const std::string& name,
                     const Options& o) {
    return verify_with(read, {}, name, o);
}

Report verify(const Options& o) {
    auto loc = bundle::locate(o.bundle);
    bundle::StreamReader in(loc);
    bundle::SkipFn skip;
    if (o.defer_blobs && !loc.parts) skip = [&](std::uint64_t n) { return in.skip(n); }; // offsets in one file
    Report rep = verify_with([&](char* out, std::size_t n) { return in.read(out, n); }, skip, o.bundle.string(), o);
    rep.warnings = loc.warnings;
    if (loc.parts) {
        rep.parts = loc.parts->parts.size();
        bool part_failed = std::any_of(rep.problems.begin(), rep.problems.end(),
                                       [](const Problem& p) { return p.kind == "part"; });
        if (part_failed && in.offset() < loc.parts->size) {
            auto first = static_cast<std::size_t>(in.offset() / loc.parts->part_size);
            check_remaining_parts(loc, std::min(first, loc.parts->parts.size() - 1), rep);
        }
    }
    return rep;
}

Inspection inspect(const fs::path& path, const fs::path& key) {
    auto loc = bundle::locate(path);
    Inspection out;
    out.parts = loc.parts;
    std::unique_ptr<FileIn> cur;
    std::size_t next_part = 0;
    fs::path dir = loc.index.parent_path().empty() ? fs::path(".") : loc.index.parent_path();
    auto open = [&](const fs::path& p) {
        cur = std::make_unique<FileIn>(p);
        if (cur->error())
            throw Error(fmt::format("reading bundle {}: cannot open {}: {}", path.string(), p.string(),
                                    util::errno_message(cur->error())));
    };
    if (loc.parts) {
        out.archive_size = loc.parts->size;
    } else {
        std::error_code ec;
        out.archive_size = fs::file_size(loc.whole, ec);
        open(loc.whole);
    }
    auto read = [&](char* buf, std::size_t n) -> std::size_t {
        for (;;) {
            if (!cur) {
                if (!loc.parts || next_part >= loc.parts->parts.size()) return 0;
                open(dir / loc.parts->parts[next_part++].name);
            }
            if (std::size_t got = cur->read(buf, n)) return got;
            if (!loc.parts) return 0;
            cur.reset();
        }
    };
    std::string name = path.string();
    TarReader tr(read, name);
    tr.decoder().set_limit(bundle::max_bundle_json + 64 * entry_overhead, "allowed for bundle.json");
    TarEntry e;
    if (!tr.next(e) || e.name != bundle::bundle_json_path || e.type != TarEntry::Type::file)
        throw Error(fmt::format("{}: the first entry is not bundle.json: not a bundle, or a damaged one", name));
    if (e.size > bundle::max_bundle_json)
        throw Error(fmt::format("{}: bundle.json is {} bytes, more than the limit of {}; refused", name, e.size,
                                bundle::max_bundle_json));
    std::string json;
    const char* p;
    while (std::size_t n = tr.read_block(&p)) json.append(p, n);
    std::optional<std::string> sig;
    if (tr.next(e) && e.name == bundle::signature_path && e.type == TarEntry::Type::file && e.size <= max_signature) {
        sig.emplace();
        while (std::size_t n = tr.read_block(&p)) sig->append(p, n);
    }
    out.compressed = tr.decoder().compressed();
    out.has_signature = sig.has_value();
    if (!key.empty()) {
        // Trust order: with a key, bundle.json is parsed only once its signature verifies.
        try {
            out.key_fingerprint = signing::public_fingerprint(key);
        } catch (const Error& ex) {
            throw UsageError(fmt::format("--key {}: {}", key.string(), ex.what()));
        }
        out.signature = !sig ? Signature::unsigned_
                        : signing::verify(key, json, *sig) ? Signature::valid
                                                           : Signature::invalid;
        if (out.signature == Signature::unsigned_)
            throw Error(fmt::format("{}: the bundle is unsigned (no bundle.json.sig): it cannot be authenticated "
                                    "with key {}; bundle.json was not read",
                                    name, key.filename().string()));
        if (out.signature == Signature::invalid)
            throw Error(fmt::format("{}: the signature does not match key {}; bundle.json was not read", name,
                                    key.filename().string()));
    } else if (!sig) {
        out.signature = Signature::unsigned_;
    }
    out.doc = bundle::BundleDoc::parse(json, name + ": bundle.json");
    out.bundle_json_digest = oci::Digest::of(json);
    std::uint64_t stored_layers = 0;
    for (const auto& b : out.doc.blobs) {
        out.bytes_stored += static_cast<std::uint64_t>(b.size);
        if (b.kind == "config" || b.kind == "layer") stored_layers += static_cast<std::uint64_t>(b.size);
    }
    for (const auto& img : out.doc.images) out.bytes_referenced += img.blob_bytes;
    stored_layers += out.doc.assumed_bytes(); // a delta: what it assumes is not "saved by sharing"
    out.bytes_saved = out.bytes_referenced > stored_layers ? out.bytes_referenced - stored_layers : 0;
    return out;
}

} // namespace aas::verify
