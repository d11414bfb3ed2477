// aas-bundle pack: every image of a deployment and its k8s folder in one signed bundle.

#include "commands.hpp"
#include "progress.hpp"

#include "aas_bundle/pack/pack.hpp"
#include "aas_bundle/signing/signing.hpp"
#include "aas_bundle/util/log.hpp"
#include "aas_bundle/util/strings.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <iostream>

namespace aas::cli {
namespace {

// FAT32 holds files up to 4 GiB - 1 byte.
constexpr std::uint64_t fat32_max = (std::uint64_t{4} << 30) - 1;

struct PackFlags {
    std::string manifest_file, k8s, output, key, cache, split_size, registry_config;
    bool unsigned_ = false, json = false;
    std::vector<std::string> platforms, mirrors, classes, have;
    std::string have_key;
    bool include_possible = false;
    int jobs = 4;
    int zstd_level = 3;
    RegistryFlags reg;
};

nlohmann::json to_json(const pack::Result& r, const std::vector<std::string>& warnings, double secs) {
    nlohmann::json parts = nlohmann::json::array();
    for (const auto& p : r.written.parts)
        parts.push_back({{"name", p.name}, {"size", p.size}, {"sha256", p.sha256.str()}});
    nlohmann::json files = nlohmann::json::array();
    for (const auto& f : r.written.files) files.push_back(f.string());
    nlohmann::json images = nlohmann::json::array();
    for (const auto& i : r.doc.images)
        images.push_back({{"ref", i.ref},
                          {"digest", i.digest.str()},
                          {"media_type", i.media_type},
                          {"platforms", i.platforms},
                          {"class", i.cls},
                          {"source", i.source}});
    return {{"files", files},
            {"size", r.written.size},
            {"sha256", r.written.sha256.str()},
            {"parts", parts},
            {"images", images},
            {"blobs", r.doc.blobs.size()},
            {"bytes_stored", r.bytes_stored},
            {"bytes_referenced", r.bytes_referenced},
            {"bytes_saved_by_dedup", r.bytes_saved},
            {"bytes_downloaded", r.bytes_downloaded},
            {"bytes_from_cache", r.bytes_cached},
            {"signer", r.doc.signer},
            {"delta", r.doc.is_delta()},
            {"blobs_assumed", r.blobs_assumed},
            {"bytes_assumed", r.bytes_assumed},
            {"warnings", warnings},
            {"seconds", secs}};
}

// --class: the classes of images to pack.
std::vector<discovery::Class> classes_of(const std::vector<std::string>& names) {
    std::vector<discovery::Class> out;
    for (const auto& c : names) {
        if (c == "required")
            out.push_back(discovery::Class::required);
        else if (c == "test")
            out.push_back(discovery::Class::test);
        else if (c == "optional")
            out.push_back(discovery::Class::optional);
        else
            throw UsageError(fmt::format("--class {}: expected required, test or optional", c));
    }
    return out;
}

// --split-size: a size, or fat32.
std::uint64_t split_size_of(const std::string& flag) {
    std::uint64_t size = 0;
    if (util::iequals(flag, "fat32")) {
        size = fat32_max;
    } else if (auto n = util::parse_size(flag)) {
        size = *n;
    } else {
        throw UsageError(fmt::format("--split-size {}: expected a size such as 4095M, 2G or fat32", flag));
    }
    if (size < (std::uint64_t{1} << 20))
        throw UsageError(fmt::format("--split-size {}: parts must be at least 1 MiB", flag));
    if (size > fat32_max)
        log::warn("--split-size {}: parts of 4 GiB or more do not fit on FAT32 (use --split-size fat32, "
                  "4 GiB - 1 byte)",
                  flag);
    return size;
}

// --have (with --have-key): the bases of a delta, read before any download.
std::vector<delta::Have> haves_of(const PackFlags& f) {
    if (!f.have_key.empty() && f.have.empty())
        throw UsageError("--have-key checks the inventories of --have: give --have too");
    if (!f.have_key.empty()) {
        try {
            signing::public_fingerprint(f.have_key);
        } catch (const Error& e) {
            throw UsageError(fmt::format("--have-key {}: {}", f.have_key, e.what()));
        }
    }
    std::vector<delta::Have> out;
    for (const auto& h : f.have) {
        std::vector<std::string> warns;
        out.push_back(delta::read_have(h, f.have_key, warns));
        for (const auto& w : warns) log::warn("{}", w);
    }
    return out;
}

// The library's options from the flags, each checked (all but the registry options and
// the progress events).
pack::Options options_of(const PackFlags& f) {
    pack::Options o;
    o.manifest_file = f.manifest_file;
    o.k8s_override = f.k8s;
    o.output = f.output;
    o.key = f.key;
    o.allow_unsigned = f.unsigned_;
    if (!f.key.empty() && f.unsigned_) throw UsageError("--key and --unsigned exclude each other");
    for (const auto& p : f.platforms) o.platforms.push_back(oci::Platform::parse(p));
    o.include_possible = f.include_possible;
    if (!f.classes.empty()) o.classes = classes_of(f.classes);
    o.jobs = f.jobs;
    o.zstd_level = f.zstd_level;
    if (!f.split_size.empty()) o.split_size = split_size_of(f.split_size);
    o.cache_dir = f.cache.empty() ? pack::default_cache_dir() : std::filesystem::path(f.cache);
    for (const auto& m : f.mirrors) {
        auto eq = m.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == m.size())
            throw UsageError(
                fmt::format("--mirror {}: expected REGISTRY=HOST[:PORT][/PREFIX], e.g. docker.io=127.0.0.1:5000", m));
        o.mirrors[m.substr(0, eq)] = m.substr(eq + 1);
    }
    o.have = haves_of(f);
    return o;
}

// pack's events shown by `progress`.
void show_progress(pack::Events& events, Progress& progress) {
    events.line = [&](const std::string& s) { progress.line(s); };
    events.phase = [&](const std::string& phase, std::uint64_t total) { progress.phase(phase, total); };
    events.bytes = [&](std::uint64_t n) { progress.add(n, 0); };
    events.blob = [&](const std::string& s) { progress.detail(s); };
    events.image = [&](const util::ImageProgress& ev) { progress.image(ev); };
    progress.verbs("downloading", "downloaded", "in the cache");
}

void print_failures_json(const pack::PackError& e) {
    nlohmann::json fails = nlohmann::json::array();
    for (const auto& x : e.failures()) fails.push_back({{"image", x.image}, {"where", x.where}, {"reason", x.reason}});
    std::cout << nlohmann::json{{"failures", fails}}.dump(2) << "\n";
}

void print_result(const pack::Result& r, double secs) {
    std::cout << fmt::format("packed {} images ({} blobs, {} stored, {} saved by shared layers) in {:.1f} s\n",
                             r.doc.images.size(), r.doc.blobs.size(), util::human_bytes(r.bytes_stored),
                             util::human_bytes(r.bytes_saved), secs);
    if (r.doc.is_delta())
        std::cout << fmt::format("  delta against {} base{}: {} layers ({}) assumed present in the target registry, "
                                 "not stored\n",
                                 r.doc.base.size(), r.doc.base.size() == 1 ? "" : "s", r.blobs_assumed,
                                 util::human_bytes(r.bytes_assumed));
    std::cout << fmt::format("  downloaded {}, {} from the cache\n", util::human_bytes(r.bytes_downloaded),
                             util::human_bytes(r.bytes_cached));
    for (const auto& file : r.written.files) std::cout << fmt::format("  wrote {}\n", file.string());
    std::cout << fmt::format("  bundle {} ({}){}\n", r.written.sha256.str(), util::human_bytes(r.written.size),
                             r.doc.signer.empty() ? ", UNSIGNED" : ", signed by " + r.doc.signer);
}

int run(PackFlags& f) {
    require_option(f.manifest_file, "pack", "-f/--file MANIFEST (the bundle manifest)");
    require_option(f.output, "pack", "-o/--output BUNDLE (the bundle to write)");
    pack::Options o = options_of(f);
    std::string password;
    if (f.reg.password_stdin) password = read_password_stdin();
    Warnings warnings; // the registry clients' and the credentials' (pack::Result has pack's own)
    o.registry_options = [&](const std::string& host) {
        return make_options(f.reg, host, f.registry_config, password, warnings);
    };
    Progress progress(f.json ? Progress::Mode::quiet : Progress::detect(), "pack");
    show_progress(o.events, progress);

    auto t0 = std::chrono::steady_clock::now();
    pack::Result r;
    try {
        r = pack::pack(o);
    } catch (const pack::PackError& e) {
        progress.finish();
        if (f.json) print_failures_json(e);
        throw;
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    progress.finish();
    for (const auto& w : r.warnings) log::warn("{}", w);
    if (f.json)
        std::cout << to_json(r, warnings.merged(r.warnings), secs).dump(2) << "\n";
    else
        print_result(r, secs);
    return ok;
}

} // namespace

std::function<int()> install_pack(CLI::App& app) {
    auto f = std::make_shared<PackFlags>();
    add_option_with_alias(app, "-f,--file", "--manifest", f->manifest_file, "Bundle manifest (docs/bundle-manifest.md)")
        ->check(CLI::ExistingFile);
    add_option_with_alias(app, "-o,--output", "--out", f->output,
                          "Bundle to write (zstd-compressed when it ends in .zst)");
    app.add_option("--key", f->key, "Ed25519 private key that signs the bundle (aas-bundle keygen)")
        ->check(CLI::ExistingFile);
    app.add_flag("--unsigned", f->unsigned_, "Write a bundle without a signature (it cannot be authenticated)");
    app.add_option("--k8s", f->k8s, "k8s folder to use instead of the manifest's")->check(CLI::ExistingDirectory);
    app.add_option("--platform", f->platforms,
                   "Keep only these platforms of multi-platform images (os/arch[/variant]); "
                   "overrides the manifest's platforms")
        ->allow_extra_args(false);
    app.add_flag("--include-possible", f->include_possible,
                 "Also pack the possible images (image-like values outside image fields) their registry has");
    app.add_option("--class", f->classes, "Pack only images of these classes: required, test, optional (default: all)")
        ->allow_extra_args(false);
    app.add_option("-j,--jobs", f->jobs, "Blobs downloaded at once")->check(CLI::Range(1, 64));
    app.add_option("--split-size", f->split_size,
                   "Split the bundle into parts of this size (e.g. 2G, or fat32 for 4 GiB - 1 byte)");
    app.add_option("--cache", f->cache, "Folder of verified blobs kept between runs (default: ~/.cache/aas-bundle)");
    app.add_option("--mirror", f->mirrors, "Read REGISTRY's images from a mirror: REGISTRY=HOST[:PORT][/PREFIX]")
        ->allow_extra_args(false);
    app.add_option("--zstd-level", f->zstd_level, "zstd compression level for .zst bundles")->check(CLI::Range(1, 19));
    app.add_option("--registry-config", f->registry_config, "docker config.json with credentials")
        ->check(CLI::ExistingFile);
    app.add_option("--retries", f->reg.retries, "Retries of a failed request (backoff with jitter)")
        ->check(CLI::Range(0, 20));
    app.add_option("--stall-timeout", f->reg.stall_timeout, "Seconds without progress before a transfer fails")
        ->check(CLI::Range(1, 3600));
    app.add_option("--have", f->have,
                   "Write a delta: leave out every layer this inventory.json (from load or "
                   "'aas-bundle inventory') or old bundle lists; repeatable")
        ->check(CLI::ExistingFile)
        ->allow_extra_args(false);
    app.add_option("--have-key", f->have_key,
                   "The offline side's public key: every --have inventory's .sig must "
                   "verify with it")
        ->check(CLI::ExistingFile);
    app.add_flag("--json", f->json, "Print the result as JSON");
    f->reg.add_to(app, "", "the source registries");
    return [f] { return run(*f); };
}

} // namespace aas::cli
