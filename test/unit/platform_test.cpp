#include "aas_bundle/oci/platform.hpp"

#include "aas_bundle/util/error.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using aas::oci::Platform;
using aas::oci::platform_matches;
using aas::oci::platform_matches_any;

namespace {

Platform make(std::string os, std::string arch, std::string variant = {}, std::string os_version = {}) {
    Platform p;
    p.os = std::move(os);
    p.architecture = std::move(arch);
    p.variant = std::move(variant);
    p.os_version = std::move(os_version);
    return p;
}

} // namespace

TEST_CASE("oci::Platform::parse accepts os/arch and os/arch/variant") {
    struct Case {
        std::string input;
        std::string os, arch, variant, str;
    };
    const std::vector<Case> cases = {
        {"linux/amd64", "linux", "amd64", "", "linux/amd64"},
        {"linux/arm64/v8", "linux", "arm64", "v8", "linux/arm64/v8"},
        {"linux/arm/v7", "linux", "arm", "v7", "linux/arm/v7"},
        {"linux/arm/v6", "linux", "arm", "v6", "linux/arm/v6"},
        {"linux/arm64", "linux", "arm64", "", "linux/arm64"},
        {"linux/386", "linux", "386", "", "linux/386"},
        {"linux/s390x", "linux", "s390x", "", "linux/s390x"},
        {"linux/ppc64le", "linux", "ppc64le", "", "linux/ppc64le"},
        {"linux/riscv64", "linux", "riscv64", "", "linux/riscv64"},
        {"windows/amd64", "windows", "amd64", "", "windows/amd64"},
        // Normalised spellings of the architecture.
        {"linux/x86_64", "linux", "amd64", "", "linux/amd64"},
        {"linux/x86-64", "linux", "amd64", "", "linux/amd64"},
        {"linux/aarch64", "linux", "arm64", "", "linux/arm64"},
        {"linux/aarch64/v8", "linux", "arm64", "v8", "linux/arm64/v8"},
        {"linux/i386", "linux", "386", "", "linux/386"},
        // Bare variant numbers get their "v".
        {"linux/arm/7", "linux", "arm", "v7", "linux/arm/v7"},
        {"linux/arm64/8", "linux", "arm64", "v8", "linux/arm64/v8"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.input);
        Platform p = Platform::parse(c.input);
        CHECK(p.os == c.os);
        CHECK(p.architecture == c.arch);
        CHECK(p.variant == c.variant);
        CHECK(p.os_version.empty());
        CHECK(p.str() == c.str);
        // str() parses back to the same platform.
        CHECK(Platform::parse(p.str()) == p);
    }
}

TEST_CASE("oci::Platform::parse normalises armhf to arm v7") {
    Platform p = Platform::parse("linux/armhf");
    CHECK(p.os == "linux");
    CHECK(p.architecture == "arm");
    CHECK(platform_matches(p, make("linux", "arm", "v7")));
    CHECK_FALSE(platform_matches(p, make("linux", "arm", "v6")));
    CHECK_FALSE(platform_matches(p, make("linux", "arm64", "v8")));
    // An explicit variant is kept.
    Platform p6 = Platform::parse("linux/armhf/v6");
    CHECK(p6.architecture == "arm");
    CHECK(p6.variant == "v6");
}

TEST_CASE("oci::Platform::parse refuses malformed platforms with aas::UsageError") {
    const std::vector<std::string> bad = {
        "",
        "linux",
        "linux/",
        "/amd64",
        "/",
        "//",
        "a/b/c/d",
        "linux/arm/v7/x",
        "linux//v7",
        "linux/arm/",
        "Linux/amd64",
        "linux/AMD64",
        "linux/arm64/V8",
        "linux/amd 64",
        "linux/amd64:1",
        "linux\\amd64",
        " linux/amd64",
        "linux/amd64 ",
    };
    for (const auto& input : bad) {
        CAPTURE(input);
        CHECK_THROWS_AS((void)Platform::parse(input), aas::UsageError);
        try {
            (void)Platform::parse(input);
        } catch (const aas::UsageError& e) {
            std::string msg = e.what();
            CAPTURE(msg);
            CHECK(msg.find("invalid platform \"" + input + "\"") != std::string::npos);
        }
    }
    SUBCASE("the message says why") {
        auto message = [](const std::string& s) -> std::string {
            try {
                (void)Platform::parse(s);
            } catch (const aas::UsageError& e) {
                return e.what();
            }
            return "<no error>";
        };
        CHECK(message("linux").find("expected os/arch") != std::string::npos);
        CHECK(message("a/b/c/d").find("expected os/arch") != std::string::npos);
        CHECK(message("linux/").find("empty part") != std::string::npos);
        CHECK(message("Linux/amd64").find("'L' is not allowed") != std::string::npos);
    }
}

TEST_CASE("oci::Platform::normalized applies the containerd variant defaults") {
    struct Case {
        Platform in;
        std::string out;
    };
    const std::vector<Case> cases = {
        {make("linux", "arm64"), "linux/arm64/v8"},
        {make("linux", "aarch64"), "linux/arm64/v8"},
        {make("linux", "arm"), "linux/arm/v7"},
        {make("linux", "armhf"), "linux/arm/v7"},
        {make("linux", "armel"), "linux/arm/v6"},
        {make("linux", "arm", "v6"), "linux/arm/v6"},
        {make("linux", "arm", "5"), "linux/arm/v5"},
        {make("linux", "amd64", "v1"), "linux/amd64"},
        {make("linux", "amd64", "v3"), "linux/amd64/v3"},
        {make("linux", "x86_64"), "linux/amd64"},
        {make("linux", "i386"), "linux/386"},
        {make("linux", "s390x"), "linux/s390x"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.in.str());
        CHECK(c.in.normalized().str() == c.out);
    }
    // os.version is kept.
    CHECK(make("windows", "amd64", "", "10.0.17763").normalized().os_version == "10.0.17763");
}

