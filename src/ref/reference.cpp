#include "aas_bundle/ref/reference.hpp"

#include "aas_bundle/util/strings.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

// Choices where this module is stricter than github.com/distribution/reference (all of them
// refuse input that could never be pulled or pushed, and say why):
// - Digest algorithms other than sha256 and sha512 are refused ("unsupported digest
//   algorithm"), because oci::Digest can verify only those two. An algorithm that does not
//   even match the grammar `[a-z0-9]+([+._-][a-z0-9]+)*` is reported as invalid.
// - A registry port must be 1-65535, and a bracketed IPv6 literal must be a real IPv6
//   address (distribution accepts any run of hex digits and colons).
// - A first component with upper case but no "." or ":" is part of the Docker Hub path
//   (as the header says), so "Foo/bar" is refused as not lower case.
// - "registry-1.docker.io" is normalised to "docker.io" like "index.docker.io"; host
//   names are compared without regard to case.

namespace aas::ref {

namespace {

constexpr std::string_view hub_domain = "docker.io";
constexpr std::string_view official_prefix = "library/";
constexpr std::string_view default_tag = "latest";
constexpr std::size_t max_name_length = 255;
constexpr std::size_t max_tag_length = 128;
constexpr auto npos = std::string_view::npos;

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_lower(char c) {
    return c >= 'a' && c <= 'z';
}
bool is_upper(char c) {
    return c >= 'A' && c <= 'Z';
}
bool is_lower_alnum(char c) {
    return is_lower(c) || is_digit(c);
}
bool is_alnum(char c) {
    return is_lower_alnum(c) || is_upper(c);
}
bool is_lower_hex(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'f');
}
bool is_hex(char c) {
    return is_lower_hex(c) || (c >= 'A' && c <= 'F');
}

bool all_of(std::string_view s, bool (*pred)(char)) {
    return std::all_of(s.begin(), s.end(), pred);
}

/// `s` in double quotes, with quotes, backslashes and non-printable bytes escaped.
std::string quote(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20 || u >= 0x7f) {
            out += fmt::format("\\x{:02x}", u);
        } else {
            out += c;
        }
    }
    return out + '"';
}

/// One character for a message: 'x', or '\x09' when it is not printable.
std::string show_char(char c) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) return fmt::format("'\\x{:02x}'", u);
    return fmt::format("'{}'", c);
}

std::string did_you_mean(std::string_view s) {
    return fmt::format("did you mean '{}'?", s);
}

std::string format_message(const std::string& input, const std::string& reason, const std::string& hint) {
    std::string out = fmt::format("invalid image reference {}: {}", quote(input), reason);
    if (!hint.empty()) out += "; " + hint;
    return out;
}

/// The rule that makes the first name component a registry.
bool looks_like_domain(std::string_view first) {
    return first.find_first_of(".:") != npos || first == "localhost";
}

/// Error for the shape of a "/"-separated name, before its components are looked at.
std::string slash_error(std::string_view name) {
    if (name.front() == '/') return fmt::format("name {} starts with '/'", quote(name));
    if (name.back() == '/') return fmt::format("trailing '/' in name {}", quote(name));
    if (name.find("//") != npos) {
        return fmt::format("empty path component (\"//\") in name {}", quote(name));
    }
    return {};
}

/// component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
std::string component_error(std::string_view comp) {
    if (comp.empty()) return "empty path component";
    for (char c : comp) {
        if (!is_lower_alnum(c) && c != '.' && c != '_' && c != '-') {
            return fmt::format("invalid character {} in path component {}", show_char(c), quote(comp));
        }
    }
    if (!is_lower_alnum(comp.front())) {
        return fmt::format("path component {} must start with a lower-case letter or digit", quote(comp));
    }
    if (!is_lower_alnum(comp.back())) {
        return fmt::format("path component {} must end with a lower-case letter or digit", quote(comp));
    }
    for (std::size_t i = 0; i < comp.size();) {
        if (is_lower_alnum(comp[i])) {
            ++i;
            continue;
        }
        std::size_t j = i;
        while (j < comp.size() && !is_lower_alnum(comp[j])) ++j;
        auto sep = comp.substr(i, j - i);
        bool ok = sep == "." || sep == "_" || sep == "__" || sep.find_first_not_of('-') == npos;
        if (!ok) {
            return fmt::format("path component {} has an invalid separator {} (allowed: '.', "
                               "'_', '__' or dashes)",
                               quote(comp), quote(sep));
        }
        i = j;
    }
    return {};
}

