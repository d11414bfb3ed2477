#include "aas_bundle/oci/walk.hpp"

#include "aas_bundle/util/error.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace aas::oci {

namespace {

// True when `m` is an image manifest.
bool visit_one(const RawManifest& m, int depth, const Visitor& v) {
    Parsed parsed;
    try {
        parsed = parse(m);
    } catch (const Error& e) {
        v.bad(m, e.what());
        return false;
    }
    if (auto* img = std::get_if<ImageManifest>(&parsed)) {
        for (const auto& b : blobs_of(*img)) v.blob(b, m);
        return true;
    }
    if (depth > max_index_depth) {
        v.bad(m, fmt::format("indexes nested more than {} deep", max_index_depth));
        return false;
    }
    for (const auto& child : std::get<Index>(parsed).manifests) {
        auto raw = v.child(child, m);
        if (!raw) continue;
        bool image = visit_one(*raw, depth + 1, v);
        if (v.after_child) v.after_child(*raw, child, image);
    }
    return false;
}

} // namespace

void visit(const RawManifest& top, const Visitor& v) {
    visit_one(top, 1, v);
}

Graph walk(const RawManifest& top, const FetchManifest& fetch) {
    Graph g;
    Visitor v;
    v.child = [&](const Descriptor& c, const RawManifest&) -> std::optional<RawManifest> {
        auto raw = fetch(c);
        if (raw.digest != c.digest)
            throw Error(
                fmt::format("manifest {} listed by an index came back as {}", c.digest.str(), raw.digest.str()));
        return raw;
    };
    v.after_child = [&](const RawManifest& raw, const Descriptor& listed, bool image) {
        if (image && listed.platform) g.platforms.push_back(listed.platform->str());
        g.children.push_back(raw);
    };
    v.blob = [&](const Descriptor& b, const RawManifest&) {
        auto& into = is_foreign(b) ? g.foreign : g.blobs;
        if (std::none_of(into.begin(), into.end(), [&](const Descriptor& x) { return x.digest == b.digest; }))
            into.push_back(b);
    };
    v.bad = [](const RawManifest&, const std::string& why) { throw Error(why); };
    visit(top, v);
    return g;
}

std::vector<const Descriptor*> pick_platforms(const Index& index, const std::vector<Platform>& wanted,
                                              const std::string& what) {
    std::vector<const Descriptor*> picked;
    std::string have;
    for (const auto& c : index.manifests) {
        if (!c.platform) continue;
        have += (have.empty() ? "" : ", ") + c.platform->str();
        if (platform_matches_any(wanted, *c.platform)) picked.push_back(&c);
    }
    if (picked.empty()) {
        std::string want;
        for (const auto& p : wanted) want += (want.empty() ? "" : ", ") + p.str();
        throw Error(fmt::format("{}: no image for platform{} {} in the index (it has: {})", what,
                                wanted.size() > 1 ? "s" : "", want, have.empty() ? "none with a platform" : have));
    }
    return picked;
}

} // namespace aas::oci
