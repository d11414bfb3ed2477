// aas-bundle load BUNDLE --registry HOST[:PORT][/PREFIX]: every image into the private
// registry, and the k8s folder rewritten to use it.

#include "commands.hpp"
#include "progress.hpp"

#include "aas_bundle/load/load.hpp"
#include "aas_bundle/util/log.hpp"
#include "aas_bundle/util/strings.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <iostream>

namespace aas::cli {
namespace {

struct LoadFlags {
    std::string bundle, registry, key, out, registry_config, inventory_key;
    bool skip_signature = false, dry_run = false, flatten = false, json = false;
    int jobs = 4;
    RegistryFlags reg;
};

int run(LoadFlags& f) {
    require_option(f.out, "load", "-o/--output DIR (the folder to write)");
    load::Options o;
    o.bundle = f.bundle;
    o.registry = f.registry;
    o.key = f.key;
    o.skip_signature = f.skip_signature;
    if (!f.key.empty() && f.skip_signature) throw UsageError("--key and --insecure-skip-signature exclude each other");
    o.out = f.out;
    o.jobs = f.jobs;
    o.dry_run = f.dry_run;
    o.flatten = f.flatten;
    o.inventory_key = f.inventory_key;
    std::string password;
    if (f.reg.password_stdin) password = read_password_stdin();
    std::string host = f.registry.substr(0, f.registry.find('/'));
    Warnings warnings;
    o.registry_options = make_options(f.reg, host, f.registry_config, password, warnings);

    Progress progress(f.json ? Progress::Mode::quiet : Progress::detect(), "load");
    o.events.line = [&](const std::string& s) { progress.line(s); };
    o.events.phase = [&](const std::string& phase, std::uint64_t total) { progress.phase(phase, total); };
    o.events.bytes = [&](std::uint64_t n) { progress.add(0, n); };
    o.events.blob = [&](const std::string& s) { progress.detail(s); };
    o.events.image = [&](const util::ImageProgress& ev) { progress.image(ev); };
    progress.verbs("pushing", "pushed", "already there");

    auto t0 = std::chrono::steady_clock::now();
    auto r = load::load(o);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    progress.finish();
    for (const auto& w : r.warnings) log::warn("{}", w);

    if (f.json) {
        nlohmann::json images = nlohmann::json::array();
        for (const auto& i : r.images)
            images.push_back(
                {{"source", i.source}, {"target", i.target}, {"digest", i.digest.str()}, {"media_type", i.media_type}});
        nlohmann::json j = {
            {"dry_run", f.dry_run},
            {"images", images},
            {"blobs", {{"uploaded", r.blobs_uploaded}, {"skipped", r.blobs_skipped}, {"mounted", r.blobs_mounted}}},
            {"manifests", {{"pushed", r.manifests_pushed}, {"skipped", r.manifests_skipped}}},
            {"bytes_uploaded", r.bytes_uploaded},
            {"changed_files", r.changed_files},
            {"delta",
             {{"delta", r.delta},
              {"assumed_blobs", r.assumed_blobs},
              {"assumed_bytes", r.assumed_bytes},
              {"assumed_present", r.assumed_present},
              {"assumed_mounts", r.assumed_mounts}}},
            {"inventory", r.inventory.string()},
            {"warnings", warnings.merged(r.warnings)},
            {"seconds", secs}};
        if (f.dry_run) j["diff"] = r.diff;
        std::cout << j.dump(2) << "\n";
        return ok;
    }
    if (f.dry_run) {
        std::cout << "Dry run: nothing was pushed or written.\n\n";
        if (r.delta)
            std::cout << fmt::format("Delta bundle: the {} blobs it assumes ({}) are in {}: {} in place, {} would be "
                                     "mounted from another repository.\n\n",
                                     r.assumed_blobs, util::human_bytes(r.assumed_bytes), f.registry, r.assumed_present,
                                     r.assumed_mounts);
        std::cout << "Would push:\n";
        for (const auto& p : r.planned_pushes) std::cout << "  " << p << "\n";
        std::cout << fmt::format("\nWould change {} files:\n", r.changed_files.size()) << r.diff;
        return ok;
    }
    std::cout << fmt::format("loaded {} images into {} in {:.1f} s\n", r.images.size(), f.registry, secs);
    std::cout << fmt::format(
        "  blobs: {} uploaded ({}), {} already there, {} mounted; manifests: {} pushed, {} already there\n",
        r.blobs_uploaded, util::human_bytes(r.bytes_uploaded), r.blobs_skipped, r.blobs_mounted, r.manifests_pushed,
        r.manifests_skipped);
    if (r.delta)
        std::cout << fmt::format("  delta: {} assumed blobs ({}) were in the registry: {} in place, {} mounted\n",
                                 r.assumed_blobs, util::human_bytes(r.assumed_bytes), r.assumed_present,
                                 r.assumed_mounts);
    std::cout << fmt::format("  wrote {}: k8s/ ({} files rewritten), images.lock.json, install.sh, inventory.json{}\n",
                             f.out, r.changed_files.size(), f.inventory_key.empty() ? " (unsigned)" : " and its .sig");
    std::cout << fmt::format("  next: {}/install.sh\n", f.out);
    return ok;
}

} // namespace

std::function<int()> install_load(CLI::App& app) {
    auto f = std::make_shared<LoadFlags>();
    app.add_option("BUNDLE", f->bundle, "The bundle (a file, its parts index or its first part)")->required();
    app.add_option("--registry", f->registry, "Private registry: HOST[:PORT][/PREFIX]")->required();
    app.add_option("--key", f->key, "The signer's public key (NAME.pub)")->check(CLI::ExistingFile);
    app.add_option("--inventory-key", f->inventory_key,
                   "The offline side's PRIVATE key (NAME.key) that signs OUT/inventory.json (for pack --have-key)")
        ->check(CLI::ExistingFile);
    app.add_flag("--insecure-skip-signature", f->skip_signature, "Load without checking who signed the bundle");
    add_option_with_alias(app, "-o,--output", "--out", f->out,
                          "Folder to write: k8s/ with rewritten image values, images.lock.json, install.sh");
    app.add_option("-j,--jobs", f->jobs, "Blobs pushed at once")->check(CLI::Range(1, 64));
    app.add_flag("--dry-run", f->dry_run, "Print every push and every values change (a diff); touch nothing");
    app.add_flag("--flatten", f->flatten, "Keep only the last path component of each repository");
    app.add_option("--registry-config", f->registry_config, "docker config.json with credentials")
        ->check(CLI::ExistingFile);
    app.add_option("--retries", f->reg.retries, "Retries of a failed request (backoff with jitter)")
        ->check(CLI::Range(0, 20));
    app.add_option("--stall-timeout", f->reg.stall_timeout, "Seconds without progress before a transfer fails")
        ->check(CLI::Range(1, 3600));
    app.add_option("--chunk-size", f->reg.chunk_size, "Bytes per upload request (PATCH) when pushing a blob")
        ->check(CLI::Range(std::uint64_t{64} << 10, std::uint64_t{1} << 32));
    app.add_flag("--json", f->json, "Print the result as JSON");
    f->reg.add_to(app, "", "the private registry");
    return [f] { return run(*f); };
}

} // namespace aas::cli
