#pragma once
// Platforms ("linux/amd64", "linux/arm64/v8") and matching with variant defaults.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aas::oci {

struct Platform {
    std::string os;
    std::string architecture;
    std::string variant;
    std::string os_version;

    /// Parses "os/arch[/variant]"; architectures and variants are normalised
    /// (x86_64 -> amd64, aarch64 -> arm64, armhf -> arm/v7). Throws aas::UsageError.
    static Platform parse(std::string_view s);
    /// "linux/arm64/v8", without the variant when it is empty.
    std::string str() const;
    /// This platform with architecture and variant normalised the way containerd does:
    /// arm64 without a variant is arm64/v8, arm without a variant is arm/v7, amd64/v1 is amd64.
    Platform normalized() const;

    bool operator==(const Platform&) const = default;
};

/// True when an image for `candidate` satisfies a request for `wanted`: same OS and
/// architecture, and the same variant after normalisation.
bool platform_matches(const Platform& wanted, const Platform& candidate);

/// True when any of `wanted` matches `candidate`.
bool platform_matches_any(const std::vector<Platform>& wanted, const Platform& candidate);

} // namespace aas::oci