/// Error for a repository path ("library/busybox"), or empty when it is valid.
std::string path_error(std::string_view path) {
    if (path.empty()) return "empty repository path";
    if (std::any_of(path.begin(), path.end(), is_upper)) {
        return "repository name must be lowercase";
    }
    if (auto e = slash_error(path); !e.empty()) return e;
    for (std::size_t start = 0;;) {
        auto end = path.find('/', start);
        auto comp = path.substr(start, end == npos ? npos : end - start);
        if (auto e = component_error(comp); !e.empty()) return e;
        if (end == npos) return {};
        start = end + 1;
    }
}

bool valid_ipv4(std::string_view s) {
    int parts = 0;
    for (std::size_t start = 0;;) {
        auto end = s.find('.', start);
        auto part = s.substr(start, end == npos ? npos : end - start);
        if (part.empty() || part.size() > 3 || !all_of(part, is_digit)) return false;
        if (util::parse_u64(part).value_or(256) > 255) return false;
        ++parts;
        if (end == npos) break;
        start = end + 1;
    }
    return parts == 4;
}

/// Counts the 16-bit groups of a ":"-separated run of IPv6 groups; -1 when malformed. A
/// dotted IPv4 address is allowed as the last field when `allow_ipv4` (it counts 2).
int ipv6_groups(std::string_view s, bool allow_ipv4) {
    if (s.empty()) return 0;
    int n = 0;
    for (std::size_t start = 0;;) {
        auto end = s.find(':', start);
        auto field = s.substr(start, end == npos ? npos : end - start);
        if (end == npos && allow_ipv4 && field.find('.') != npos) {
            return valid_ipv4(field) ? n + 2 : -1;
        }
        if (field.empty() || field.size() > 4 || !all_of(field, is_hex)) return -1;
        ++n;
        if (end == npos) return n;
        start = end + 1;
    }
}

bool valid_ipv6(std::string_view s) {
    auto gap = s.find("::");
    if (gap == npos) return ipv6_groups(s, true) == 8;
    if (s.find("::", gap + 1) != npos) return false;
    int left = ipv6_groups(s.substr(0, gap), false);
    int right = ipv6_groups(s.substr(gap + 2), true);
    return left >= 0 && right >= 0 && left + right <= 7;
}

/// host := label ( "." label )*, label := [A-Za-z0-9] ( [A-Za-z0-9-]* [A-Za-z0-9] )?
std::string host_error(std::string_view host, std::string_view registry) {
    if (host.empty()) return fmt::format("missing host in registry {}", quote(registry));
    for (char c : host) {
        if (!is_alnum(c) && c != '-' && c != '.') {
            return fmt::format("invalid character {} in registry host {}", show_char(c), quote(host));
        }
    }
    for (std::size_t start = 0;;) {
        auto end = host.find('.', start);
        auto label = host.substr(start, end == npos ? npos : end - start);
        if (label.empty()) return fmt::format("empty label in registry host {}", quote(host));
        if (label.front() == '-' || label.back() == '-') {
            return fmt::format("label {} of registry host {} must start and end with a letter "
                               "or digit",
                               quote(label), quote(host));
        }
        if (end == npos) return {};
        start = end + 1;
    }
}

/// Error for a registry "host[:port]", naming it; empty when it is valid.
std::string registry_error(std::string_view registry) {
    if (registry.empty()) return "empty registry";
    std::string_view port;
    bool has_port = false;
    if (registry.front() == '[') {
        auto close = registry.find(']');
        if (close == npos) return fmt::format("unclosed '[' in registry {}", quote(registry));
        auto ip = registry.substr(1, close - 1);
        if (!valid_ipv6(ip)) {
            return fmt::format("invalid IPv6 address {} in registry {}", quote(ip), quote(registry));
        }
        auto after = registry.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') {
                return fmt::format("unexpected {} after ']' in registry {}", show_char(after.front()), quote(registry));
            }
            has_port = true;
            port = after.substr(1);
        }
    } else {
        auto colon = registry.find(':');
        auto host = registry.substr(0, colon);
        if (colon != npos) {
            if (registry.find(':', colon + 1) != npos) {
                return fmt::format("an IPv6 address in registry {} must be in brackets, e.g. "
                                   "\"[::1]:5000\"",
                                   quote(registry));
            }
            has_port = true;
            port = registry.substr(colon + 1);
        }
        if (auto e = host_error(host, registry); !e.empty()) return e;
    }
    if (has_port) {
        if (port.empty()) return fmt::format("empty port in registry {}", quote(registry));
        if (!all_of(port, is_digit)) {
            return fmt::format("invalid port {} in registry {}", quote(port), quote(registry));
        }
        auto value = util::parse_u64(port).value_or(0);
        if (value == 0 || value > 65535) {
            return fmt::format("invalid port {} in registry {} (must be 1-65535)", quote(port), quote(registry));
        }
    }
    return {};
}

