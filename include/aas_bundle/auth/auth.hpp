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
// Credential helpers (`credsStore`, `credHelpers`) are not run; a warning says so.

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

    /// The credential for `registry` ("host[:port]"), if any.
    std::optional<Credential> find(std::string_view registry) const;

    /// Every secret found (registered with the logger so that it is never printed).
    const std::map<std::string, Credential>& entries() const { return entries_; }

private:
    std::map<std::string, Credential> entries_; // key: normalised host[:port]
};

/// "Basic <base64(user:password)>".
std::string basic_authorization(const Credential& c);

std::string base64_encode(std::string_view in);
/// Decodes standard or URL-safe base64 (padding optional); nullopt on invalid input.
std::optional<std::string> base64_decode(std::string_view in);

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