TEST_CASE("oci::platform_matches") {
    struct Case {
        std::string name;
        Platform wanted, candidate;
        bool match;
    };
    const std::vector<Case> cases = {
        {"identical", make("linux", "amd64"), make("linux", "amd64"), true},
        {"arm64 == arm64/v8", make("linux", "arm64"), make("linux", "arm64", "v8"), true},
        {"arm64/v8 == arm64", make("linux", "arm64", "v8"), make("linux", "arm64"), true},
        {"arm == arm/v7", make("linux", "arm"), make("linux", "arm", "v7"), true},
        {"arm/v7 == arm", make("linux", "arm", "v7"), make("linux", "arm"), true},
        {"arm/v6 != arm/v7", make("linux", "arm", "v6"), make("linux", "arm", "v7"), false},
        {"arm/v7 != arm/v6", make("linux", "arm", "v7"), make("linux", "arm", "v6"), false},
        {"arm != arm/v6", make("linux", "arm"), make("linux", "arm", "v6"), false},
        {"arm64 != arm/v8", make("linux", "arm64", "v8"), make("linux", "arm", "v8"), false},
        {"arm64 != arm64/v9", make("linux", "arm64"), make("linux", "arm64", "v9"), false},
        {"amd64 == amd64/v1", make("linux", "amd64"), make("linux", "amd64", "v1"), true},
        {"amd64/v1 == amd64", make("linux", "amd64", "v1"), make("linux", "amd64"), true},
        {"amd64 != amd64/v3", make("linux", "amd64"), make("linux", "amd64", "v3"), false},
        {"x86_64 == amd64", make("linux", "x86_64"), make("linux", "amd64"), true},
        {"aarch64 == arm64/v8", make("linux", "aarch64"), make("linux", "arm64", "v8"), true},
        {"amd64 != arm64", make("linux", "amd64"), make("linux", "arm64"), false},
        {"amd64 != 386", make("linux", "amd64"), make("linux", "386"), false},
        {"os mismatch", make("linux", "amd64"), make("windows", "amd64"), false},
        {"os mismatch reversed", make("windows", "amd64"), make("linux", "amd64"), false},
        {"os mismatch with arm defaults", make("linux", "arm64"), make("freebsd", "arm64", "v8"), false},
        {"windows", make("windows", "amd64"), make("windows", "amd64", "", "10.0.17763.1234"), true},
        {"candidate without os", make("linux", "amd64"), make("", "amd64"), false},
    };
    for (const auto& c : cases) {
        CAPTURE(c.name);
        CHECK(platform_matches(c.wanted, c.candidate) == c.match);
    }
    SUBCASE("parsed platforms") {
        CHECK(platform_matches(Platform::parse("linux/arm64"), Platform::parse("linux/arm64/v8")));
        CHECK(platform_matches(Platform::parse("linux/aarch64"), make("linux", "arm64", "v8")));
        CHECK(platform_matches(Platform::parse("linux/x86_64"), make("linux", "amd64")));
        CHECK(platform_matches(Platform::parse("linux/amd64/v1"), make("linux", "amd64")));
        CHECK_FALSE(platform_matches(Platform::parse("linux/arm/v6"), Platform::parse("linux/arm/v7")));
        CHECK_FALSE(platform_matches(Platform::parse("windows/amd64"), Platform::parse("linux/amd64")));
    }
}

TEST_CASE("oci::platform_matches_any") {
    const std::vector<Platform> wanted = {Platform::parse("linux/amd64"), Platform::parse("linux/arm64")};
    CHECK(platform_matches_any(wanted, make("linux", "amd64")));
    CHECK(platform_matches_any(wanted, make("linux", "arm64", "v8")));
    CHECK_FALSE(platform_matches_any(wanted, make("linux", "arm", "v7")));
    CHECK_FALSE(platform_matches_any(wanted, make("windows", "amd64")));
    CHECK_FALSE(platform_matches_any({}, make("linux", "amd64")));
    CHECK(
        platform_matches_any({Platform::parse("linux/arm/v6"), Platform::parse("linux/arm/v7")}, make("linux", "arm")));
    CHECK_FALSE(
        platform_matches_any({Platform::parse("linux/arm/v6"), Platform::parse("linux/arm/v5")}, make("linux", "arm")));
}

TEST_CASE("oci::Platform::parse keeps the variant its spelling implies") {
    CHECK(Platform::parse("linux/armel").str() == "linux/arm/v6");
    CHECK(Platform::parse("linux/armhf").str() == "linux/arm/v7");
    CHECK(platform_matches(Platform::parse("linux/armel"), Platform::parse("linux/arm/v6")));
    CHECK_FALSE(platform_matches(Platform::parse("linux/armel"), Platform::parse("linux/arm/v7")));
    CHECK(Platform::parse("linux/arm64").str() == "linux/arm64"); // defaults apply when matching
}
