// aas-bundle verify BUNDLE [--key NAME.pub] [--json]: proves a bundle whole and untouched.

#include "commands.hpp"
#include "progress.hpp"

#include "aas_bundle/util/log.hpp"
#include "aas_bundle/util/strings.hpp"
#include "aas_bundle/verify/verify.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <iostream>

namespace aas::cli {
namespace {

struct VerifyFlags {
    std::string bundle, key;
    bool json = false;
    unsigned workers = 0;
};

const char* signature_word(verify::Signature s) {
    switch (s) {
    case verify::Signature::valid:
        return "valid";
    case verify::Signature::invalid:
        return "invalid";
    case verify::Signature::unsigned_:
        return "unsigned";
    case verify::Signature::not_checked:
        break;
    }
    return "not checked";
}

std::uint64_t archive_size(const std::string& path) {
    try {
        auto loc = bundle::locate(path);
        if (loc.parts) return loc.parts->size;
        std::error_code ec;
        auto n = std::filesystem::file_size(loc.whole, ec);
        return ec ? 0 : n;
    } catch (const Error&) {
        return 0; // verify names the problem
    }
}

int run(const VerifyFlags& f) {
    verify::Options o;
    o.bundle = f.bundle;
    o.key = f.key;
    o.workers = f.workers;
    Progress progress(f.json
                          ? Progress::Mode::quiet
                          : (Progress::detect() == Progress::Mode::tty ? Progress::Mode::tty : Progress::Mode::quiet),
                      "verify");
    progress.phase("verify", archive_size(f.bundle));
    o.progress = [&](std::uint64_t n) { progress.add(n, 0); };
    auto t0 = std::chrono::steady_clock::now();
    verify::Report r = verify::verify(o);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    progress.finish();

    if (f.json) {
        nlohmann::ordered_json problems = nlohmann::ordered_json::array();
        for (const auto& p : r.problems)
            problems.push_back({{"kind", p.kind}, {"subject", p.subject}, {"message", p.message}});
        nlohmann::ordered_json j = {{"bundle", r.bundle},
                                    {"ok", r.ok()},
                                    {"warnings", r.warnings},
                                    {"authentic", r.signature == verify::Signature::valid},
                                    {"signature", signature_word(r.signature)},
                                    {"signer", r.signer},
                                    {"key", f.key},
                                    {"key_fingerprint", r.key_fingerprint},
                                    {"problems", problems},
                                    {"stopped", r.stopped},
                                    {"images", r.doc ? r.doc->images.size() : 0},
                                    {"blobs_checked", r.blobs_checked},
                                    {"files_checked", r.files_checked},
                                    {"bytes_hashed", r.bytes_hashed},
                                    {"archive_bytes", r.archive_bytes},
                                    {"tar_bytes", r.tar_bytes},
                                    {"parts", r.parts},
                                    {"seconds", secs}};
        if (r.doc) {
            std::uint64_t stored = 0;
            for (const auto& b : r.doc->blobs) stored += static_cast<std::uint64_t>(b.size);
            j["delta"] = delta_json(*r.doc, stored);
        }
        std::cout << j.dump(2) << "\n";
        return r.ok() ? ok : failure;
    }

    for (const auto& w : r.warnings) log::warn("{}", util::escape_control(w));
    for (const auto& p : r.problems) log::error("{}", util::escape_control(p.message));
    std::string key = std::filesystem::path(f.key).filename().string();
    if (!r.ok()) {
        bool only_signature = std::all_of(r.problems.begin(), r.problems.end(),
                                          [](const verify::Problem& p) { return p.kind == "signature"; });
        std::cerr << fmt::format("{}: verification FAILED, {} problem{}{}\n", f.bundle, r.problems.size(),
                                 r.problems.size() == 1 ? "" : "s",
                                 only_signature ? ": bundle.json is NOT authentic, so nothing else was read"
                                 : r.stopped    ? " (reading stopped early)"
                                                : "");
        return failure;
    }
    std::cout << fmt::format("{}: intact: {} images, {} blobs and {} files checked ({} hashed{}) in {:.1f} s\n",
                             f.bundle, r.doc ? r.doc->images.size() : 0, r.blobs_checked, r.files_checked,
                             util::human_bytes(r.bytes_hashed),
                             r.parts ? fmt::format(", {} parts", r.parts) : std::string(), secs);
    if (r.doc && r.doc->is_delta()) {
        std::uint64_t stored = 0;
        for (const auto& b : r.doc->blobs) stored += static_cast<std::uint64_t>(b.size);
        std::cout << delta_text(*r.doc, stored)
                  << "  (assumed blobs are not in the bundle: load checks that the registry holds each one before it "
                     "pushes anything)\n";
    }
    if (r.signature == verify::Signature::valid) {
        std::cout << fmt::format("authentic: bundle.json is signed by {} ({})\n", key, r.key_fingerprint);
    } else if (r.signature == verify::Signature::unsigned_) {
        std::cout << "authenticity NOT checked: the bundle is unsigned (packed with --unsigned), so anyone could "
                     "have made it\n";
    } else {
        std::cout << fmt::format("authenticity NOT checked: no --key given; bundle.json says it was signed by {}. "
                                 "Run again with --key NAME.pub to prove who made it\n",
                                 r.signer.empty() ? "nobody" : util::escape_control(r.signer));
    }
    return ok;
}

} // namespace

std::function<int()> install_verify(CLI::App& app) {
    auto f = std::make_shared<VerifyFlags>();
    app.add_option("bundle", f->bundle, "Bundle file, or a split bundle's .parts index or first part")->required();
    app.add_option("--key", f->key, "Ed25519 public key (NAME.pub) that must have signed the bundle");
    app.add_option("-j,--jobs", f->workers, "Hashing threads (default: one per core)")->check(CLI::Range(1, 64));
    app.add_flag("--json", f->json, "Print the findings as JSON");
    return [f] { return run(*f); };
}

} // namespace aas::cli
