// aas-bundle: packs a Kubernetes application and its images into one signed bundle, and
// loads it into a private registry on the other side of an air gap.

#include "commands.hpp"

#include "aas_bundle/util/error.hpp"
#include "aas_bundle/util/log.hpp"
#include "aas_bundle/util/signals.hpp"
#include "aas_bundle/util/strings.hpp"
#include "aas_bundle_version.hpp"

#include <fmt/format.h>

#include <cstring>

namespace {

std::string command_table() {
    std::string s = "Commands:\n";
    for (const auto& c : aas::cli::commands()) s += fmt::format("  {:<10} {}\n", c.name, c.summary);
    s += "\nRun 'aas-bundle COMMAND --help' for a command's flags.\n";
    return s;
}

// "did you mean" for a mistyped subcommand.
int unknown_command(const std::string& word) {
    std::string best;
    std::size_t best_d = 3;
    for (const auto& c : aas::cli::commands()) {
        auto d = aas::util::edit_distance(word, c.name);
        if (d < best_d || (std::string_view(c.name).rfind(word, 0) == 0 && !word.empty() && best.empty())) {
            best_d = d;
            best = c.name;
        }
    }
    std::string msg = fmt::format("error: unknown command '{}'", word);
    if (!best.empty()) msg += fmt::format("; did you mean '{}'?", best);
    std::fprintf(stderr, "%s\n\n%s", msg.c_str(), command_table().c_str());
    return aas::cli::usage;
}

} // namespace

int main(int argc, char** argv) {
    aas::util::install_signal_cleanup(); // first: every thread started later inherits the mask
    CLI::App app{"aas-bundle: air-gap bundles of Kubernetes applications and their images", "aas-bundle"};
    app.set_version_flag("--version", std::string("aas-bundle ") + AAS_BUNDLE_VERSION);
    app.require_subcommand(1);
    app.footer("Run 'aas-bundle COMMAND --help' for a command's flags.");
    bool verbose = false, quiet = false;
    app.add_flag("-v,--verbose", verbose, "Print debug logs (secrets are always redacted)");
    app.add_flag("-q,--quiet", quiet, "Print only warnings and errors");
    app.fallthrough();

    if (argc >= 2 && argv[1][0] != '-') {
        bool known = false;
        for (const auto& c : aas::cli::commands()) known = known || std::strcmp(c.name, argv[1]) == 0;
        if (!known) return unknown_command(argv[1]);
    }

    std::vector<std::pair<CLI::App*, std::function<int()>>> runners;
    for (const auto& c : aas::cli::commands()) {
        auto* sub = app.add_subcommand(c.name, c.summary);
        runners.emplace_back(sub, c.install(*sub));
    }

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int rc = app.exit(e);
        return rc == 0 ? aas::cli::ok : aas::cli::usage;
    }
    if (verbose) aas::log::set_level(aas::log::Level::debug);
    if (quiet) aas::log::set_level(aas::log::Level::warn);

    try {
        for (auto& [sub, run] : runners)
            if (sub->parsed()) return run();
    } catch (const aas::UsageError& e) {
        aas::log::error("{}", e.what());
        return aas::cli::usage;
    } catch (const std::exception& e) {
        aas::log::error("{}", e.what());
        return aas::cli::failure;
    }
    return aas::cli::usage;
}
