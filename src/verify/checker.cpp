// The verify pass's reading (checker.hpp): bundle.json and its signature, then every
// entry checked against it and hashed, then the hashes and what is missing.

#include "checker.hpp"

#include "aas_bundle/oci/media_types.hpp"
#include "aas_bundle/signing/signing.hpp"
#include "aas_bundle/util/error.hpp"
#include "aas_bundle/util/strings.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <thread>

namespace aas::verify::detail {

using bundle::FatalError;
using bundle::TarEntry;
using bundle::TarReader;

namespace {

constexpr std::size_t chunk_size = 512u << 10;
constexpr std::size_t chunk_count = 32;           // 16 MiB of buffers
constexpr std::uint64_t max_manifest = 4u << 20;  // one manifest, index or index.json
constexpr std::uint64_t max_retained = 48u << 20; // all of them together
constexpr std::string_view blob_prefix = "images/blobs/sha256/";

// Integrity-only reading (no key): the tar stream may be at most this many times the
// archive bytes read so far, plus the slack; sizes from an unauthenticated bundle.json
// never bound anything alone.
constexpr std::uint64_t unauthenticated_ratio = 128;
constexpr std::uint64_t unauthenticated_slack = 16u << 20;

std::uint64_t round512(std::uint64_t n) {
    return n > UINT64_MAX - 511 ? UINT64_MAX : (n + 511) / 512 * 512;
}
std::uint64_t sat_add(std::uint64_t a, std::uint64_t b) {
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/// Thrown when a key was given and bundle.json's signature does not verify: the pass
/// stops there (the signature problem is in the report).
struct Untrusted {};

bool is_hex64(std::string_view s) {
    return s.size() == 64 &&
           std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string mode_str(unsigned m) {
    return fmt::format("{:04o}", m & 07777u);
}

std::string users(const std::vector<std::string>& refs) {
    if (refs.empty()) return "no image";
    if (refs.size() == 1) return refs[0];
    if (refs.size() == 2) return refs[0] + " and " + refs[1];
    return fmt::format("{}, {} and {} more", refs[0], refs[1], refs.size() - 2);
}

} // namespace

bool is_manifest_type(std::string_view mt) {
    return oci::media_type::is_image_manifest(mt) || oci::media_type::is_index(mt);
}

std::string Checker::blob_label(const bundle::BlobRecord& b) const {
    return fmt::format("blob {} ({} of {})", b.digest.str(), b.kind, users(b.images));
}

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
                        p.message +=
                            fmt::format(" (bundle.json names signer {}; {} is {})", util::escape_control(doc.signer),
                                        o_.key.filename().string(), rep_.key_fingerprint);
        } catch (const Error&) {}
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
    if (refused(tr, e, at)) return;
    std::string_view name = e.name;
    if (name.substr(0, blob_prefix.size()) == blob_prefix && is_hex64(name.substr(blob_prefix.size())))
        blob_entry(tr, e, oci::Digest::parse("sha256:" + std::string(name.substr(blob_prefix.size()))));
    else
        file_entry(tr, e, at);
}

// True (the entry skipped and reported) for an entry no bundle may hold, or a second one
// with a name seen before.
bool Checker::refused(TarReader& tr, const TarEntry& e, const std::string& at) {
    if (auto why = bundle::refusal(e); !why.empty()) {
        add(seq_, "refused", e.name, fmt::format("entry \"{}\" ({}) refused: {}", e.name, at, why));
        tr.skip();
        return true;
    }
    if (auto [it, fresh] = names_.emplace(e.name, e.offset); !fresh) {
        add(seq_, "refused", e.name,
            fmt::format("entry \"{}\" ({}) refused: a second entry with this name (the first is at byte {})", e.name,
                        at, it->second));
        tr.skip();
        return true;
    }
    return false;
}

// An entry images/blobs/sha256/HEX: listed in bundle.json, a file of the listed size,
// hashed (manifests kept for the layout), or deferred for load to read later.
void Checker::blob_entry(TarReader& tr, const TarEntry& e, const oci::Digest& d) {
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
}

// Any other entry: a file, folder or symlink bundle.json lists, of its type, mode, size
// (or target), hashed and extracted when asked.
void Checker::file_entry(TarReader& tr, const TarEntry& e, const std::string& at) {
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
                add(h.seq, "blob", h.subject,
                    fmt::format("{}: content hash mismatch (sha256 {})", h.label, h.job->result.str()));
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

// bundle.json and its signature, then every entry in turn until the end of the archive
// (and what follows it) or the entry Options::stop_before names.
void Checker::read_entries(TarReader& tr) {
    TarEntry pending;
    bool have_pending = false;
    header_entries(tr, pending, have_pending);
    seq_ = 2;
    auto stop = [&](const TarEntry& e) {
        if (o_.stop_before && o_.stop_before(e.name)) rep_.stopped_on_request = true;
        return rep_.stopped_on_request;
    };
    if (have_pending && !stop(pending)) {
        entry(tr, pending);
        ++seq_;
    }
    if (!rep_.stopped_on_request)
        for (TarEntry e; tr.next(e); ++seq_) {
            if (stop(e)) break;
            entry(tr, e);
        }
    if (rep_.stopped_on_request) {
        // what follows is not read
    } else if (auto junk = tr.drain())
        add(seq_, "archive", name_,
            fmt::format("{}: data follows the end of the tar archive, from byte {} of the tar stream (appended "
                        "to the bundle; only zero padding may follow)",
                        name_, *junk));
}

void Checker::run(const bundle::ReadFn& read, const bundle::SkipFn& skip) {
    unsigned workers = o_.workers ? o_.workers : std::max(1u, std::thread::hardware_concurrency());
    std::size_t chunks = o_.buffer_bytes ? std::max<std::size_t>(4, o_.buffer_bytes / chunk_size) : chunk_count;
    pool_ = std::make_unique<HashPool>(workers, chunk_size, chunks);
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
        read_entries(*tr);
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

} // namespace aas::verify::detail
