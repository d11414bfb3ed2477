#pragma once
// Image references, parsed and printed as the distribution reference grammar and Docker do.
//
// Grammar (github.com/distribution/reference, docker's normalisation on top):
//
//   reference  := name [ ":" tag ] [ "@" digest ]
//   name       := [ domain "/" ] path
//   domain     := host [ ":" port ]           host: DNS name, "localhost", IPv4 or "[" IPv6 "]"
//   path       := component ( "/" component )*
//   component  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//   tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//   digest     := algorithm ":" hex           sha256: 64 hex digits, sha512: 128 (lower case)
//
// Rules:
// - The first "/"-separated part is a registry (domain) only if it contains "." or ":" or
//   is "localhost"; otherwise the whole name is a path on Docker Hub.
// - Docker Hub is written "docker.io" (also accepted: "index.docker.io",
//   "registry-1.docker.io", which are normalised to "docker.io"); one-component Docker
//   Hub paths get "library/" ("busybox" -> "docker.io/library/busybox").
// - No tag and no digest means tag "latest". A reference with both a tag and a digest keeps
//   both; the digest is what is pulled.
// - Upper case is refused in the path (Docker: "repository name must be lowercase"); the
//   domain may contain upper case. The whole name is at most 255 characters.
// - Strict parsing (`Reference::parse(s, ParseMode::strict)`) applies no defaulting at
//   all: the input must already carry a domain and a tag or digest.

#include "aas_bundle/util/error.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace aas::ref {

enum class ParseMode {
    normalize, ///< Docker's defaulting: docker.io, library/, :latest.
    strict,    ///< No defaulting: domain and tag-or-digest must be present.
};

/// Thrown for an invalid reference. `what()` names the input and what is wrong, e.g.
/// `invalid image reference "x/queue@sha256:v1.8.3": a sha256 digest is 64 hex digits`.
/// `reason()` is the part after the colon, and `hint()` an optional suggestion such as
/// "did you mean ':v1.8.3'?" (empty when there is none).
class ReferenceError;

class Reference {
public:
    /// Parses `input`; throws ReferenceError when it is not a valid reference.
    static Reference parse(std::string_view input, ParseMode mode = ParseMode::normalize);

    /// Like parse but returns nullopt, and the error text in `*error` when given.
    static std::optional<Reference> try_parse(std::string_view input, std::string* error = nullptr,
                                              ParseMode mode = ParseMode::normalize);

    /// Registry host with optional port: "docker.io", "localhost:5000", "[::1]:5000".
    const std::string& registry() const { return registry_; }
    /// Repository path inside the registry: "library/busybox", "bitnami/mongodb".
    const std::string& repository() const { return repository_; }
    /// Tag, empty when the reference has only a digest.
    const std::string& tag() const { return tag_; }
    /// Digest "sha256:<hex>", empty when there is none.
    const std::string& digest() const { return digest_; }

    bool has_tag() const { return !tag_.empty(); }
    bool has_digest() const { return !digest_.empty(); }

    /// "registry/repository" (e.g. "docker.io/library/busybox").
    std::string name() const;
    /// What to ask the registry for: the digest when present, otherwise the tag.
    std::string identifier() const;
    /// Full normalised string: "docker.io/library/busybox:latest",
    /// "quay.io/x/y:v1@sha256:...", "gcr.io/a/b@sha256:...".
    std::string str() const;
    /// Docker's short form: "busybox:latest" for docker.io/library/busybox:latest,
    /// "bitnami/mongodb:6.0" for Docker Hub, the full string for other registries.
    std::string familiar() const;

    /// Copies with one part replaced (validated like parse; throw ReferenceError).
    Reference with_registry(std::string_view registry) const;
    Reference with_repository(std::string_view repository) const;
    Reference with_tag(std::string_view tag) const;       ///< keeps the digest
    Reference with_digest(std::string_view digest) const; ///< keeps the tag
    Reference without_tag() const;
    Reference without_digest() const;

    bool operator==(const Reference&) const = default;
    auto operator<=>(const Reference& o) const { return str() <=> o.str(); }

private:
    std::string registry_;
    std::string repository_;
    std::string tag_;
    std::string digest_;
};

class ReferenceError : public aas::UsageError {
public:
    ReferenceError(std::string input, std::string reason, std::string hint = {});
    const std::string& input() const { return input_; }
    const std::string& reason() const { return reason_; }
    const std::string& hint() const { return hint_; }

private:
    std::string input_, reason_, hint_;
};

/// True when `host` names Docker Hub ("docker.io", "index.docker.io", "registry-1.docker.io").
bool is_docker_hub(std::string_view host);

/// Validates a registry host[:port] ("localhost:5000", "[::1]:443", "my.reg"); throws
/// ReferenceError naming it when invalid.
void validate_registry(std::string_view registry);

/// Validates one "/"-separated component of a repository path ("bitnami", "ai-appstore");
/// returns an error reason or empty when valid.
std::string path_component_error(std::string_view component);

/// Validates a tag; returns an error reason or empty when valid.
std::string tag_error(std::string_view tag);

/// Validates a digest string "alg:hex"; returns an error reason or empty when valid.
std::string digest_error(std::string_view digest);

} // namespace aas::ref
