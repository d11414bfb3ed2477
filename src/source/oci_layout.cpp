// OCI image layouts: a folder (`oci:PATH[:TAG]`), or the OCI half of a Docker 25+
// `docker save` tar (see docker_archive.cpp), read through a FileStore.

#include "aas_bundle/oci/media_types.hpp"
#include "aas_bundle/source/source.hpp"
#include "aas_bundle/util/error.hpp"
#include "tar_index.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <mutex>
#include <set>

namespace aas::source {
namespace detail {
using json = nlohmann::json;

namespace {

constexpr const char* ref_name_annotation = "org.opencontainers.image.ref.name";
constexpr const char* containerd_name_annotation = "io.containerd.image.name";

class LayoutSource final : public ImageSource {
public:
    LayoutSource(std::shared_ptr<const Layout> layout, oci::Descriptor top, std::string describe)
        : layout_(std::move(layout)), top_(std::move(top)), describe_(std::move(describe)) {}

    std::string describe() const override { return describe_; }

    oci::RawManifest top() override {
        auto raw = read(top_);
        remember_children(raw);
        return raw;
    }

    oci::RawManifest manifest(const oci::Digest& digest) override {
        oci::Descriptor d;
        {
            std::lock_guard lock(mutex_);
            if (auto it = known_.find(digest); it != known_.end()) d = it->second;
        }
        if (d.digest.empty()) {
            if (digest == top_.digest) {
                d = top_;
            } else {
                d.digest = digest; // not listed by an index read so far: the document decides
                d.size = -1;
            }
        }
        auto raw = read(d);
        remember_children(raw);
        return raw;
    }

    void fetch_blob(const oci::Descriptor& blob, registry::BlobSink& sink,
                    const registry::ByteCallback& on_bytes) override {
        stream_verified(layout_->store(), blob_path(blob.digest), blob, sink, on_bytes, describe_);
    }

private:
    oci::RawManifest read(const oci::Descriptor& d) const {
        try {
            return layout_->read_manifest(d);
        } catch (const Error& e) {
            throw Error(wrap_message(describe_, e.what()));
        }
    }

    void remember_children(const oci::RawManifest& raw) {
        if (!oci::media_type::is_index(raw.media_type)) return;
        oci::Parsed parsed;
        try {
            parsed = oci::parse(raw);
        } catch (const Error& e) {
            throw Error(wrap_message(describe_, e.what()));
        }
        std::lock_guard lock(mutex_);
        for (const auto& c : std::get<oci::Index>(parsed).manifests) known_.emplace(c.digest, c);
    }

