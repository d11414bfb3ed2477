#include "aas_bundle/oci/walk.hpp"

#include "aas_bundle/util/error.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace aas::oci {

namespace {

void add_blobs(Graph& g, const ImageManifest& m) {
    for (const auto& b : blobs_of(m)) {
        auto& into = is_foreign(b) ? g.foreign : g.blobs;
        if (std::none_of(into.begin(), into.end(), [&](const Descriptor& x) { return x.digest == b.digest; }))
            into.push_back(b);
    }
}

void walk_index(Graph& g, const Index& idx, int depth, const FetchManifest& fetch) {
    if (depth > max_index_depth) throw Error(fmt::format("indexes nested more than {} deep", max_index_depth));
    for (const auto& child : idx.manifests) {
        auto raw = fetch(child);
        if (raw.digest != child.digest)
            throw Error(fmt::format("manifest {} listed by an index came back as {}", child.digest.str(),
                                    raw.digest.str()));
        auto parsed = parse(raw);
        if (auto* img = std::get_if<ImageManifest>(&parsed)) {
            add_blobs(g, *img);
            if (child.platform) g.platforms.push_back(child.platform->str());
        } else {
            walk_index(g, std::get<Index>(parsed), depth + 1, fetch);
        }
        g.children.push_back(std::move(raw));
    }
}

} // namespace

Graph walk(const RawManifest& top, const FetchManifest& fetch) {
    Graph g;
    auto parsed = parse(top);
    if (auto* img = std::get_if<ImageManifest>(&parsed))
        add_blobs(g, *img);
    else
        walk_index(g, std::get<Index>(parsed), 1, fetch);
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
