#pragma once
// Registry credentials, docker config.json lookup, and WWW-Authenticate challenges.
//
// Where credentials come from, first match wins:
//   1. `--username U --password-stdin` on the command line (for one registry);
//   2. the `auths` section of a docker config.json: `--registry-config PATH`, else
//      `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. An entry holds
//      `auth` (base64 "user:password") or `username` + `password`, and is keyed by the
//      registry host, optionally with a scheme and path ("https://host/v1/"); Docker Hub
//      is also found under "https://index.docker.io/v1/".
//   3. a credential helper named in that config.json, as docker, oras and crane run them:
//      `credHelpers[host]` first, then `credsStore`: the program `docker-credential-NAME`
//      (found on PATH) is run with the argument `get` and the server ("host[:port]") on
//      stdin, and answers {"ServerURL","Username","Secret"} on stdout. It runs for at most
//      20 s; its own error (stderr, or stdout when it says "credentials not found") is
//      shown; its answer is never logged and the secret is registered as one. A helper
//      that has no credentials for the server, or is not installed (a warning says so),
//      falls back to `auths`.

#include "aas_bundle/util/error.hpp"
#include "aas_bundle/util/strings.hpp"

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aas::auth {

struct Credential {
    std::string username;
    std::string password;
};

/// The `auths` entries of a docker config.json.
class DockerConfig {
public:
    /// Loads `path`; throws aas::Error naming the file and the problem (unreadable, invalid
    /// JSON, an `auth` value that is not base64 "user:password").
    static DockerConfig load(const std::filesystem::path& path);
    /// Loads the default file ($DOCKER_CONFIG/config.json, ~/.docker/config.json), or an
    /// empty config when there is none.
    static DockerConfig load_default();

    /// The credential for `registry` ("host[:port]"), if any: from its credential helper
    /// when one is configured, else from `auths`. A helper that is not installed adds a
    /// line to `warnings` (and `auths` is used). Throws aas::Error naming the helper when it
    /// cannot be run, fails or times out.
    std::optional<Credential> find(std::string_view registry, std::vector<std::string>& warnings) const;
    /// The helper program that find() would run for `registry` ("" when none).
    std::string helper_for(std::string_view registry) const;

    /// Every secret found (registered with the logger so that it is never printed).
    const std::map<std::string, Credential>& entries() const { return entries_; }

private:
    std::map<std::string, Credential> entries_;       // key: normalised host[:port]
    std::string creds_store_;                         // credsStore: helper suffix for every registry
    std::map<std::string, std::string> cred_helpers_; // credHelpers: normalised host -> suffix
};

/// The helper program is not on PATH (find() then returns a warning and falls back to
/// `auths`, as a config.json copied from a desktop often names one).
class HelperNotFound : public Error {
public:
    using Error::Error;
};

/// Runs `docker-credential-NAME get` for `server` as described above. nullopt when the
/// helper says it holds no credentials for it; throws aas::Error otherwise on failure.
std::optional<Credential> run_credential_helper(const std::string& name, const std::string& server,
                                                int timeout_seconds = 20);

/// "Basic <base64(user:password)>".
std::string basic_authorization(const Credential& c);

/// Base64 is util's (one implementation for the project): auth::base64_decode takes standard
/// or URL-safe base64, padding optional, and gives nullopt on invalid input.
using util::base64_decode;
using util::base64_encode;

/// One challenge from a WWW-Authenticate header.
struct Challenge {
    std::string scheme;                        ///< lower case: "basic", "bearer"
    std::map<std::string, std::string> params; ///< keys lower case: realm, service, scope, error
};

/// Parses a WWW-Authenticate header value (RFC 7235 auth-params, quoted strings with
/// escapes). Returns every challenge found, in order.
std::vector<Challenge> parse_www_authenticate(std::string_view header);

/// A token scope: "repository:NAME:pull,push". Scopes of the same resource merge their
/// actions.
class Scopes {
public:
    void add(std::string_view scope_string); ///< adds "type:name:a,b" (several, space-separated)
    void add_repository(std::string_view repository, std::string_view actions);
    /// True when every action of `other` is already held here.
    bool covers(const Scopes& other) const;
    /// Scope strings, sorted, for the token request's `scope=` parameters.
    std::vector<std::string> strings() const;
    /// One canonical string (cache key).
    std::string key() const;
    bool empty() const { return actions_.empty(); }

private:
    std::map<std::string, std::vector<std::string>> actions_; // "type:name" -> sorted actions
};

} // namespace aas::auth
