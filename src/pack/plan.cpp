#include "plan.hpp"

#include "aas_bundle/oci/walk.hpp"
#include "aas_bundle/util/error.hpp"
#include "aas_bundle/util/fs.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>

namespace aas::pack {

namespace {

// What `top` needs (oci::walk): the manifests it lists, its config and layers; foreign
// layers are said, not packed.
void add_graph(Planned& p, const oci::RawManifest& top, std::vector<std::string>& warnings) {
    auto g = oci::walk(top, [&](const oci::Descriptor& c) { return p.src->manifest(c.digest); });
    for (const auto& b : g.foreign)
        warnings.push_back(fmt::format("{}: layer {} is a non-distributable foreign layer ({}); it is not packed",
                                       p.ref, b.digest.str(), b.urls.front()));
    for (const auto& b : g.blobs)
        if (std::none_of(p.blobs.begin(), p.blobs.end(), [&](const auto& x) { return x.digest == b.digest; }))
            p.blobs.push_back(b);
    for (auto& c : g.children) p.children.push_back(std::move(c));
    p.platforms.insert(p.platforms.end(), g.platforms.begin(), g.platforms.end());
}

// A new index of `p.top` with only the entries `picked`, in the original order.
oci::RawManifest filtered_index(const Planned& p, const std::vector<const oci::Descriptor*>& picked) {
    auto doc = nlohmann::ordered_json::parse(p.top.bytes);
    nlohmann::ordered_json kept = nlohmann::ordered_json::array();
    std::set<std::string> want;
    for (const auto* d : picked) want.insert(d->digest.str());
    for (const auto& e : doc["manifests"])
        if (e.contains("digest") && want.count(e["digest"].get<std::string>())) kept.push_back(e);
    doc["manifests"] = kept;
    return oci::RawManifest::from_bytes(doc.dump(3), p.top.media_type);
}

} // namespace

void plan_image(Planned& p, const ref::Reference& ref, const std::vector<oci::Platform>& platforms,
                std::vector<std::string>& warnings) {
    p.top = p.src->top();
    if (ref.has_digest() && p.top.digest.str() != ref.digest())
        throw Error(fmt::format("{} has digest {}, not the {} the reference pins", p.src->describe(),
                                p.top.digest.str(), ref.digest()));
    auto parsed = oci::parse(p.top);
    const auto* idx = std::get_if<oci::Index>(&parsed);
    if (!idx || platforms.empty() || ref.has_digest()) {
        add_graph(p, p.top, warnings);
        return;
    }
    auto picked = oci::pick_platforms(*idx, platforms, "index " + p.top.digest.short_str());
    // Several platforms that are every entry: nothing to drop, so the index is kept as
    // served (same bytes, same digest), as with no platform asked for.
    if (picked.size() > 1 && picked.size() == idx->manifests.size()) {
        add_graph(p, p.top, warnings);
        return;
    }
    p.index_digest = p.top.digest;
    if (picked.size() == 1) {
        auto raw = p.src->manifest(picked.front()->digest);
        if (!std::holds_alternative<oci::ImageManifest>(oci::parse(raw)))
            throw Error(
                fmt::format("the entry for {} in its index is itself an index", picked.front()->platform->str()));
        add_graph(p, raw, warnings);
        p.platforms.push_back(picked.front()->platform->str());
        p.top = std::move(raw);
        return;
    }
    // Several platforms: a new index with only their entries.
    p.top = filtered_index(p, picked);
    p.filtered = true;
    add_graph(p, p.top, warnings);
}

std::optional<std::string> config_platform(const std::filesystem::path& file) {
    try {
        auto j = nlohmann::json::parse(util::read_file(file, 4u << 20), nullptr, false);
        if (!j.is_object() || !j.contains("os") || !j.contains("architecture")) return std::nullopt;
        oci::Platform p{j.value("os", ""), j.value("architecture", ""), j.value("variant", ""), {}};
        return p.str();
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

} // namespace aas::pack
