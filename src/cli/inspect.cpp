// aas-bundle inspect BUNDLE [--json]: what a bundle holds, from its first entries only.

#include "commands.hpp"

#include "aas_bundle/bundle/format.hpp"
#include "aas_bundle/util/log.hpp"
#include "aas_bundle/util/strings.hpp"
#include "aas_bundle/verify/verify.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <iostream>

namespace aas::cli {
namespace {

struct InspectFlags {
    std::string bundle, key;
    bool json = false;
};

nlohmann::ordered_json to_json(const verify::Inspection& in) {
    const auto& d = in.doc;
    nlohmann::ordered_json j;
    j["name"] = d.name;
    j["version"] = d.version;
    j["created"] = d.created;
    j["tool"] = d.tool;
    j["signer"] = d.signer;
    j["signed"] = in.has_signature;
    j["signature"] = in.signature == verify::Signature::valid       ? "valid"
                     : in.signature == verify::Signature::invalid   ? "invalid"
                     : in.signature == verify::Signature::unsigned_ ? "unsigned"
                                                                    : "not checked";
    j["platforms"] = d.platforms;
    j["releases"] = nlohmann::ordered_json::array();
    for (const auto& r : d.releases)
        j["releases"].push_back(
            {{"name", r.name}, {"chart", r.chart}, {"namespace", r.namespace_}, {"values", r.values}});
    j["plain_manifests"] = d.plain_manifests;
    j["images"] = nlohmann::ordered_json::array();
    // Each image exactly as bundle.json records it: every field, same keys and order.
    for (const auto& i : d.images) j["images"].push_back(nlohmann::ordered_json::parse(bundle::image_json(i)));
    nlohmann::ordered_json parts = nlohmann::ordered_json::array();
    if (in.parts)
        for (const auto& p : in.parts->parts)
            parts.push_back({{"name", p.name}, {"size", p.size}, {"sha256", p.sha256.str()}});
    j["totals"] = {{"images", d.images.size()},
                   {"blobs", d.blobs.size()},
                   {"files", d.files.size()},
                   {"bytes_stored", in.bytes_stored},
                   {"bytes_referenced", in.bytes_referenced},
                   {"bytes_saved_by_dedup", in.bytes_saved},
                   {"archive_bytes", in.archive_size},
                   {"compressed", in.compressed},
                   {"parts", parts}};
    j["delta"] = delta_json(d, in.bytes_stored);
    return j;
}

int run(const InspectFlags& f) {
    auto in = verify::inspect(f.bundle, f.key);
    // With a key, an unauthenticated bundle is an error (stderr, exit 1); what it says of
    // itself is still shown, escaped, for the one who must decide.
    bool refused = !f.key.empty() && in.signature != verify::Signature::valid;
    if (refused)
        log::error("{}: {}", f.bundle,
                   in.signature == verify::Signature::unsigned_
                       ? fmt::format("the bundle is unsigned: it cannot be authenticated with key {}", f.key)
                       : fmt::format("the signature does not match key {}: bundle.json is not authentic", f.key));
    if (f.json) {
        std::cout << to_json(in).dump(2) << "\n";
        return refused || in.signature == verify::Signature::invalid ? failure : ok;
    }
    // Everything from bundle.json is untrusted text: control characters are printed escaped.
    auto e = [](const std::string& x) { return util::escape_control(x); };
    const auto& d = in.doc;
    std::string out;
    out += fmt::format("bundle   {} {}\n", e(d.name), e(d.version));
    out += fmt::format("created  {} by {}\n", e(d.created), d.tool.empty() ? "?" : e(d.tool));
    std::string sig;
    switch (in.signature) {
    case verify::Signature::valid:
        sig = fmt::format("signature valid for {} (contents not checked: run verify)", f.key);
        break;
    case verify::Signature::invalid:
        sig = fmt::format("signature does NOT match key {}", f.key);
        break;
    case verify::Signature::unsigned_:
        sig = "UNSIGNED";
        break;
    case verify::Signature::not_checked:
        sig = "signature not checked (give --key, or run verify)";
        break;
    }
    out += fmt::format("signer   {} ({})\n", d.signer.empty() ? "none" : e(d.signer), sig);
    if (!d.platforms.empty()) out += fmt::format("platforms {}\n", e(fmt::format("{}", fmt::join(d.platforms, ", "))));
    out += fmt::format("\nreleases, in install order:\n");
    if (d.releases.empty()) out += "  (none)\n";
    for (std::size_t i = 0; i < d.releases.size(); ++i) {
        const auto& r = d.releases[i];
        out += fmt::format("  {}. {} (chart {}, namespace {})\n", i + 1, e(r.name), e(r.chart), e(r.namespace_));
        for (const auto& v : r.values) out += fmt::format("       values {}\n", e(v));
    }
    if (!d.plain_manifests.empty())
        out += fmt::format("plain manifests: {}\n", e(fmt::format("{}", fmt::join(d.plain_manifests, ", "))));
    out += fmt::format("\nimages ({}):\n", d.images.size());
    for (const auto& i : d.images) {
        out += fmt::format("  {}  [{}]\n", e(i.ref), e(i.cls));
        if (!i.source.empty() && i.source != i.ref) out += fmt::format("      from     {}\n", e(i.source));
        out += fmt::format("      digest   {} ({}, {} bytes)\n", i.digest.str(), e(i.media_type), i.size);
        if (!i.platforms.empty())
            out += fmt::format("      platform {}\n", e(fmt::format("{}", fmt::join(i.platforms, ", "))));
        out += fmt::format("      size     {}\n", util::human_bytes(i.blob_bytes));
        for (const auto& s : i.sites)
            out += fmt::format("      rewrites {}:{} {}{}\n", e(s.file), s.line, e(s.values_path),
                               s.written.empty() ? "" : fmt::format(" (written \"{}\")", e(s.written)));
    }
    out += fmt::format("\ntotals: {} images, {} blobs, {} stored, {} saved by shared layers; archive {} ({}){}\n",
                       d.images.size(), d.blobs.size(), util::human_bytes(in.bytes_stored),
                       util::human_bytes(in.bytes_saved), util::human_bytes(in.archive_size),
                       in.compressed ? "zstd" : "tar",
                       in.parts ? fmt::format(" in {} parts", in.parts->parts.size()) : std::string());
    if (in.parts)
        for (const auto& p : in.parts->parts) out += fmt::format("  {} {}\n", e(p.name), util::human_bytes(p.size));
    out += delta_text(d, in.bytes_stored);
    std::cout << out;
    return refused || in.signature == verify::Signature::invalid ? failure : ok;
}

} // namespace

std::function<int()> install_inspect(CLI::App& app) {
    auto f = std::make_shared<InspectFlags>();
    app.add_option("bundle", f->bundle, "Bundle file, or a split bundle's .parts index or first part")->required();
    app.add_option("--key", f->key, "Also check bundle.json's signature with this public key (NAME.pub)");
    app.add_flag("--json", f->json, "Print as JSON");
    return [f] { return run(*f); };
}

} // namespace aas::cli
