// `docker save` archives, classic and OCI-style (Docker 25+).
//
// An archive with oci-layout and index.json is read as an OCI layout inside the tar: the
// image is the index.json entry whose io.containerd.image.name or
// org.opencontainers.image.ref.name names `wanted` (both sides normalised as references;
// a bare ref.name tag is compared with `wanted`'s tag), or the only image; failing that,
// manifest.json's RepoTags lead to the config, and the entry whose manifest has that config
// is taken.
//
// A classic archive (manifest.json only) gets a synthesised OCI image manifest, compact
// JSON with exactly these fields in this order and no whitespace:
//
//   {"schemaVersion":2,
//    "mediaType":"application/vnd.oci.image.manifest.v1+json",
//    "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":D,"size":N},
//    "layers":[{"mediaType":M,"digest":D,"size":N},...]}
//
// config: the member manifest.json's Config names, its sha256 and size. layers: the
// members Layers names, in order, each with its size in the archive and
//   - M "application/vnd.oci.image.layer.v1.tar" and D its diff_id (the config's
//     rootfs.diff_ids[i], when the config lists one per layer; otherwise the member is
//     hashed) for an uncompressed layer tar;
//   - M "...layer.v1.tar+gzip" / "...layer.v1.tar+zstd" and D the sha256 of the member's
//     bytes for a layer file that starts with the gzip / zstd magic.
// The bytes depend only on the archive's content, so the manifest digest is the same on
// every run and machine. Every blob is still verified when it is streamed.

#include "aas_bundle/oci/media_types.hpp"
#include "aas_bundle/source/source.hpp"
#include "aas_bundle/util/error.hpp"
#include "aas_bundle/util/log.hpp"
#include "tar_index.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <set>

