#include "commands.hpp"

#include "aas_bundle/util/error.hpp"
#include "aas_bundle/util/log.hpp"

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
        {"load", "Push a bundle's images into a private registry and rewrite the values to use it (offline side)", install_load},
    };
    return list;
}

void RegistryFlags::add_to(CLI::App& app, const std::string& prefix, const std::string& what) {
    app.add_flag("--" + prefix + "plain-http", plain_http, "Speak plain HTTP to " + what);
    app.add_flag("--" + prefix + "insecure", insecure, "Use TLS without verifying the certificate of " + what);
    app.add_option("--" + prefix + "ca-file", ca_file, "CA bundle (PEM) to verify " + what)->check(CLI::ExistingFile);
    app.add_option("--" + prefix + "username", username, "User name for " + what);
    app.add_flag("--" + prefix + "password-stdin", password_stdin, "Read the password for " + what + " from standard input");
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

registry::Options make_options(const RegistryFlags& flags, const std::string& registry,
                               const std::string& registry_config, const std::string& password) {
    registry::Options o;
    o.plain_http = flags.plain_http;
    o.insecure = flags.insecure;
    o.ca_file = flags.ca_file;
    o.max_attempts = flags.retries + 1;
    o.stall_timeout = std::chrono::seconds(flags.stall_timeout);
    o.chunk_size = flags.chunk_size;
    if (!flags.username.empty()) {
        if (!flags.password_stdin)
            throw UsageError(fmt::format("a user name is given for {} but no password: add --password-stdin", registry));
        o.credential = auth::Credential{flags.username, password};
    } else if (flags.password_stdin) {
        throw UsageError(fmt::format("--password-stdin for {} needs --username", registry));
    } else {
        auto cfg = registry_config.empty() ? auth::DockerConfig::load_default() : auth::DockerConfig::load(registry_config);
        o.credential = cfg.find(registry);
    }
    return o;
}

CLI::Option* add_option_with_alias(CLI::App& app, const std::string& names, const std::string& old,
                                   std::string& value, const std::string& help) {
    auto* main = app.add_option(names, value, help);
    app.add_option(old, value, "same as " + names)->group(""); // hidden from --help
    return main;
}

void require_option(const std::string& value, const std::string& command, const std::string& flag) {
    if (value.empty()) throw UsageError(fmt::format("{} needs {}", command, flag));
}

} // namespace aas::cli
