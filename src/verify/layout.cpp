// The verify pass's image layout (checker.hpp): images/index.json against bundle.json's
// images, then each image's graph through oci::visit (the walk pack, copy and load use),
// every descriptor checked once: listed with its size, manifests read from the verified
// bytes.

#include "checker.hpp"

#include "aas_bundle/oci/media_types.hpp"
#include "aas_bundle/oci/walk.hpp"
#include "aas_bundle/util/error.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <set>
#include <variant>

namespace aas::verify::detail {

namespace {

constexpr std::size_t last = SIZE_MAX;

std::string kind_of(const std::string& media_type, bool as_manifest) {
    return as_manifest ? (oci::media_type::is_index(media_type) ? "index" : "manifest") : "blob";
}

std::string parent_of(const oci::RawManifest& m) {
    return fmt::format("{} {}", kind_of(m.media_type, true), m.digest.str());
}

/// index.json's entry `e` as a descriptor, or the reason it is not one.
std::variant<oci::Descriptor, std::string> descriptor_of(const nlohmann::json& e) {
    if (!e.is_object() || !e.contains("digest") || !e["digest"].is_string() || !e.contains("mediaType") ||
        !e["mediaType"].is_string() || !e.contains("size") || !e["size"].is_number_integer())
        return std::string("not a descriptor (digest, mediaType and size)");
    oci::Descriptor d;
    try {
        d.digest = oci::Digest::parse(e["digest"].get<std::string>());
    } catch (const Error& ex) {
        return std::string(ex.what());
    }
    d.media_type = e["mediaType"].get<std::string>();
    d.size = e["size"].get<std::int64_t>();
    return d;
}

/// The org.opencontainers.image.ref.name annotation of index.json's entry `e`, or "".
std::string ref_name(const nlohmann::json& e) {
    if (e.contains("annotations") && e["annotations"].is_object()) {
        const auto& a = e["annotations"];
        if (a.contains("org.opencontainers.image.ref.name") && a["org.opencontainers.image.ref.name"].is_string())
            return a["org.opencontainers.image.ref.name"].get<std::string>();
    }
    return {};
}

} // namespace

void Checker::layout() {
    // Every image's top manifest is a blob of the bundle.
    for (const auto& img : doc_->images)
        if (!blobs_.count(img.digest))
            add(last, "layout", img.digest.str(),
                fmt::format("image {}: its manifest {} is not among bundle.json's blobs", img.ref, img.digest.str()));
    if (!index_json_) return; // missing or modified: reported already
    auto roots = image_roots();
    if (!roots) return;
    std::set<oci::Digest> seen;
    std::set<oci::Digest> assumed_used; // assumed blobs some manifest references
    for (const auto& root : *roots) walk_image(root, seen, assumed_used);
    for (const auto& a : doc_->assumed)
        if (!assumed_used.count(a.digest))
            add(last, "layout", a.digest.str(),
                fmt::format("assumed blob {}: no manifest of the bundle references it", a.digest.str()));
}

// images/index.json's entries, each checked against bundle.json's image of the same rank;
// nullopt when it is not an image index at all.
std::optional<std::vector<ImageRoot>> Checker::image_roots() {
    nlohmann::json index = nlohmann::json::parse(*index_json_, nullptr, false);
    std::string where(bundle::index_json_path);
    auto fail = [&](const std::string& msg) { add(last, "layout", where, msg); };
    if (index.is_discarded() || !index.is_object() || !index.contains("manifests") || !index["manifests"].is_array()) {
        fail(where + ": not an OCI image index");
        return std::nullopt;
    }
    const auto& entries = index["manifests"];
    if (entries.size() != doc_->images.size())
        fail(
            fmt::format("{}: {} entries, but bundle.json lists {} images", where, entries.size(), doc_->images.size()));
    std::vector<ImageRoot> roots;
    for (std::size_t i = 0; i < entries.size(); ++i) {
        const auto& e = entries[i];
        std::string label = fmt::format("{}: entry {}", where, i + 1);
        auto parsed = descriptor_of(e);
        if (const auto* why = std::get_if<std::string>(&parsed)) {
            fail(fmt::format("{}: {}", label, *why));
            continue;
        }
        const auto& d = std::get<oci::Descriptor>(parsed);
        std::string ref = ref_name(e);
        if (i < doc_->images.size()) {
            const auto& img = doc_->images[i];
            if (ref != img.ref)
                fail(fmt::format("{} names \"{}\", but bundle.json's image {} is {}", label, ref, i + 1, img.ref));
            if (d.digest != img.digest || d.media_type != img.media_type || d.size != img.size)
                fail(fmt::format("{} ({}) is {} {} of {} bytes, but bundle.json says {} {} of {} bytes", label, img.ref,
                                 d.media_type, d.digest.str(), d.size, img.media_type, img.digest.str(), img.size));
        }
        roots.push_back({d, ref.empty() ? label : ref, where});
    }
    return roots;
}

// True when `d` is listed (its size checked); a foreign layer may be absent.
bool Checker::listed(const oci::Descriptor& d, const std::string& ref, const std::string& parent, bool as_manifest,
                     std::set<oci::Digest>& assumed_used) {
    auto fail = [&](const std::string& msg) { add(last, "layout", d.digest.str(), msg); };
    std::string label = fmt::format("blob {} ({} of {})", d.digest.str(), kind_of(d.media_type, as_manifest), ref);
    auto it = blobs_.find(d.digest);
    if (it == blobs_.end()) {
        // A delta: a config or layer its base says the target registry holds.
        if (auto a = assumed_.find(d.digest); a != assumed_.end() && !as_manifest) {
            assumed_used.insert(d.digest);
            if (a->second->size != d.size)
                fail(fmt::format("{}: {} gives size {}, bundle.json's assumed entry {}", label, parent, d.size,
                                 a->second->size));
            return false;
        }
        if (!oci::is_foreign(d))
            fail(fmt::format("{}: missing: {} references it, but it is neither in bundle.json nor in the archive",
                             label, parent));
        return false;
    }
    if (it->second->size != d.size)
        fail(fmt::format("{}: {} gives size {}, bundle.json {}", label, parent, d.size, it->second->size));
    return true;
}

// The verified bytes of the manifest `d`, or nullopt (missing or damaged: reported).
std::optional<oci::RawManifest> Checker::verified_manifest(const oci::Descriptor& d, const std::string& ref,
                                                           const std::string& parent) {
    auto m = manifests_.find(d.digest);
    if (m != manifests_.end()) return oci::RawManifest{m->second, d.media_type, d.digest};
    if (blobs_ok_.count(d.digest)) { // present and whole, but not read as a manifest
        const auto& b = *blobs_.at(d.digest);
        add(last, "layout", d.digest.str(),
            fmt::format("blob {} ({} of {}): {} references it as a {}, but bundle.json lists it as a {} ({})",
                        d.digest.str(), kind_of(d.media_type, true), ref, parent, kind_of(d.media_type, true), b.kind,
                        b.media_type));
    }
    return std::nullopt;
}

// One image's graph from its index.json entry; descriptors in `seen` are not checked again.
void Checker::walk_image(const ImageRoot& root, std::set<oci::Digest>& seen, std::set<oci::Digest>& assumed_used) {
    if (!seen.insert(root.d.digest).second) return;
    bool as_manifest = is_manifest_type(root.d.media_type);
    if (!listed(root.d, root.ref, root.parent, as_manifest, assumed_used) || !as_manifest) return;
    auto top = verified_manifest(root.d, root.ref, root.parent);
    if (!top) return;
    oci::Visitor v;
    v.child = [&](const oci::Descriptor& c, const oci::RawManifest& parent) -> std::optional<oci::RawManifest> {
        if (!seen.insert(c.digest).second) return std::nullopt;
        bool child_manifest = is_manifest_type(c.media_type);
        if (!listed(c, root.ref, parent_of(parent), child_manifest, assumed_used) || !child_manifest)
            return std::nullopt;
        return verified_manifest(c, root.ref, parent_of(parent));
    };
    v.blob = [&](const oci::Descriptor& b, const oci::RawManifest& m) {
        if (seen.insert(b.digest).second) listed(b, root.ref, parent_of(m), false, assumed_used);
    };
    v.bad = [&](const oci::RawManifest& m, const std::string& why) {
        add(last, "layout", m.digest.str(),
            fmt::format("blob {} ({} of {}): not a valid manifest: {}", m.digest.str(), kind_of(m.media_type, true),
                        root.ref, why));
    };
    oci::visit(*top, v);
}

} // namespace aas::verify::detail