std::string name_length_error(std::size_t n) {
    if (n <= max_name_length) return {};
    return fmt::format("name is {} characters long counting the registry; the maximum is {}", n, max_name_length);
}

/// Docker Hub paths with one component are official images under "library/".
std::string hub_path(std::string_view registry, std::string_view path) {
    if (registry == hub_domain && path.find('/') == npos) {
        return std::string(official_prefix) + std::string(path);
    }
    return std::string(path);
}

/// The text a reference with these parts would be written as, for error messages.
std::string compose(std::string_view registry, std::string_view repository, std::string_view tag,
                    std::string_view digest) {
    std::string out;
    if (!registry.empty()) out = std::string(registry) + "/";
    out += repository;
    if (!tag.empty()) out += ":" + std::string(tag);
    if (!digest.empty()) out += "@" + std::string(digest);
    return out;
}

} // namespace

std::string path_component_error(std::string_view component) {
    return component_error(component);
}

ReferenceError::ReferenceError(std::string input, std::string reason, std::string hint)
    : aas::UsageError(format_message(input, reason, hint)), input_(std::move(input)), reason_(std::move(reason)),
      hint_(std::move(hint)) {}

bool is_docker_hub(std::string_view host) {
    return util::iequals(host, "docker.io") || util::iequals(host, "index.docker.io") ||
           util::iequals(host, "registry-1.docker.io");
}

// A registry that reads as a path component ("myhost") is refused: a reference built on it
// would be taken for a Docker Hub repository.
void validate_registry(std::string_view registry) {
    std::string reason = registry_error(registry);
    if (reason.empty() && !looks_like_domain(registry)) {
        reason = fmt::format("registry {} must contain '.' or ':' or be \"localhost\"; "
                             "otherwise it reads as a Docker Hub path",
                             quote(registry));
    }
    if (!reason.empty()) throw ReferenceError(std::string(registry), reason);
}

std::string tag_error(std::string_view tag) {
    if (tag.empty()) return "tag is empty";
    for (char c : tag) {
        if (!is_alnum(c) && c != '_' && c != '.' && c != '-') {
            return fmt::format("invalid character {} in tag {}", show_char(c), quote(tag));
        }
    }
    if (tag.front() == '.' || tag.front() == '-') {
        return fmt::format("tag {} must start with a letter, digit or '_'", quote(tag));
    }
    if (tag.size() > max_tag_length) {
        return fmt::format("tag is {} characters long; the maximum is {}", tag.size(), max_tag_length);
    }
    return {};
}

std::string digest_error(std::string_view digest) {
    if (digest.empty()) return "digest is empty";
    auto colon = digest.find(':');
    if (colon == npos) {
        return fmt::format("digest {} has no algorithm (expected \"sha256:<64 hex digits>\")", quote(digest));
    }
    auto alg = digest.substr(0, colon);
    auto hex = digest.substr(colon + 1);
    std::size_t want = alg == "sha256" ? 64 : alg == "sha512" ? 128 : 0;
    if (want != 0) {
        if (hex.size() == want && all_of(hex, is_lower_hex)) return {};
        if (hex.size() == want && all_of(hex, is_hex)) {
            return fmt::format("a {} digest is {} lower-case hex digits", alg, want);
        }
        return fmt::format("a {} digest is {} hex digits", alg, want);
    }
    // Algorithm grammar of the distribution spec: [a-z0-9]+ ( [+._-] [a-z0-9]+ )*
    bool valid_alg = !alg.empty() && is_lower_alnum(alg.front()) && is_lower_alnum(alg.back());
    for (std::size_t i = 0; valid_alg && i < alg.size(); ++i) {
        char c = alg[i];
        bool sep = c == '+' || c == '.' || c == '_' || c == '-';
        valid_alg = is_lower_alnum(c) || (sep && is_lower_alnum(alg[i + 1]));
    }
    if (!valid_alg) {
        if (util::iequals(alg, "sha256") || util::iequals(alg, "sha512")) {
            return fmt::format("digest algorithm {} must be lower case", quote(alg));
        }
        return fmt::format("invalid digest algorithm {}", quote(alg));
    }
    return fmt::format("unsupported digest algorithm {} (supported: sha256, sha512)", quote(alg));
}

