// aas-bundle inventory --registry HOST[:PORT][/PREFIX] --from-lock images.lock.json -o inventory.json:
// what the private registry holds for a set of images, for `pack --have` (delta bundles).

#include "commands.hpp"

#include "aas_bundle/delta/inventory.hpp"
#include "aas_bundle/signing/signing.hpp"
#include "aas_bundle/util/log.hpp"
#include "aas_bundle/util/strings.hpp"

#include <fmt/format.h>

#include <iostream>

namespace aas::cli {
namespace {

struct InventoryFlags {
    std::string registry, output, key, registry_config;
    std::vector<std::string> locks;
    bool json = false;
    RegistryFlags reg;
};

int run(InventoryFlags& f) {
    require_option(f.output, "inventory", "-o/--output FILE (the inventory.json to write)");
    if (f.locks.empty()) throw UsageError("inventory needs --from-lock images.lock.json (what a load wrote)");
    if (f.registry.find("://") != std::string::npos)
        throw UsageError(fmt::format("--registry \"{}\": give HOST[:PORT][/PREFIX] without a scheme", f.registry));
    if (!f.key.empty()) {
        try {
            signing::sign(f.key, "check"); // a public key, or no key, is refused before the registry is asked
        } catch (const Error& e) {
            throw UsageError(
                fmt::format("--key {}: {} (inventory signs with the offline side's PRIVATE key)", f.key, e.what()));
        }
    }
    std::vector<delta::Wanted> wanted;
    std::vector<delta::From> from;
    for (const auto& l : f.locks) {
        delta::From fr;
        auto w = delta::read_lock(l, f.registry, fr);
        wanted.insert(wanted.end(), w.begin(), w.end());
        from.push_back(std::move(fr));
    }
    std::string password;
    if (f.reg.password_stdin) password = read_password_stdin();
    std::string host = f.registry.substr(0, f.registry.find('/'));
    Warnings client_warnings;
    registry::Client client(host, make_options(f.reg, host, f.registry_config, password, client_warnings));
    std::vector<std::string> warnings;
    client.ping();
    auto inv = delta::collect(client, f.registry, wanted, std::move(from), -1, warnings);
    delta::write(f.output, inv, f.key);
    for (const auto& w : warnings) log::warn("{}", util::escape_control(w));
    std::uint64_t bytes = 0;
    for (const auto& b : inv.blobs) bytes += static_cast<std::uint64_t>(b.size);
    if (f.json) {
        nlohmann::ordered_json j = {{"output", f.output},
                                    {"signature", f.key.empty() ? "" : f.output + std::string(delta::signature_suffix)},
                                    {"registry", inv.registry},
                                    {"prefix", inv.prefix},
                                    {"images", inv.images.size()},
                                    {"blobs", inv.blobs.size()},
                                    {"bytes", bytes},
                                    {"warnings", client_warnings.merged(warnings)}};
        std::cout << j.dump(2) << "\n";
        return ok;
    }
    std::cout << fmt::format("wrote {}: {} images, {} blobs ({}) held by {}{}\n", f.output, inv.images.size(),
                             inv.blobs.size(), util::human_bytes(bytes), f.registry,
                             f.key.empty() ? " (UNSIGNED: pack --have-key cannot check it)"
                                           : fmt::format(", signed: {}{}", f.output, delta::signature_suffix));
    return ok;
}

} // namespace

std::function<int()> install_inventory(CLI::App& app) {
    auto f = std::make_shared<InventoryFlags>();
    app.add_option("--registry", f->registry, "Private registry: HOST[:PORT][/PREFIX]")->required();
    app.add_option("--from-lock", f->locks, "images.lock.json that a load wrote (repeatable)")
        ->check(CLI::ExistingFile)
        ->allow_extra_args(false);
    app.add_option("-o,--output", f->output, "inventory.json to write (its signature beside it, .sig)");
    app.add_option("--key", f->key, "The offline side's PRIVATE key (NAME.key) that signs the inventory")
        ->check(CLI::ExistingFile);
    app.add_option("--registry-config", f->registry_config, "docker config.json with credentials")
        ->check(CLI::ExistingFile);
    app.add_option("--retries", f->reg.retries, "Retries of a failed request (backoff with jitter)")
        ->check(CLI::Range(0, 20));
    app.add_flag("--json", f->json, "Print the result as JSON");
    f->reg.add_to(app, "", "the private registry");
    return [f] { return run(*f); };
}

} // namespace aas::cli
