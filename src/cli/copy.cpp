// aas-bundle copy SRC DST: one image or index between registries, digests preserved.

#include "commands.hpp"
#include "progress.hpp"

#include "aas_bundle/copy/copy.hpp"
#include "aas_bundle/ref/reference.hpp"
#include "aas_bundle/util/log.hpp"
#include "aas_bundle/util/strings.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <iostream>

namespace aas::cli {
namespace {

struct CopyFlags {
    std::string source, target;
    RegistryFlags both, from, to;
    std::string registry_config;
    bool all_platforms = false;
    std::vector<std::string> platforms;
    int jobs = 4;
    bool json = false;
};

// True when the reference text carries its own tag or digest (after the last '/').
bool names_version(const std::string& text) {
    auto slash = text.rfind('/');
    std::string_view last = std::string_view(text).substr(slash == std::string::npos ? 0 : slash + 1);
    return last.find(':') != std::string_view::npos || last.find('@') != std::string_view::npos;
}

int run(CopyFlags& f) {
    auto from = ref::Reference::parse(f.source);
    auto to = ref::Reference::parse(f.target);
    if (f.all_platforms && !f.platforms.empty()) throw UsageError("--all-platforms and --platform exclude each other");
    if (!names_version(f.target)) {
        // The target takes the source's tag, or its digest.
        if (from.has_tag()) {
            to = to.with_tag(from.tag());
        } else if (f.platforms.empty()) {
            to = to.with_digest(from.digest()).without_tag();
        } else {
            throw UsageError(
                fmt::format("give {} a tag: one platform of {} has a digest of its own", f.target, f.source));
        }
    }
    copy::CopyOptions opts;
    for (const auto& p : f.platforms) opts.platforms.push_back(oci::Platform::parse(p));
    opts.jobs = f.jobs;

    f.from.inherit(f.both);
    f.to.inherit(f.both);
    if (f.from.password_stdin && f.to.password_stdin && f.from.username != f.to.username)
        throw UsageError("only one password can come from standard input: use a registry config for the other");
    std::string password;
    if (f.from.password_stdin || f.to.password_stdin) password = read_password_stdin();
    Warnings warnings;
    registry::Client src(from.registry(), make_options(f.from, from.registry(), f.registry_config, password, warnings));
    registry::Client dst(to.registry(), make_options(f.to, to.registry(), f.registry_config, password, warnings));

    Progress progress(f.json ? Progress::Mode::quiet : Progress::detect(), fmt::format("copy {}", from.familiar()));
    opts.on_bytes = [&](std::uint64_t pulled, std::uint64_t pushed) { progress.add(pulled, pushed); };
    opts.on_blob = [&](const oci::Descriptor& d, registry::PushOutcome o) {
        const char* what = o == registry::PushOutcome::uploaded  ? "copied"
                           : o == registry::PushOutcome::skipped ? "exists, skipped"
                                                                 : "mounted";
        progress.line(fmt::format("blob {} ({}): {}", d.digest.short_str(),
                                  util::human_bytes(static_cast<std::uint64_t>(d.size)), what));
    };
    auto t0 = std::chrono::steady_clock::now();
    auto r = copy::copy_image(src, from, dst, to, opts);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    progress.finish();
    for (const auto& w : r.warnings) log::warn("{}", w);

    if (f.json) {
        nlohmann::json j = {
            {"source", r.source},
            {"destination", r.destination},
            {"digest", r.digest.str()},
            {"media_type", r.media_type},
            {"platforms", r.platforms},
            {"manifests", r.manifests},
            {"blobs", {{"uploaded", r.blobs_uploaded}, {"skipped", r.blobs_skipped}, {"mounted", r.blobs_mounted}}},
            {"bytes_uploaded", r.bytes_uploaded},
            {"bytes_total", r.bytes_total},
            {"warnings", warnings.merged(r.warnings)},
            {"seconds", secs},
        };
        std::cout << j.dump(2) << "\n";
    } else {
        std::cout << fmt::format("copied {} -> {}\n  digest {} ({})\n  {} manifests, {} blobs uploaded ({}), {} "
                                 "already present, {} mounted, {:.1f} s\n",
                                 r.source, r.destination, r.digest.str(), r.media_type, r.manifests, r.blobs_uploaded,
                                 util::human_bytes(r.bytes_uploaded), r.blobs_skipped, r.blobs_mounted, secs);
    }
    return ok;
}

} // namespace

std::function<int()> install_copy(CLI::App& app) {
    auto f = std::make_shared<CopyFlags>();
    app.add_option("SRC", f->source, "Source image reference (tag or digest)")->required();
    app.add_option("DST", f->target, "Target reference; without a tag it takes the source's")->required();
    app.add_flag("--all-platforms", f->all_platforms, "Copy a whole index with every platform (the default)");
    app.add_option("--platform", f->platforms,
                   "Copy only the image for this platform (os/arch[/variant]) out of an index")
        ->allow_extra_args(false);
    app.add_option("-j,--jobs", f->jobs, "Blobs transferred at once")->check(CLI::Range(1, 64));
    app.add_option("--registry-config", f->registry_config, "docker config.json with credentials")
        ->check(CLI::ExistingFile);
    app.add_option("--retries", f->both.retries, "Retries of a failed request (backoff with jitter)")
        ->check(CLI::Range(0, 20));
    app.add_option("--stall-timeout", f->both.stall_timeout, "Seconds without progress before a transfer fails")
        ->check(CLI::Range(1, 3600));
    app.add_option("--chunk-size", f->both.chunk_size, "Bytes per upload request (PATCH) when pushing a blob")
        ->check(CLI::Range(std::uint64_t{64} << 10, std::uint64_t{1} << 32));
    app.add_flag("--json", f->json, "Print the result as JSON");
    f->both.add_to(app, "", "both registries");
    f->from.add_to(app, "from-", "the source registry");
    f->to.add_to(app, "to-", "the target registry");
    return [f] { return run(*f); };
}

} // namespace aas::cli
