#include "commands.hpp"

#include "aas_bundle/util/error.hpp"
#include "aas_bundle/util/log.hpp"
#include "aas_bundle/util/strings.hpp"

#include <fmt/format.h>

#include <iostream>
#include <iterator>

namespace aas::cli {

const std::vector<Command>& commands() {
    static const std::vector<Command> list = {
        {"images", "List every image a deployment needs (charts, values, manifests), without helm", install_images},
        {"copy", "Copy an image or index between registries, digests preserved", install_copy},
        {"keygen", "Write an Ed25519 key pair for signing bundles", install_keygen},
        {"pack", "Pack every image and the k8s folder into one signed bundle (online side)", install_pack},
        {"verify", "Prove a bundle whole and untouched: signature, every blob and file, completeness", install_verify},
        {"inspect", "Show what a bundle holds (images, releases, sizes) from its first entries", install_inspect},
        {"load", "Push a bundle's images into a private registry and rewrite the values to use it (offline side)",
         install_load},
        {"inventory", "Write what a registry holds for a set of images (inventory.json), for delta bundles",
         install_inventory},
    };
    return list;
}

void RegistryFlags::add_to(CLI::App& app, const std::string& prefix, const std::string& what) {
    app.add_flag("--" + prefix + "plain-http", plain_http, "Speak plain HTTP to " + what);
    app.add_flag("--" + prefix + "insecure", insecure, "Use TLS without verifying the certificate of " + what);
    app.add_option("--" + prefix + "ca-file", ca_file, "CA bundle (PEM) to verify " + what)->check(CLI::ExistingFile);
    app.add_option("--" + prefix + "username", username, "User name for " + what);
    app.add_flag("--" + prefix + "password-stdin", password_stdin,
                 "Read the password for " + what + " from standard input");
}

void RegistryFlags::inherit(const RegistryFlags& base) {
    plain_http = plain_http || base.plain_http;
    insecure = insecure || base.insecure;
    if (ca_file.empty()) ca_file = base.ca_file;
    if (username.empty()) username = base.username;
    password_stdin = password_stdin || base.password_stdin;
    retries = base.retries;
    stall_timeout = base.stall_timeout;
    chunk_size = base.chunk_size;
}

std::string read_password_stdin() {
    std::string s((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    if (s.empty()) throw UsageError("--password-stdin: standard input was empty");
    log::add_secret(s);
    return s;
}

void Warnings::add(const std::string& text) {
    log::warn("{}", text);
    std::lock_guard lock(mu_);
    list_.push_back(log::redact_secrets(text));
}

std::vector<std::string> Warnings::merged(const std::vector<std::string>& more) const {
    std::lock_guard lock(mu_);
    std::vector<std::string> all = list_;
    all.insert(all.end(), more.begin(), more.end());
    return all;
}

registry::Options make_options(const RegistryFlags& flags, const std::string& registry,
                               const std::string& registry_config, const std::string& password, Warnings& warnings) {
    registry::Options o;
    o.on_warning = [&warnings](const std::string& text) { warnings.add(text); };
    o.plain_http = flags.plain_http;
    o.insecure = flags.insecure;
    o.ca_file = flags.ca_file;
    o.max_attempts = flags.retries + 1;
    o.stall_timeout = std::chrono::seconds(flags.stall_timeout);
    o.chunk_size = flags.chunk_size;
    if (!flags.username.empty()) {
        if (!flags.password_stdin)
            throw UsageError(
                fmt::format("a user name is given for {} but no password: add --password-stdin", registry));
        o.credential = auth::Credential{flags.username, password};
    } else if (flags.password_stdin) {
        throw UsageError(fmt::format("--password-stdin for {} needs --username", registry));
    } else {
        auto cfg =
            registry_config.empty() ? auth::DockerConfig::load_default() : auth::DockerConfig::load(registry_config);
        std::vector<std::string> found;
        o.credential = cfg.find(registry, found);
        for (const auto& w : found) warnings.add(w);
    }
    return o;
}

CLI::Option* add_option_with_alias(CLI::App& app, const std::string& names, const std::string& old, std::string& value,
                                   const std::string& help) {
    auto* main = app.add_option(names, value, help);
    app.add_option(old, value, "same as " + names)->group(""); // hidden from --help
    return main;
}

nlohmann::ordered_json delta_json(const bundle::BundleDoc& doc, std::uint64_t stored) {
    nlohmann::ordered_json j;
    j["delta"] = doc.is_delta();
    j["bases"] = nlohmann::ordered_json::array();
    for (const auto& b : doc.base) {
        nlohmann::ordered_json o = {{"kind", b.kind}, {"sha256", b.sha256.str()}};
        if (b.kind == "inventory") {
            o["registry"] = b.registry;
            o["prefix"] = b.prefix;
        }
        j["bases"].push_back(std::move(o));
    }
    j["assumed"] = {{"blobs", doc.assumed.size()}, {"bytes", doc.assumed_bytes()}};
    j["bytes_stored"] = stored;
    j["bytes_full"] = stored + doc.assumed_bytes();
    return j;
}

std::string delta_text(const bundle::BundleDoc& doc, std::uint64_t stored) {
    if (!doc.is_delta()) return {};
    auto full = stored + doc.assumed_bytes();
    std::string s = fmt::format("delta: assumes {} blobs ({}) present in the target registry; stores {} of the full "
                                "bundle's {} ({:.1f}%)\n",
                                doc.assumed.size(), util::human_bytes(doc.assumed_bytes()), util::human_bytes(stored),
                                util::human_bytes(full),
                                full ? 100.0 * static_cast<double>(stored) / static_cast<double>(full) : 100.0);
    for (std::size_t i = 0; i < doc.base.size(); ++i) {
        const auto& b = doc.base[i];
        std::size_t n = 0;
        for (const auto& a : doc.assumed) n += a.base == i;
        s += fmt::format("  base {}: {} {}{} ({} blobs)\n", i, b.kind, b.sha256.str(),
                         b.kind == "inventory"
                             ? fmt::format(" of {}{}", util::escape_control(b.registry),
                                           b.prefix.empty() ? "" : "/" + util::escape_control(b.prefix))
                             : std::string(),
                         n);
    }
    return s;
}

void require_option(const std::string& value, const std::string& command, const std::string& flag) {
    if (value.empty()) throw UsageError(fmt::format("{} needs {}", command, flag));
}

} // namespace aas::cli
