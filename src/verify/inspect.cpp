// inspect: bundle.json and its signature, the first entries of a bundle, read without
// verifying the rest.

#include "aas_bundle/verify/verify.hpp"

#include "checker.hpp"

#include "aas_bundle/bundle/reader.hpp"
#include "aas_bundle/signing/signing.hpp"
#include "aas_bundle/util/error.hpp"
#include "aas_bundle/util/fs.hpp"

#include <fcntl.h>
#include <fmt/format.h>

#include <cerrno>

namespace aas::verify {
namespace fs = std::filesystem;
using bundle::TarEntry;

namespace {

/// A whole bundle, or its parts in order, as one stream of bytes (not hashed: inspect
/// reads only the first entries).
class HeadIn {
public:
    HeadIn(const bundle::BundleLocation& loc, const fs::path& path)
        : loc_(loc), path_(path), dir_(loc.index.parent_path().empty() ? fs::path(".") : loc.index.parent_path()) {
        if (!loc_.parts) open(loc_.whole);
    }

    std::size_t read(char* buf, std::size_t n) {
        for (;;) {
            if (!fd_) {
                if (!loc_.parts || next_part_ >= loc_.parts->parts.size()) return 0;
                open(dir_ / loc_.parts->parts[next_part_++].name);
            }
            if (std::size_t got = util::read_some(fd_.get(), buf, n, file_.string())) return got;
            if (!loc_.parts) return 0;
            fd_.reset();
        }
    }

private:
    void open(const fs::path& p) {
        file_ = p;
        fd_ = util::Fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd_) {
            int e = errno;
            throw Error(fmt::format("reading bundle {}: cannot open {}: {}", path_.string(), p.string(),
                                    util::errno_message(e)));
        }
    }

    const bundle::BundleLocation& loc_;
    fs::path path_; // the bundle as named, for messages
    fs::path dir_;  // the parts' folder
    util::Fd fd_;
    fs::path file_; // the file fd_ reads
    std::size_t next_part_ = 0;
};

struct Head {
    std::string json;
    std::optional<std::string> sig;
};

/// bundle.json, the first entry, and bundle.json.sig when it is the second.
Head read_head(bundle::TarReader& tr, const std::string& name) {
    TarEntry e;
    if (!tr.next(e) || e.name != bundle::bundle_json_path || e.type != TarEntry::Type::file)
        throw Error(fmt::format("{}: the first entry is not bundle.json: not a bundle, or a damaged one", name));
    if (e.size > bundle::max_bundle_json)
        throw Error(fmt::format("{}: bundle.json is {} bytes, more than the limit of {}; refused", name, e.size,
                                bundle::max_bundle_json));
    Head h;
    const char* p;
    while (std::size_t n = tr.read_block(&p)) h.json.append(p, n);
    if (tr.next(e) && e.name == bundle::signature_path && e.type == TarEntry::Type::file &&
        e.size <= detail::max_signature) {
        h.sig.emplace();
        while (std::size_t n = tr.read_block(&p)) h.sig->append(p, n);
    }
    return h;
}

/// The signature against `key` (none: only whether there is one). Trust order: with a
/// key, bundle.json is parsed only once its signature verifies, so this throws otherwise.
void check_signature(Inspection& out, const fs::path& key, const Head& h, const std::string& name) {
    if (key.empty()) {
        if (!h.sig) out.signature = Signature::unsigned_;
        return;
    }
    try {
        out.key_fingerprint = signing::public_fingerprint(key);
    } catch (const Error& ex) {
        throw UsageError(fmt::format("--key {}: {}", key.string(), ex.what()));
    }
    out.signature = !h.sig                                 ? Signature::unsigned_
                    : signing::verify(key, h.json, *h.sig) ? Signature::valid
                                                           : Signature::invalid;
    if (out.signature == Signature::unsigned_)
        throw Error(fmt::format("{}: the bundle is unsigned (no bundle.json.sig): it cannot be authenticated "
                                "with key {}; bundle.json was not read",
                                name, key.filename().string()));
    if (out.signature == Signature::invalid)
        throw Error(fmt::format("{}: the signature does not match key {}; bundle.json was not read", name,
                                key.filename().string()));
}

/// What the blobs weigh: stored, referenced by the images, saved by sharing.
void add_sizes(Inspection& out) {
    std::uint64_t stored_layers = 0;
    for (const auto& b : out.doc.blobs) {
        out.bytes_stored += static_cast<std::uint64_t>(b.size);
        if (b.kind == "config" || b.kind == "layer") stored_layers += static_cast<std::uint64_t>(b.size);
    }
    for (const auto& img : out.doc.images) out.bytes_referenced += img.blob_bytes;
    stored_layers += out.doc.assumed_bytes(); // a delta: what it assumes is not "saved by sharing"
    out.bytes_saved = out.bytes_referenced > stored_layers ? out.bytes_referenced - stored_layers : 0;
}

} // namespace

Inspection inspect(const fs::path& path, const fs::path& key) {
    auto loc = bundle::locate(path);
    Inspection out;
    out.parts = loc.parts;
    if (loc.parts) {
        out.archive_size = loc.parts->size;
    } else {
        std::error_code ec;
        out.archive_size = fs::file_size(loc.whole, ec);
    }
    HeadIn in(loc, path);
    std::string name = path.string();
    bundle::TarReader tr([&](char* buf, std::size_t n) { return in.read(buf, n); }, name);
    tr.decoder().set_limit(bundle::max_bundle_json + 64 * detail::entry_overhead, "allowed for bundle.json");
    Head head = read_head(tr, name);
    out.compressed = tr.decoder().compressed();
    out.has_signature = head.sig.has_value();
    check_signature(out, key, head, name);
    out.doc = bundle::BundleDoc::parse(head.json, name + ": bundle.json");
    out.bundle_json_digest = oci::Digest::of(head.json);
    add_sizes(out);
    return out;
}

} // namespace aas::verify