namespace {

// An input cut at its separators, without checks: "@" starts the digest (no other part may
// contain it); a ":" after the last "/" starts the tag, one before it belongs to a registry
// port; the first component is the registry when it looks like a host. Views into the input.
struct Pieces {
    std::string_view name, tag, digest;
    std::string_view domain, path; // name = [domain "/"] path
    bool has_colon = false;
    bool has_at = false;
};

Pieces cut(std::string_view input) {
    Pieces p;
    std::string_view rest = input;
    auto at = input.find('@');
    p.has_at = at != npos;
    if (p.has_at) {
        rest = input.substr(0, at);
        p.digest = input.substr(at + 1);
    }
    p.name = rest;
    auto last_slash = rest.rfind('/');
    auto colon = rest.rfind(':');
    p.has_colon = colon != npos && (last_slash == npos || colon > last_slash);
    if (p.has_colon) {
        p.name = rest.substr(0, colon);
        p.tag = rest.substr(colon + 1);
    }
    p.path = p.name;
    auto first_slash = p.name.find('/');
    if (first_slash != npos && looks_like_domain(p.name.substr(0, first_slash))) {
        p.domain = p.name.substr(0, first_slash);
        p.path = p.name.substr(first_slash + 1);
    }
    return p;
}

// The hint for a path that is not valid: the input with the path in lower case, or a digest
// written with ':' instead of '@'; "" when neither fits.
std::string path_hint(std::string_view input, const Pieces& p) {
    // path is a view into input, so its offset rebuilds the input around a fixed path.
    auto offset = static_cast<std::size_t>(p.path.data() - input.data());
    std::string lowered = util::to_lower(p.path);
    std::size_t seg_start = p.path.rfind('/') == npos ? 0 : p.path.rfind('/') + 1;
    auto seg_colon = p.path.find(':', seg_start);
    if (lowered != p.path && path_error(lowered).empty()) {
        return did_you_mean(std::string(input.substr(0, offset)) + lowered +
                            std::string(input.substr(offset + p.path.size())));
    }
    if (seg_colon != npos && p.has_colon && !p.has_at) {
        // "x/queue:sha256:<hex>": a digest written with ':' instead of '@'.
        auto candidate = std::string(p.path.substr(seg_colon + 1)) + ":" + std::string(p.tag);
        if (digest_error(candidate).empty()) return did_you_mean("@" + candidate);
    }
    return {};
}

// The hint for a digest that is not valid: the same in lower case, or a tag written after
// "@" ("x@sha256:v1.8.3": what follows the algorithm is a tag, not a truncated digest).
std::string digest_hint(const Pieces& p) {
    auto dcolon = p.digest.find(':');
    auto candidate = dcolon == npos ? p.digest : p.digest.substr(dcolon + 1);
    auto alg = dcolon == npos ? std::string_view{} : p.digest.substr(0, dcolon);
    bool full_upper_hex = (alg == "sha256" && candidate.size() == 64) || (alg == "sha512" && candidate.size() == 128);
    if (full_upper_hex && all_of(candidate, is_hex)) return did_you_mean("@" + util::to_lower(p.digest));
    if (!p.has_colon && tag_error(candidate).empty() && !all_of(candidate, is_hex))
        return did_you_mean(":" + std::string(candidate));
    return {};
}

// Why a valid reference is not written in its canonical form, which strict mode needs.
std::string strict_reason(const Pieces& p) {
    if (p.domain.empty()) return "no registry (strict mode needs a fully qualified reference)";
    if (!p.has_colon && !p.has_at) return "no tag or digest (strict mode needs one)";
    if (p.domain != hub_domain) return "Docker Hub must be written \"docker.io\" in strict mode";
    return "official Docker Hub images need \"library/\" in strict mode";
}

} // namespace

