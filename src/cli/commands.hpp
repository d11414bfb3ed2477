#pragma once
// The CLI: one file per subcommand (parse flags, call one library function, print).

#include "aas_bundle/bundle/format.hpp"
#include "aas_bundle/registry/client.hpp"

#include <nlohmann/json.hpp>

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace aas::cli {

/// Exit statuses shared by every command.
enum Exit : int { ok = 0, failure = 1, usage = 2 };

struct Command {
    const char* name;
    const char* summary;
    /// Adds the subcommand to `app` and returns the function that runs it after parsing.
    std::function<std::function<int()>(CLI::App& app)> install;
};

/// Every subcommand, in the order `--help` lists them.
const std::vector<Command>& commands();

/// Flags that say how to reach one registry (`prefix` "" / "from-" / "to-").
struct RegistryFlags {
    bool plain_http = false;
    bool insecure = false;
    std::string ca_file;
    std::string username;
    bool password_stdin = false;
    int retries = 4;
    int stall_timeout = 30;
    std::uint64_t chunk_size = 32u << 20;

    void add_to(CLI::App& app, const std::string& prefix, const std::string& what);
    /// Fills the defaults from `base` (the unprefixed flags) where this side set nothing.
    void inherit(const RegistryFlags& base);
};

/// The warnings the libraries hand back while a command runs (a registry client's retry
/// notices, a credential helper that is not installed): each is printed on stderr as it
/// comes (log::warn, secrets redacted) and kept, redacted, for the `--json` output's
/// "warnings" list. add() may be called from any thread.
class Warnings {
public:
    void add(const std::string& text);
    /// Every warning added so far, then `more` (the command's own result's warnings).
    std::vector<std::string> merged(const std::vector<std::string>& more = {}) const;

private:
    mutable std::mutex mu_;
    std::vector<std::string> list_;
};

/// Client options for `registry`: TLS and credentials from the flags, else from the
/// registry config (`--registry-config`, $DOCKER_CONFIG, ~/.docker/config.json). The
/// client's warnings, and those of finding the credentials, go to `warnings`.
registry::Options make_options(const RegistryFlags& flags, const std::string& registry,
                               const std::string& registry_config, const std::string& password, Warnings& warnings);

/// Reads a password from standard input (trailing newline removed); throws UsageError
/// when it is empty.
std::string read_password_stdin();

/// The flag vocabulary shared by every command (README, "Flags"): `-f, --file` names the
/// bundle manifest read, `-o, --output` the file or folder written. `old` is a former
/// spelling, kept as a hidden alias of `names` that sets the same value. A required option is checked by
/// require_option() after parsing, since either spelling satisfies it.
CLI::Option* add_option_with_alias(CLI::App& app, const std::string& names, const std::string& old, std::string& value,
                                   const std::string& help);
/// Throws UsageError("COMMAND needs FLAG …") when `value` is empty.
void require_option(const std::string& value, const std::string& command, const std::string& flag);

/// A delta bundle's assumptions (bundle.json `base` and `assumed`), for verify and inspect:
/// {"delta", "bases": [...], "assumed": {"blobs", "bytes"}, "bytes_stored", "bytes_full"}
/// (`stored`: blob bytes the bundle holds; full: stored + assumed).
nlohmann::ordered_json delta_json(const bundle::BundleDoc& doc, std::uint64_t stored);
/// The same as lines of text (untrusted text escaped), "" for a full bundle.
std::string delta_text(const bundle::BundleDoc& doc, std::uint64_t stored);

// Subcommands.
std::function<int()> install_copy(CLI::App& app);
std::function<int()> install_images(CLI::App& app);
std::function<int()> install_keygen(CLI::App& app);
std::function<int()> install_pack(CLI::App& app);
std::function<int()> install_verify(CLI::App& app);
std::function<int()> install_inspect(CLI::App& app);
std::function<int()> install_load(CLI::App& app);
std::function<int()> install_inventory(CLI::App& app);

} // namespace aas::cli