namespace aas::source {
namespace {
using json = nlohmann::json;
using detail::FileStore;

constexpr const char* ref_name_annotation = "org.opencontainers.image.ref.name";
constexpr const char* containerd_name_annotation = "io.containerd.image.name";

/// manifest.json of `docker save`: [{"Config": "...", "RepoTags": [...], "Layers": [...]}].
struct SaveEntry {
    std::string config;
    std::vector<std::string> repo_tags;
    std::vector<std::string> layers;
};

std::vector<SaveEntry> read_save_manifest(const FileStore& store, const std::string& where) {
    std::string text = store.read("manifest.json", detail::max_json_bytes);
    std::vector<SaveEntry> out;
    try {
        auto j = json::parse(text);
        if (!j.is_array()) throw Error(fmt::format("{}: manifest.json is not a JSON array", where));
        std::size_t i = 0;
        for (const auto& e : j) {
            std::string at = fmt::format("{}: manifest.json[{}]", where, i++);
            if (!e.is_object()) throw Error(fmt::format("{}: not a JSON object", at));
            SaveEntry s;
            auto c = e.find("Config");
            if (c == e.end() || !c->is_string()) throw Error(fmt::format("{}: no \"Config\" string", at));
            s.config = c->get<std::string>();
            if (auto t = e.find("RepoTags"); t != e.end() && t->is_array())
                for (const auto& x : *t)
                    if (x.is_string()) s.repo_tags.push_back(x.get<std::string>());
            auto l = e.find("Layers");
            if (l == e.end() || !l->is_array()) throw Error(fmt::format("{}: no \"Layers\" array", at));
            for (const auto& x : *l) {
                if (!x.is_string()) throw Error(fmt::format("{}: a layer path is not a string", at));
                s.layers.push_back(x.get<std::string>());
            }
            out.push_back(std::move(s));
        }
    } catch (const json::exception& e) {
        throw Error(fmt::format("{}: manifest.json is not valid JSON: {}", where, e.what()));
    }
    return out;
}

/// What `wanted` is compared with: its normalised string without the digest.
std::string wanted_key(const ref::Reference& wanted) {
    return wanted.has_tag() ? wanted.without_digest().str() : wanted.str();
}

/// True when `name` (an image name as an archive writes it) is `wanted`, both normalised.
bool names_wanted(std::string_view name, const ref::Reference& wanted) {
    auto r = ref::Reference::try_parse(name);
    if (!r) return false;
    if (!wanted.has_tag()) return r->name() == wanted.name() && r->digest() == wanted.digest();
    return r->without_digest().str() == wanted_key(wanted);
}

std::string join(const std::vector<std::string>& xs) {
    std::string out;
    for (const auto& x : xs) out += (out.empty() ? "" : ", ") + x;
    return out.empty() ? "no tagged images" : out;
}

// `strict`: the image was named explicitly (docker-archive:PATH:REF), so even an archive
// of one image must hold it.
std::size_t pick_save_entry(const std::vector<SaveEntry>& entries, const ref::Reference& wanted,
                            const std::string& where, bool strict) {
    if (entries.empty()) throw Error(fmt::format("{}: manifest.json lists no images", where));
    if (entries.size() == 1 && !strict) return 0;
    std::vector<std::string> all;
    for (std::size_t i = 0; i < entries.size(); ++i)
        for (const auto& t : entries[i].repo_tags) {
            if (names_wanted(t, wanted)) return i;
            all.push_back(t);
        }
    throw Error(
        fmt::format("{}: no image tagged {} in the archive (it has: {})", where, wanted_key(wanted), join(all)));
}

// ---------------------------------------------------------------------------------------
// The OCI layout inside a Docker 25+ archive

bool entry_wanted(const oci::Descriptor& e, const ref::Reference& wanted) {
    if (wanted.has_digest() && e.digest.str() == wanted.digest()) return true;
    auto c = e.annotations.find(containerd_name_annotation);
    if (c != e.annotations.end()) return names_wanted(c->second, wanted);
    auto r = e.annotations.find(ref_name_annotation);
    if (r == e.annotations.end()) return false;
    if (r->second.find_first_of("/:@") != std::string::npos) return names_wanted(r->second, wanted);
    return wanted.has_tag() && r->second == wanted.tag(); // a bare tag, as Docker 25 writes it
}

/// Docker 25 without usable annotations: manifest.json's RepoTags -> Config
/// "blobs/sha256/<hex>" -> the index entry whose image manifest has that config.
std::optional<oci::Descriptor> entry_by_repo_tags(const detail::Layout& layout, const ref::Reference& wanted,
                                                  std::vector<std::string>& names) {
    if (!layout.store().size("manifest.json")) return std::nullopt;
    auto entries = read_save_manifest(layout.store(), layout.where());
    const SaveEntry* match = nullptr;
    for (const auto& s : entries)
        for (const auto& t : s.repo_tags) {
            names.push_back(t);
            if (!match && names_wanted(t, wanted)) match = &s;
        }
    if (!match) return std::nullopt;
    std::string config = detail::normalize_member(match->config);
    for (const auto& e : layout.entries()) {
        if (!oci::media_type::is_image_manifest(e.media_type)) continue;
        auto parsed = oci::parse(layout.read_manifest(e));
        const auto* m = std::get_if<oci::ImageManifest>(&parsed);
        if (m && detail::blob_path(m->config.digest) == config) return e;
    }
    return std::nullopt;
}

std::unique_ptr<ImageSource> open_oci_style(std::shared_ptr<const FileStore> store, const ref::Reference& wanted,
                                            const std::string& where, bool strict) {
    auto layout = std::make_shared<detail::Layout>(std::move(store), where);
    const auto& entries = layout->entries();
    if (entries.empty()) throw Error(fmt::format("{}: index.json lists no images", where));
    std::set<oci::Digest> all;
    for (const auto& e : entries) all.insert(e.digest);
    std::optional<oci::Descriptor> top;
    if (all.size() == 1 && !strict) {
        top = entries.front();
    } else {
        std::set<oci::Digest> matched;
        for (const auto& e : entries)
            if (entry_wanted(e, wanted)) {
                if (!top) top = e;
                matched.insert(e.digest);
            }
        if (matched.size() > 1)
            throw Error(fmt::format("{}: more than one image in index.json is {} ({})", where, wanted_key(wanted),
                                    detail::layout_entry_names(entries)));
        std::vector<std::string> names;
        if (!top) {
            try {
                top = entry_by_repo_tags(*layout, wanted, names);
            } catch (const Error& e) {
                throw Error(wrap_message(where, e.what()));
            }
        }
        if (!top) {
            for (const auto& e : entries) {
                auto c = e.annotations.find(containerd_name_annotation);
                if (c != e.annotations.end()) names.push_back(c->second);
            }
            std::sort(names.begin(), names.end());
            names.erase(std::unique(names.begin(), names.end()), names.end());
            throw Error(fmt::format("{}: no image tagged {} in the archive (it has: {})", where, wanted_key(wanted),
                                    names.empty() ? detail::layout_entry_names(entries) : join(names)));
        }
    }
    return detail::make_layout_source(std::move(layout), *top, where);
}

// ---------------------------------------------------------------------------------------
// Classic archives: a synthesised manifest

class ClassicSource final : public ImageSource {
public:
    ClassicSource(std::shared_ptr<const FileStore> store, std::string where, oci::RawManifest manifest,
                  std::map<oci::Digest, std::string> blobs)
        : store_(std::move(store)), where_(std::move(where)), manifest_(std::move(manifest)), blobs_(std::move(blobs)) {
    }

    std::string describe() const override { return where_; }
    oci::RawManifest top() override { return manifest_; }

    oci::RawManifest manifest(const oci::Digest& digest) override {
        if (digest == manifest_.digest) return manifest_;
        throw Error(fmt::format("{}: the archive has no manifest {} (the image's synthesised manifest is {})", where_,
                                digest.str(), manifest_.digest.str()));
    }