Reference Reference::parse(std::string_view input, ParseMode mode) {
    auto fail = [&](std::string reason, std::string hint = {}) {
        return ReferenceError(std::string(input), std::move(reason), std::move(hint));
    };
    if (input.empty()) throw fail("empty reference");
    if (mode == ParseMode::normalize && input.size() == 64 && all_of(input, is_lower_hex)) {
        throw fail("a 64-hex-digit name is an image ID, not a repository name");
    }
    const Pieces p = cut(input);
    if (p.name.empty()) {
        throw fail(fmt::format("missing repository name before '{}'", p.has_colon ? ':' : '@'));
    }
    if (auto e = slash_error(p.name); !e.empty()) throw fail(e);
    if (!p.domain.empty()) {
        if (auto e = registry_error(p.domain); !e.empty()) throw fail(e);
    }
    if (auto e = path_error(p.path); !e.empty()) throw fail(e, path_hint(input, p));
    if (p.has_colon) {
        if (p.tag.empty()) throw fail("empty tag after ':'");
        if (auto e = tag_error(p.tag); !e.empty()) throw fail(e);
    }
    if (p.has_at) {
        if (p.digest.empty()) throw fail("empty digest after '@'");
        if (auto e = digest_error(p.digest); !e.empty()) throw fail(e, digest_hint(p));
    }

    Reference ref;
    ref.registry_ = p.domain.empty() || is_docker_hub(p.domain) ? hub_domain : p.domain;
    ref.repository_ = hub_path(ref.registry_, p.path);
    ref.tag_ = p.has_colon || p.has_at ? p.tag : default_tag;
    ref.digest_ = p.digest;
    if (auto e = name_length_error(ref.name().size()); !e.empty()) throw fail(e);

    if (mode == ParseMode::strict) {
        std::string canonical = ref.str();
        if (canonical != input) throw fail(strict_reason(p), did_you_mean(canonical));
    }
    return ref;
}

std::optional<Reference> Reference::try_parse(std::string_view input, std::string* error, ParseMode mode) {
    try {
        return parse(input, mode);
    } catch (const ReferenceError& e) {
        if (error != nullptr) *error = e.what();
        return std::nullopt;
    }
}

std::string Reference::name() const {
    return registry_.empty() ? repository_ : registry_ + "/" + repository_;
}

std::string Reference::identifier() const {
    return has_digest() ? digest_ : tag_;
}

std::string Reference::str() const {
    return compose(registry_, repository_, tag_, digest_);
}

std::string Reference::familiar() const {
    if (registry_ != hub_domain) return str();
    std::string_view repo = repository_;
    if (repo.starts_with(official_prefix) && repo.find('/', official_prefix.size()) == std::string_view::npos) {
        repo.remove_prefix(official_prefix.size());
    }
    return compose({}, repo, tag_, digest_);
}

Reference Reference::with_registry(std::string_view registry) const {
    std::string shown = compose(registry, repository_, tag_, digest_);
    try {
        validate_registry(registry);
    } catch (const ReferenceError& e) {
        throw ReferenceError(shown, e.reason(), e.hint());
    }
    Reference out = *this;
    out.registry_ = is_docker_hub(registry) ? hub_domain : registry;
    out.repository_ = hub_path(out.registry_, repository_);
    if (auto e = name_length_error(out.name().size()); !e.empty()) throw ReferenceError(shown, e);
    return out;
}

Reference Reference::with_repository(std::string_view repository) const {
    std::string shown = compose(registry_, repository, tag_, digest_);
    if (auto e = path_error(repository); !e.empty()) throw ReferenceError(shown, e);
    Reference out = *this;
    out.repository_ = hub_path(registry_, repository);
    if (auto e = name_length_error(out.name().size()); !e.empty()) throw ReferenceError(shown, e);
    return out;
}

Reference Reference::with_tag(std::string_view tag) const {
    if (auto e = tag_error(tag); !e.empty()) {
        throw ReferenceError(compose(registry_, repository_, tag, digest_), e);
    }
    Reference out = *this;
    out.tag_ = tag;
    return out;
}

Reference Reference::with_digest(std::string_view digest) const {
    if (auto e = digest_error(digest); !e.empty()) {
        throw ReferenceError(compose(registry_, repository_, tag_, digest), e);
    }
    Reference out = *this;
    out.digest_ = digest;
    return out;
}

// Dropping the only identifier is refused: parse never yields a reference without a tag or
// a digest, and str() of one would read back with ":latest".
Reference Reference::without_tag() const {
    if (has_tag() && !has_digest()) {
        throw ReferenceError(str(), "removing the tag would leave neither tag nor digest");
    }
    Reference out = *this;
    out.tag_.clear();
    return out;
}

Reference Reference::without_digest() const {
    if (has_digest() && !has_tag()) {
        throw ReferenceError(str(), "removing the digest would leave neither tag nor digest");
    }
    Reference out = *this;
    out.digest_.clear();
    return out;
}

} // namespace aas::ref