    std::shared_ptr<const Layout> layout_;
    oci::Descriptor top_;
    std::string describe_;
    std::mutex mutex_;
    std::map<oci::Digest, oci::Descriptor> known_; // children of the indexes read so far
};

std::string entry_names(const std::vector<oci::Descriptor>& entries) {
    std::vector<std::string> names;
    for (const auto& e : entries) {
        auto it = e.annotations.find(ref_name_annotation);
        if (it == e.annotations.end()) it = e.annotations.find(containerd_name_annotation);
        names.push_back(it != e.annotations.end() ? it->second : "untagged " + e.digest.str());
    }
    if (names.empty()) return "no images";
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
    return out;
}

std::size_t distinct_digests(const std::vector<oci::Descriptor>& entries) {
    std::set<oci::Digest> ds;
    for (const auto& e : entries) ds.insert(e.digest);
    return ds.size();
}

/// The index.json entries named `tag` (ref.name or containerd image name equal to it).
std::vector<oci::Descriptor> entries_tagged(const std::vector<oci::Descriptor>& entries, const std::string& tag) {
    std::vector<oci::Descriptor> out;
    for (const auto& e : entries) {
        auto r = e.annotations.find(ref_name_annotation);
        auto c = e.annotations.find(containerd_name_annotation);
        if ((r != e.annotations.end() && r->second == tag) || (c != e.annotations.end() && c->second == tag))
            out.push_back(e);
    }
    return out;
}

/// Picks the one image among `candidates`, or throws naming `where`, `what` and the layout's
/// entries.
oci::Descriptor pick_one(const std::vector<oci::Descriptor>& candidates, const std::vector<oci::Descriptor>& all,
                         const std::string& where, const std::string& what) {
    if (candidates.empty())
        throw Error(fmt::format("{}: no image {} in index.json (it has: {})", where, what, entry_names(all)));
    if (distinct_digests(candidates) > 1)
        throw Error(fmt::format("{}: more than one image {} in index.json ({})", where, what, entry_names(candidates)));
    return candidates.front();
}

} // namespace

oci::RawManifest manifest_from_bytes(std::string bytes, std::string_view known) {
    bool declared = false;
    try {
        auto j = json::parse(bytes);
        declared = j.is_object() && j.contains("mediaType") && j["mediaType"].is_string();
    } catch (const json::exception&) {
        // from_bytes reports invalid JSON with the digest
    }
    if (!declared && oci::media_type::is_supported_manifest(known))
        return oci::RawManifest::from_bytes(std::move(bytes), known);
    return oci::RawManifest::from_bytes(std::move(bytes), "");
}

Layout::Layout(std::shared_ptr<const FileStore> store, std::string where)
    : store_(std::move(store)), where_(std::move(where)) {
    // oci-layout: {"imageLayoutVersion": "1.0.0"}
    if (!store_->size("oci-layout"))
        throw Error(fmt::format("{}: not an OCI image layout: there is no oci-layout file", where_));
    std::string marker = store_->read("oci-layout", 64u << 10);
    try {
        auto j = json::parse(marker);
        auto v = j.is_object() ? j.find("imageLayoutVersion") : j.end();
        if (v == j.end() || !v->is_string())
            throw Error(fmt::format("{}: oci-layout has no \"imageLayoutVersion\"", where_));
        auto version = v->get<std::string>();
        if (version.rfind("1.", 0) != 0)
            throw Error(fmt::format("{}: oci-layout: unsupported imageLayoutVersion \"{}\" (1.x is supported)", where_,
                                    version));
    } catch (const json::exception& e) {
        throw Error(fmt::format("{}: oci-layout is not valid JSON: {}", where_, e.what()));
    }

    if (!store_->size("index.json"))
        throw Error(fmt::format("{}: not an OCI image layout: there is no index.json", where_));
    std::string index = store_->read("index.json", max_json_bytes);
    try {
        auto raw = oci::RawManifest::from_bytes(std::move(index), oci::media_type::oci_index);
        entries_ = std::get<oci::Index>(oci::parse(raw)).manifests;
    } catch (const Error& e) {
        throw Error(fmt::format("{}: index.json: {}", where_, e.what()));
    }
}

oci::RawManifest Layout::read_manifest(const oci::Descriptor& d) const {
    std::string path = blob_path(d.digest);
    auto size = store_->size(path);
    if (!size) throw Error(fmt::format("manifest {}: {} is missing", d.digest.str(), path));
    if (d.size >= 0 && *size != static_cast<std::uint64_t>(d.size))
        throw Error(fmt::format("manifest {} ({}): the file has {} bytes, the descriptor says {}", d.digest.str(), path,
                                *size, d.size));
    if (*size > max_manifest_bytes)
        throw Error(fmt::format("manifest {} ({}): {} bytes is more than the limit of {}", d.digest.str(), path, *size,
                                max_manifest_bytes));
    std::string bytes = store_->read(path, max_manifest_bytes);
    auto got = oci::Digest::of(bytes, d.digest.algorithm());
    if (got != d.digest)
        throw Error(fmt::format("manifest {} ({}): digest mismatch: the content hashes to {} (the file is corrupt)",
                                d.digest.str(), path, got.str()));
    auto raw = manifest_from_bytes(std::move(bytes), d.media_type);
    if (d.digest.algorithm() != oci::Algorithm::sha256) raw.digest = d.digest; // from_bytes hashes with sha256
    return raw;
}

std::unique_ptr<ImageSource> make_layout_source(std::shared_ptr<const Layout> layout, oci::Descriptor top,
                                                std::string describe) {
    return std::make_unique<LayoutSource>(std::move(layout), std::move(top), std::move(describe));
}

std::string layout_entry_names(const std::vector<oci::Descriptor>& entries) {
    return entry_names(entries);
}

} // namespace detail

namespace {

// The image of an OCI layout (a folder or an archive) that `tag` names, or its only one.
std::unique_ptr<ImageSource> layout_source(std::shared_ptr<const detail::FileStore> store, std::string describe,
                                           const std::string& tag, const std::string& scheme) {
    auto l = std::make_shared<detail::Layout>(store, describe);
    oci::Descriptor top;
    if (tag.empty()) {
        if (l->entries().empty()) throw Error(fmt::format("{}: index.json lists no images", describe));
        if (detail::distinct_digests(l->entries()) != 1)
            throw Error(fmt::format("{}: index.json lists {} images; name one with {}PATH:NAME, NAME being one of: {}",
                                    describe, l->entries().size(), scheme, detail::entry_names(l->entries())));
        top = l->entries().front();
    } else {
        top = detail::pick_one(detail::entries_tagged(l->entries(), tag), l->entries(), describe,
                               fmt::format("tagged '{}'", tag));
    }
    if (!oci::media_type::is_supported_manifest(top.media_type) && !top.media_type.empty())
        throw Error(fmt::format("{}: index.json entry {} has media type \"{}\", not a manifest or index", describe,
                                top.digest.str(), top.media_type));
    return detail::make_layout_source(std::move(l), std::move(top), std::move(describe));
}

} // namespace

std::unique_ptr<ImageSource> open_oci_layout(const std::filesystem::path& layout, std::string tag) {
    auto abs = std::filesystem::absolute(layout).lexically_normal();
    std::string describe = "oci:" + abs.string() + (tag.empty() ? "" : ":" + tag);
    std::shared_ptr<const detail::FileStore> store;
    try {
        store = detail::open_folder(abs);
    } catch (const Error& e) {
        throw Error(fmt::format("{}: cannot open the OCI layout: {}", describe, e.what()));
    }
    return layout_source(std::move(store), std::move(describe), tag, "oci:");
}

std::unique_ptr<ImageSource> open_oci_archive(const std::filesystem::path& archive, std::string tag) {
    auto abs = std::filesystem::absolute(archive).lexically_normal();
    std::string describe = "oci-archive:" + abs.string() + (tag.empty() ? "" : ":" + tag);
    std::shared_ptr<const detail::FileStore> store = detail::open_tar(abs, describe);
    if (!store->size("oci-layout") || !store->size("index.json"))
        throw Error(
            fmt::format("{}: not an OCI archive: it has no oci-layout and index.json at its top{}", describe,
                        store->size("manifest.json") ? " (it is a `docker save` archive: use docker-archive:)" : ""));
    return layout_source(std::move(store), std::move(describe), tag, "oci-archive:");
}

} // namespace aas::source