    void fetch_blob(const oci::Descriptor& blob, registry::BlobSink& sink,
                    const registry::ByteCallback& on_bytes) override {
        auto it = blobs_.find(blob.digest);
        if (it == blobs_.end())
            throw Error(fmt::format("{}: the image has no blob {} (it is neither its config nor one of its layers)",
                                    where_, blob.digest.str()));
        detail::stream_verified(*store_, it->second, blob, sink, on_bytes, where_);
    }

private:
    std::shared_ptr<const FileStore> store_;
    std::string where_;
    oci::RawManifest manifest_;
    std::map<oci::Digest, std::string> blobs_; // digest -> member
};

oci::Digest hash_member(const FileStore& store, const std::string& path) {
    oci::Hasher h;
    store.stream(path, [&](const char* d, std::size_t n) { h.update(d, n); });
    return h.finish();
}

std::vector<std::string> diff_ids_of(const std::string& config) {
    std::vector<std::string> out;
    try {
        auto j = json::parse(config);
        auto r = j.is_object() ? j.find("rootfs") : j.end();
        if (r == j.end() || !r->is_object()) return out;
        auto d = r->find("diff_ids");
        if (d == r->end() || !d->is_array()) return out;
        for (const auto& x : *d) out.push_back(x.is_string() ? x.get<std::string>() : std::string());
    } catch (const json::exception&) {
        return {};
    }
    return out;
}

std::unique_ptr<ImageSource> open_classic(std::shared_ptr<const FileStore> store, const ref::Reference& wanted,
                                          const std::string& where, bool strict) {
    auto entries = read_save_manifest(*store, where);
    const SaveEntry& entry = entries[pick_save_entry(entries, wanted, where, strict)];
    std::map<oci::Digest, std::string> blobs;

    std::string config_path = detail::normalize_member(entry.config);
    if (!store->size(config_path))
        throw Error(
            fmt::format("{}: manifest.json names the config {}, which the archive does not hold", where, entry.config));
    std::string config = store->read(config_path, detail::max_json_bytes);
    auto config_digest = oci::Digest::of(config);
    blobs.emplace(config_digest, config_path);
    auto diff_ids = diff_ids_of(config);
    bool use_diff_ids = diff_ids.size() == entry.layers.size();

    std::string layers;
    for (std::size_t i = 0; i < entry.layers.size(); ++i) {
        std::string path = detail::normalize_member(entry.layers[i]);
        auto size = store->size(path);
        if (!size)
            throw Error(fmt::format("{}: manifest.json names the layer {}, which the archive does not hold", where,
                                    entry.layers[i]));
        std::string head = store->head(path, 4);
        std::string_view media_type = oci::media_type::oci_layer;
        if (head.rfind("\x1f\x8b", 0) == 0)
            media_type = oci::media_type::oci_layer_gzip;
        else if (head.rfind("\x28\xb5\x2f\xfd", 0) == 0)
            media_type = oci::media_type::oci_layer_zstd;
        oci::Digest digest;
        if (media_type == oci::media_type::oci_layer && use_diff_ids) {
            try {
                digest = oci::Digest::parse(diff_ids[i]);
            } catch (const Error&) {
                digest = {};
            }
        }
        if (digest.empty()) digest = hash_member(*store, path);
        blobs.emplace(digest, path);
        layers += fmt::format(R"({}{{"mediaType":"{}","digest":"{}","size":{}}})", i == 0 ? "" : ",", media_type,
                              digest.str(), *size);
    }
    std::string bytes = fmt::format(R"({{"schemaVersion":2,"mediaType":"{}",)"
                                    R"("config":{{"mediaType":"{}","digest":"{}","size":{}}},"layers":[{}]}})",
                                    oci::media_type::oci_manifest, oci::media_type::oci_config, config_digest.str(),
                                    config.size(), layers);
    auto manifest = oci::RawManifest::from_bytes(std::move(bytes), oci::media_type::oci_manifest);
    log::debug("{}: synthesised manifest {} for {}", where, manifest.digest.str(), join(entry.repo_tags));
    return std::make_unique<ClassicSource>(std::move(store), where, std::move(manifest), std::move(blobs));
}

} // namespace

std::unique_ptr<ImageSource> open_docker_archive(const std::filesystem::path& archive, const ref::Reference& wanted,
                                                 bool strict) {
    auto abs = std::filesystem::absolute(archive).lexically_normal();
    std::string where = "docker-archive:" + abs.string();
    std::shared_ptr<const FileStore> store = detail::open_tar(abs, where);
    if (store->size("oci-layout") && store->size("index.json"))
        return open_oci_style(std::move(store), wanted, where, strict);
    if (!store->size("manifest.json"))
        throw Error(
            fmt::format("{}: not a `docker save` archive: it has neither manifest.json nor an OCI index.json", where));
    return open_classic(std::move(store), wanted, where, strict);
}

} // namespace aas::source
