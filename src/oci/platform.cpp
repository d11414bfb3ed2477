#include "aas_bundle/oci/platform.hpp"

#include "aas_bundle/util/error.hpp"
#include "aas_bundle/util/strings.hpp"

#include <fmt/format.h>

namespace aas::oci {

static void normalize_arch(std::string& arch, std::string& variant) {
    if (arch == "x86_64" || arch == "x86-64")
        arch = "amd64";
    else if (arch == "aarch64")
        arch = "arm64";
    else if (arch == "armhf") {
        arch = "arm";
        if (variant.empty()) variant = "v7";
    } else if (arch == "armel") {
        arch = "arm";
        if (variant.empty()) variant = "v6";
    } else if (arch == "i386")
        arch = "386";
    if (arch == "arm64" && (variant.empty() || variant == "8")) variant = "v8";
    if (arch == "arm" && variant.empty()) variant = "v7";
    if (arch == "arm" && variant.size() == 1) variant = "v" + variant;
    if (arch == "amd64" && variant == "v1") variant.clear();
}

Platform Platform::parse(std::string_view s) {
    auto parts = util::split(s, '/');
    if (parts.size() < 2 || parts.size() > 3)
        throw UsageError(fmt::format(
            "invalid platform \"{}\": expected os/arch or os/arch/variant, e.g. linux/amd64 or linux/arm64/v8", s));
    for (const auto& p : parts) {
        if (p.empty()) throw UsageError(fmt::format("invalid platform \"{}\": empty part", s));
        for (char c : p) {
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
                throw UsageError(fmt::format(
                    "invalid platform \"{}\": '{}' is not allowed (lower case letters, digits, '.', '_', '-')", s, c));
        }
    }
    Platform p;
    p.os = parts[0];
    p.architecture = parts[1];
    if (parts.size() == 3) p.variant = parts[2];
    // Normalise only the spelling of the architecture; variant defaults apply when matching.
    // Normalise the spelling; a variant implied by the spelling (armhf, armel) is kept,
    // other defaults (arm64 -> v8) apply only when matching.
    std::string variant = p.variant;
    std::string arch = p.architecture;
    normalize_arch(arch, variant);
    if (!p.variant.empty() || p.architecture == "armhf" || p.architecture == "armel") p.variant = variant;
    p.architecture = arch;
    return p;
}

std::string Platform::str() const {
    return variant.empty() ? fmt::format("{}/{}", os, architecture)
                           : fmt::format("{}/{}/{}", os, architecture, variant);
}

Platform Platform::normalized() const {
    Platform p = *this;
    normalize_arch(p.architecture, p.variant);
    return p;
}

bool platform_matches(const Platform& wanted, const Platform& candidate) {
    Platform w = wanted.normalized();
    Platform c = candidate.normalized();
    return w.os == c.os && w.architecture == c.architecture && w.variant == c.variant;
}

bool platform_matches_any(const std::vector<Platform>& wanted, const Platform& candidate) {
    for (const auto& w : wanted)
        if (platform_matches(w, candidate)) return true;
    return false;
}

} // namespace aas::oci
