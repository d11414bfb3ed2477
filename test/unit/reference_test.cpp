#include "aas_bundle/ref/reference.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace aas::ref;

namespace {

const std::string h64 = "4ba73c697770664c1e00e9f968de14e08f606ff961c76e5d7033a4a9c593c629";
const std::string h128 = h64 + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const std::string upper64 = "4BA73C697770664C1E00E9F968DE14E08F606FF961C76E5D7033A4A9C593C629";

struct Valid {
    std::string input;
    std::string registry, repository, tag, digest;
    std::string str, familiar;
};

// Every case is parsed in normalize mode; str() must then parse strictly to the same value.
std::vector<Valid> valid_cases() {
    const std::string d = "sha256:" + h64;
    const std::string d512 = "sha512:" + h128;
    const std::string tag128(128, 't');
    const std::string long_repo(255 - 18, 'a'); // "docker.io/library/" is 18 characters
    return {
        // Docker Hub short names and normalisation.
        {"busybox", "docker.io", "library/busybox", "latest", "", "docker.io/library/busybox:latest", "busybox:latest"},
        {"busybox:1.36", "docker.io", "library/busybox", "1.36", "", "docker.io/library/busybox:1.36", "busybox:1.36"},
        {"library/busybox:1.36", "docker.io", "library/busybox", "1.36", "", "docker.io/library/busybox:1.36",
         "busybox:1.36"},
        {"docker.io/busybox", "docker.io", "library/busybox", "latest", "", "docker.io/library/busybox:latest",
         "busybox:latest"},
        {"docker.io/library/busybox:latest", "docker.io", "library/busybox", "latest", "",
         "docker.io/library/busybox:latest", "busybox:latest"},
        {"index.docker.io/library/nginx:1.23", "docker.io", "library/nginx", "1.23", "", "docker.io/library/nginx:1.23",
         "nginx:1.23"},
        {"index.docker.io/nginx", "docker.io", "library/nginx", "latest", "", "docker.io/library/nginx:latest",
         "nginx:latest"},
        {"registry-1.docker.io/bitnami/mongodb:6.0", "docker.io", "bitnami/mongodb", "6.0", "",
         "docker.io/bitnami/mongodb:6.0", "bitnami/mongodb:6.0"},
        {"Docker.IO/alpine", "docker.io", "library/alpine", "latest", "", "docker.io/library/alpine:latest",
         "alpine:latest"},
        {"bitnami/mongodb:6.0", "docker.io", "bitnami/mongodb", "6.0", "", "docker.io/bitnami/mongodb:6.0",
         "bitnami/mongodb:6.0"},
        {"a/b/c/d:e", "docker.io", "a/b/c/d", "e", "", "docker.io/a/b/c/d:e", "a/b/c/d:e"},
        {"docker.io/library/a/b", "docker.io", "library/a/b", "latest", "", "docker.io/library/a/b:latest",
         "library/a/b:latest"},
        {"a", "docker.io", "library/a", "latest", "", "docker.io/library/a:latest", "a:latest"},
        {"1/2/3", "docker.io", "1/2/3", "latest", "", "docker.io/1/2/3:latest", "1/2/3:latest"},
        // A first component without '.' or ':' is a path, even with a tag-like colon later.
        {"localhost", "docker.io", "library/localhost", "latest", "", "docker.io/library/localhost:latest",
         "localhost:latest"},
        {"localhost:5000", "docker.io", "library/localhost", "5000", "", "docker.io/library/localhost:5000",
         "localhost:5000"},
        {"gcr.io", "docker.io", "library/gcr.io", "latest", "", "docker.io/library/gcr.io:latest", "gcr.io:latest"},
        // Digests, alone and with tags.
        {"busybox@" + d, "docker.io", "library/busybox", "", d, "docker.io/library/busybox@" + d, "busybox@" + d},
        {"busybox:1.36@" + d, "docker.io", "library/busybox", "1.36", d, "docker.io/library/busybox:1.36@" + d,
         "busybox:1.36@" + d},
        {"docker.io/bitnami/mongodb:6.0@" + d, "docker.io", "bitnami/mongodb", "6.0", d,
         "docker.io/bitnami/mongodb:6.0@" + d, "bitnami/mongodb:6.0@" + d},
        {"example.com/a@" + d512, "example.com", "a", "", d512, "example.com/a@" + d512, "example.com/a@" + d512},
        // Realistic references.
        {"registry.k8s.io/ingress-nginx/controller:v1.5.1@" + d, "registry.k8s.io", "ingress-nginx/controller",
         "v1.5.1", d, "registry.k8s.io/ingress-nginx/controller:v1.5.1@" + d,
         "registry.k8s.io/ingress-nginx/controller:v1.5.1@" + d},
        {"gcr.io/knative-releases/knative.dev/serving/cmd/queue@" + d, "gcr.io",
         "knative-releases/knative.dev/serving/cmd/queue", "", d,
         "gcr.io/knative-releases/knative.dev/serving/cmd/queue@" + d,
         "gcr.io/knative-releases/knative.dev/serving/cmd/queue@" + d},
        {"quay.io/minio/minio:RELEASE.2022-12-12T19-27-27Z", "quay.io", "minio/minio", "RELEASE.2022-12-12T19-27-27Z",
         "", "quay.io/minio/minio:RELEASE.2022-12-12T19-27-27Z", "quay.io/minio/minio:RELEASE.2022-12-12T19-27-27Z"},
        {"nvcr.io/nvidia/k8s/container-toolkit:v1.11.0-ubuntu20.04", "nvcr.io", "nvidia/k8s/container-toolkit",
         "v1.11.0-ubuntu20.04", "", "nvcr.io/nvidia/k8s/container-toolkit:v1.11.0-ubuntu20.04",
         "nvcr.io/nvidia/k8s/container-toolkit:v1.11.0-ubuntu20.04"},
        {"ghcr.io/org/repo:sha-abc123", "ghcr.io", "org/repo", "sha-abc123", "", "ghcr.io/org/repo:sha-abc123",
         "ghcr.io/org/repo:sha-abc123"},
        {"sub.domain.example.com/x", "sub.domain.example.com", "x", "latest", "", "sub.domain.example.com/x:latest",
         "sub.domain.example.com/x:latest"},
        {"my-registry.io/team/app:2", "my-registry.io", "team/app", "2", "", "my-registry.io/team/app:2",
         "my-registry.io/team/app:2"},
        {"xn--bcher-kva.example/x:1", "xn--bcher-kva.example", "x", "1", "", "xn--bcher-kva.example/x:1",
         "xn--bcher-kva.example/x:1"},
        // localhost, ports, IP addresses.
        {"localhost/foo", "localhost", "foo", "latest", "", "localhost/foo:latest", "localhost/foo:latest"},
        {"localhost:5000/foo/bar:1", "localhost:5000", "foo/bar", "1", "", "localhost:5000/foo/bar:1",
         "localhost:5000/foo/bar:1"},
        {"localhost/library/busybox", "localhost", "library/busybox", "latest", "", "localhost/library/busybox:latest",
         "localhost/library/busybox:latest"},
        {"example.com:1/x", "example.com:1", "x", "latest", "", "example.com:1/x:latest", "example.com:1/x:latest"},
        {"example.com:65535/x", "example.com:65535", "x", "latest", "", "example.com:65535/x:latest",
         "example.com:65535/x:latest"},
        {"a.b1:5000/x", "a.b1:5000", "x", "latest", "", "a.b1:5000/x:latest", "a.b1:5000/x:latest"},
        {"127.0.0.1:5000/x:y", "127.0.0.1:5000", "x", "y", "", "127.0.0.1:5000/x:y", "127.0.0.1:5000/x:y"},
        {"10.0.0.1/team/app:v2", "10.0.0.1", "team/app", "v2", "", "10.0.0.1/team/app:v2", "10.0.0.1/team/app:v2"},
        {"[::1]:5000/x", "[::1]:5000", "x", "latest", "", "[::1]:5000/x:latest", "[::1]:5000/x:latest"},
        {"[::1]/x", "[::1]", "x", "latest", "", "[::1]/x:latest", "[::1]/x:latest"},
        {"[2001:db8::1]:443/ns/img:1", "[2001:db8::1]:443", "ns/img", "1", "", "[2001:db8::1]:443/ns/img:1",
         "[2001:db8::1]:443/ns/img:1"},
        {"[fe80::1:2:3:4]/a", "[fe80::1:2:3:4]", "a", "latest", "", "[fe80::1:2:3:4]/a:latest",
         "[fe80::1:2:3:4]/a:latest"},
        {"[::ffff:192.168.0.1]:5000/a@" + d, "[::ffff:192.168.0.1]:5000", "a", "", d,
         "[::ffff:192.168.0.1]:5000/a@" + d, "[::ffff:192.168.0.1]:5000/a@" + d},
        {"[2001:0db8:0000:0000:0000:ff00:0042:8329]/a", "[2001:0db8:0000:0000:0000:ff00:0042:8329]", "a", "latest", "",
         "[2001:0db8:0000:0000:0000:ff00:0042:8329]/a:latest", "[2001:0db8:0000:0000:0000:ff00:0042:8329]/a:latest"},
        {"[2001:DB8::A]/a", "[2001:DB8::A]", "a", "latest", "", "[2001:DB8::A]/a:latest", "[2001:DB8::A]/a:latest"},
        // Upper case is fine in the registry host and in tags.
        {"MyRegistry.Example.COM:8443/a/b:Tag", "MyRegistry.Example.COM:8443", "a/b", "Tag", "",
         "MyRegistry.Example.COM:8443/a/b:Tag", "MyRegistry.Example.COM:8443/a/b:Tag"},
        {"LOCALHOST.localdomain/x", "LOCALHOST.localdomain", "x", "latest", "", "LOCALHOST.localdomain/x:latest",
         "LOCALHOST.localdomain/x:latest"},
        // Separators inside path components.
        {"a__b/c.d_e-f---g:x", "docker.io", "a__b/c.d_e-f---g", "x", "", "docker.io/a__b/c.d_e-f---g:x",
         "a__b/c.d_e-f---g:x"},
        {"a---b", "docker.io", "library/a---b", "latest", "", "docker.io/library/a---b:latest", "a---b:latest"},
        {"quay.io/a.b.c/d_e", "quay.io", "a.b.c/d_e", "latest", "", "quay.io/a.b.c/d_e:latest",
         "quay.io/a.b.c/d_e:latest"},
        // Tags.
        {"x:" + tag128, "docker.io", "library/x", tag128, "", "docker.io/library/x:" + tag128, "x:" + tag128},
        {"x:_x", "docker.io", "library/x", "_x", "", "docker.io/library/x:_x", "x:_x"},
        {"x:v1.0-rc.1_build", "docker.io", "library/x", "v1.0-rc.1_build", "", "docker.io/library/x:v1.0-rc.1_build",
         "x:v1.0-rc.1_build"},
        {"x:A", "docker.io", "library/x", "A", "", "docker.io/library/x:A", "x:A"},
        // The name limit counts the normalised name: exactly 255 is allowed.
        {long_repo, "docker.io", "library/" + long_repo, "latest", "", "docker.io/library/" + long_repo + ":latest",
         long_repo + ":latest"},
    };
}

struct Invalid {
    std::string input;
    std::string reason;
    std::string hint;
};

std::vector<Invalid> invalid_cases() {
    const std::string d = "sha256:" + h64;
    const std::string long_repo(255 - 18 + 1, 'a');
    return {
        {"", "empty reference", ""},
        {"Busybox", "repository name must be lowercase", "did you mean 'busybox'?"},
        {"docker.io/Library/x:Tag", "repository name must be lowercase", "did you mean 'docker.io/library/x:Tag'?"},
        {"Foo/bar", "repository name must be lowercase", "did you mean 'foo/bar'?"},
        {"a//b", "empty path component (\"//\") in name \"a//b\"", ""},
        {"a/", "trailing '/' in name \"a/\"", ""},
        {"gcr.io/", "trailing '/' in name \"gcr.io/\"", ""},
        {"/a", "name \"/a\" starts with '/'", ""},
        {":tag", "missing repository name before ':'", ""},
        {"@sha256:abc", "missing repository name before '@'", ""},
        // A tag written where the digest goes (seen in real Knative image lists).
        {"x/queue@sha256:v1.8.3", "a sha256 digest is 64 hex digits", "did you mean ':v1.8.3'?"},
        {"gcr.io/knative-releases/knative.dev/serving/cmd/queue@sha256:v1.8.3", "a sha256 digest is 64 hex digits",
         "did you mean ':v1.8.3'?"},
        {"x:v1@sha256:v1.8.3", "a sha256 digest is 64 hex digits", ""},
        {"x@latest", "digest \"latest\" has no algorithm (expected \"sha256:<64 hex digits>\")",
         "did you mean ':latest'?"},
        {"x@sha256:abc", "a sha256 digest is 64 hex digits", ""},
        {"x@sha256:" + h64.substr(1), "a sha256 digest is 64 hex digits", ""},
        {"x@sha256:" + h64 + "0", "a sha256 digest is 64 hex digits", ""},
        {"x@sha256:" + upper64, "a sha256 digest is 64 lower-case hex digits", "did you mean '@" + d + "'?"},
        {"x@sha512:" + h64, "a sha512 digest is 128 hex digits", ""},
        {"x@md5:" + h64.substr(0, 32), "unsupported digest algorithm \"md5\" (supported: sha256, sha512)", ""},
        {"x@SHA256:" + h64, "digest algorithm \"SHA256\" must be lower case", ""},
        {"x@-sha:" + h64, "invalid digest algorithm \"-sha\"", ""},
        {"x@", "empty digest after '@'", ""},
        {"x:", "empty tag after ':'", ""},
        {"x/queue:" + d, "invalid character ':' in path component \"queue:sha256\"", "did you mean '@" + d + "'?"},
        {"ubuntu:22.04:x", "invalid character ':' in path component \"ubuntu:22.04\"", ""},
        {"-a", "path component \"-a\" must start with a lower-case letter or digit", ""},
        {"a-", "path component \"a-\" must end with a lower-case letter or digit", ""},
        {"x/.a", "path component \".a\" must start with a lower-case letter or digit", ""},
        {"a..b",
         "path component \"a..b\" has an invalid separator \"..\" (allowed: '.', '_', "
         "'__' or dashes)",
         ""},
        {"a___b",
         "path component \"a___b\" has an invalid separator \"___\" (allowed: '.', "
         "'_', '__' or dashes)",
         ""},
        {"a._b",
         "path component \"a._b\" has an invalid separator \"._\" (allowed: '.', '_', "
         "'__' or dashes)",
         ""},
        {"x:.tag", "tag \".tag\" must start with a letter, digit or '_'", ""},
        {"x:-tag", "tag \"-tag\" must start with a letter, digit or '_'", ""},
        {"x:" + std::string(129, 't'), "tag is 129 characters long; the maximum is 128", ""},
        {"x:v1!", "invalid character '!' in tag \"v1!\"", ""},
        {"busybox:1.0 ", "invalid character ' ' in tag \"1.0 \"", ""},
        {long_repo, "name is 256 characters long counting the registry; the maximum is 255", ""},
        {"my image", "invalid character ' ' in path component \"my image\"", ""},
        {" busybox", "invalid character ' ' in path component \" busybox\"", ""},
        {"x\t", "invalid character '\\x09' in path component \"x\\x09\"", ""},
        {"a/b!c", "invalid character '!' in path component \"b!c\"", ""},
        {"myreg.io:abc/x", "invalid port \"abc\" in registry \"myreg.io:abc\"", ""},
        {"myreg.io:/x", "empty port in registry \"myreg.io:\"", ""},
        {"myreg.io:70000/x",
         "invalid port \"70000\" in registry \"myreg.io:70000\" (must be "
         "1-65535)",
         ""},
        {"localhost:0/x", "invalid port \"0\" in registry \"localhost:0\" (must be 1-65535)", ""},
        {"foo_bar.io/x", "invalid character '_' in registry host \"foo_bar.io\"", ""},
        {"-reg.io/x",
         "label \"-reg\" of registry host \"-reg.io\" must start and end with a "
         "letter or digit",
         ""},
        {"reg..io/x", "empty label in registry host \"reg..io\"", ""},
        {"::1/x",
         "an IPv6 address in registry \"::1\" must be in brackets, e.g. "
         "\"[::1]:5000\"",
         ""},
        {"[::1/x", "unclosed '[' in registry \"[::1\"", ""},
        {"[::g]/x", "invalid IPv6 address \"::g\" in registry \"[::g]\"", ""},
        {"[1:2:3:4:5:6:7:8:9]/x", "invalid IPv6 address \"1:2:3:4:5:6:7:8:9\" in registry \"[1:2:3:4:5:6:7:8:9]\"", ""},
        {"[1::2::3]/x", "invalid IPv6 address \"1::2::3\" in registry \"[1::2::3]\"", ""},
        {"[::1]x/y", "unexpected 'x' after ']' in registry \"[::1]x\"", ""},
        {h64, "a 64-hex-digit name is an image ID, not a repository name", ""},
    };
}

} // namespace

TEST_CASE("ref::Reference parses and prints valid references") {
    for (const auto& c : valid_cases()) {
        CAPTURE(c.input);
        std::string error;
        auto parsed = Reference::try_parse(c.input, &error);
        REQUIRE_MESSAGE(parsed.has_value(), error);
        const Reference& r = *parsed;
        CHECK(r.registry() == c.registry);
        CHECK(r.repository() == c.repository);
        CHECK(r.tag() == c.tag);
        CHECK(r.digest() == c.digest);
        CHECK(r.has_tag() == !c.tag.empty());
        CHECK(r.has_digest() == !c.digest.empty());
        CHECK(r.name() == c.registry + "/" + c.repository);
        CHECK(r.identifier() == (c.digest.empty() ? c.tag : c.digest));
        CHECK(r.str() == c.str);
        CHECK(r.familiar() == c.familiar);
        // Round trips: the printed forms read back to the same reference.
        CHECK(Reference::parse(r.str()) == r);
        CHECK(Reference::parse(r.familiar()) == r);
        CHECK(Reference::parse(r.str(), ParseMode::strict) == r);
    }
}

TEST_CASE("ref::Reference refuses invalid references with a reason and hint") {
    for (const auto& c : invalid_cases()) {
        CAPTURE(c.input);
        bool thrown = false;
        try {
            Reference::parse(c.input);
        } catch (const ReferenceError& e) {
            thrown = true;
            CHECK(e.input() == c.input);
            CHECK(e.reason() == c.reason);
            CHECK(e.hint() == c.hint);
        }
        CHECK(thrown);
        CHECK_FALSE(Reference::try_parse(c.input).has_value());
    }
}

TEST_CASE("ref::Reference error message names the input, the reason and the hint") {
    std::string error;
    CHECK_FALSE(Reference::try_parse("x/queue@sha256:v1.8.3", &error));
    CHECK(error == "invalid image reference \"x/queue@sha256:v1.8.3\": a sha256 digest is 64 hex "
                   "digits; did you mean ':v1.8.3'?");
    CHECK_FALSE(Reference::try_parse("a//b", &error));
    CHECK(error == "invalid image reference \"a//b\": empty path component (\"//\") in name "
                   "\"a//b\"");
    CHECK_FALSE(Reference::try_parse("", &error));
    CHECK(error == "invalid image reference \"\": empty reference");
    // Quotes and control characters in the input are escaped.
    CHECK_FALSE(Reference::try_parse("a\"b\n", &error));
    CHECK(error == "invalid image reference \"a\\\"b\\x0a\": invalid character '\"' in path "
                   "component \"a\\\"b\\x0a\"");
    CHECK_THROWS_AS(Reference::parse("UPPER"), aas::UsageError);
    CHECK_THROWS_WITH_AS(Reference::parse("x@sha256:abc"),
                         "invalid image reference \"x@sha256:abc\": a sha256 digest is 64 hex "
                         "digits",
                         ReferenceError);
}

TEST_CASE("ref::Reference strict mode applies no defaulting") {
    const std::string d = "sha256:" + h64;
    const std::vector<std::string> good = {"docker.io/library/busybox:latest",
                                           "docker.io/bitnami/mongodb:6.0",
                                           "quay.io/a/b@" + d,
                                           "quay.io/a/b:1@" + d,
                                           "localhost:5000/x:1",
                                           "[::1]:5000/x:y",
                                           "GCR.io/x:1"};
    for (const auto& s : good) {
        CAPTURE(s);
        auto r = Reference::parse(s, ParseMode::strict);
        CHECK(r.str() == s);
        CHECK(r == Reference::parse(s));
    }
    const std::vector<Invalid> bad = {
        {"busybox:1", "no registry (strict mode needs a fully qualified reference)",
         "did you mean 'docker.io/library/busybox:1'?"},
        {"bitnami/mongodb@" + d, "no registry (strict mode needs a fully qualified reference)",
         "did you mean 'docker.io/bitnami/mongodb@" + d + "'?"},
        {"quay.io/a/b", "no tag or digest (strict mode needs one)", "did you mean 'quay.io/a/b:latest'?"},
        {"index.docker.io/library/x:1", "Docker Hub must be written \"docker.io\" in strict mode",
         "did you mean 'docker.io/library/x:1'?"},
        {"docker.io/x:1", "official Docker Hub images need \"library/\" in strict mode",
         "did you mean 'docker.io/library/x:1'?"},
        {"quay.io/A/b:1", "repository name must be lowercase", "did you mean 'quay.io/a/b:1'?"},
        {"quay.io/x@sha256:v1", "a sha256 digest is 64 hex digits", "did you mean ':v1'?"},
        {h64, "no registry (strict mode needs a fully qualified reference)",
         "did you mean 'docker.io/library/" + h64 + ":latest'?"},
    };
    for (const auto& c : bad) {
        CAPTURE(c.input);
        bool thrown = false;
        try {
            Reference::parse(c.input, ParseMode::strict);
        } catch (const ReferenceError& e) {
            thrown = true;
            CHECK(e.reason() == c.reason);
            CHECK(e.hint() == c.hint);
        }
        CHECK(thrown);
        std::string error;
        CHECK_FALSE(Reference::try_parse(c.input, &error, ParseMode::strict));
        CHECK(error.find(c.reason) != std::string::npos);
    }
}

TEST_CASE("ref::Reference with_* helpers replace one part") {
    const std::string d = "sha256:" + h64;
    auto r = Reference::parse("busybox:1.36");

    auto moved = r.with_registry("registry.local:5000");
    CHECK(moved.str() == "registry.local:5000/library/busybox:1.36");
    CHECK(moved.with_registry("index.docker.io").str() == "docker.io/library/busybox:1.36");
    CHECK(Reference::parse("quay.io/foo:1").with_registry("docker.io").str() == "docker.io/library/foo:1");
    CHECK(r.with_registry("[::1]:5000").str() == "[::1]:5000/library/busybox:1.36");
    CHECK(r.with_registry("localhost").str() == "localhost/library/busybox:1.36");

    CHECK(r.with_repository("mirror/busybox").str() == "docker.io/mirror/busybox:1.36");
    CHECK(r.with_repository("alpine").str() == "docker.io/library/alpine:1.36");
    CHECK(moved.with_repository("alpine").str() == "registry.local:5000/alpine:1.36");

    auto pinned = r.with_digest(d);
    CHECK(pinned.str() == "docker.io/library/busybox:1.36@" + d);
    CHECK(pinned.identifier() == d);
    CHECK(pinned.with_tag("1.37").str() == "docker.io/library/busybox:1.37@" + d);
    CHECK(pinned.without_tag().str() == "docker.io/library/busybox@" + d);
    CHECK(pinned.without_digest() == r);
    CHECK(pinned.without_tag().without_tag() == pinned.without_tag());
    CHECK(r.without_digest() == r);

    auto expect_error = [](auto&& call, const std::string& input, const std::string& reason) {
        bool thrown = false;
        try {
            call();
        } catch (const ReferenceError& e) {
            thrown = true;
            CHECK(e.input() == input);
            CHECK(e.reason() == reason);
        }
        CHECK(thrown);
    };
    expect_error([&] { (void)r.with_tag("bad tag"); }, "docker.io/library/busybox:bad tag",
                 "invalid character ' ' in tag \"bad tag\"");
    expect_error([&] { (void)r.with_tag(""); }, "docker.io/library/busybox", "tag is empty");
    expect_error([&] { (void)r.with_digest("sha256:v1"); }, "docker.io/library/busybox:1.36@sha256:v1",
                 "a sha256 digest is 64 hex digits");
    expect_error([&] { (void)r.with_repository("Mirror/x"); }, "docker.io/Mirror/x:1.36",
                 "repository name must be lowercase");
    // A repository containing ':' or '@' must not sneak a tag or digest in.
    expect_error([&] { (void)pinned.without_tag().with_repository("x/y:1"); }, "docker.io/x/y:1@" + d,
                 "invalid character ':' in path component \"y:1\"");
    expect_error([&] { (void)r.with_repository("a//b"); }, "docker.io/a//b:1.36",
                 "empty path component (\"//\") in name \"a//b\"");
    expect_error([&] { (void)r.with_repository(std::string(250, 'a')); },
                 "docker.io/" + std::string(250, 'a') + ":1.36",
                 "name is 268 characters long counting the registry; the maximum is 255");
    expect_error([&] { (void)r.with_registry("bad host"); }, "bad host/library/busybox:1.36",
                 "invalid character ' ' in registry host \"bad host\"");
    expect_error([&] { (void)r.with_registry("myhost"); }, "myhost/library/busybox:1.36",
                 "registry \"myhost\" must contain '.' or ':' or be \"localhost\"; otherwise it "
                 "reads as a Docker Hub path");
    expect_error([&] { (void)r.without_tag(); }, "docker.io/library/busybox:1.36",
                 "removing the tag would leave neither tag nor digest");
    expect_error([&] { (void)pinned.without_tag().without_digest(); }, "docker.io/library/busybox@" + d,
                 "removing the digest would leave neither tag nor digest");
}

TEST_CASE("ref::Reference ordering follows the printed form") {
    auto a = Reference::parse("alpine");
    auto b = Reference::parse("busybox");
    auto q = Reference::parse("quay.io/a/b:1");
    CHECK(a < b);
    CHECK(b < q);
    CHECK(a != b);
    CHECK(Reference::parse("docker.io/library/alpine:latest") == a);
}

TEST_CASE("ref::is_docker_hub") {
    CHECK(is_docker_hub("docker.io"));
    CHECK(is_docker_hub("index.docker.io"));
    CHECK(is_docker_hub("registry-1.docker.io"));
    CHECK(is_docker_hub("Docker.IO"));
    CHECK_FALSE(is_docker_hub("docker.io:443"));
    CHECK_FALSE(is_docker_hub("quay.io"));
    CHECK_FALSE(is_docker_hub("mirror.docker.io.example"));
    CHECK_FALSE(is_docker_hub(""));
}

TEST_CASE("ref::validate_registry") {
    for (const char* ok : {"localhost", "localhost:5000", "[::1]:443", "[::1]", "my.reg", "My.Reg.Example:8443",
                           "10.1.2.3:5000", "[2001:db8::]:5000"}) {
        CAPTURE(ok);
        CHECK_NOTHROW(validate_registry(ok));
    }
    const std::vector<std::pair<std::string, std::string>> bad = {
        {"", "empty registry"},
        {"myhost", "registry \"myhost\" must contain '.' or ':' or be \"localhost\"; otherwise "
                   "it reads as a Docker Hub path"},
        {"my_reg.io", "invalid character '_' in registry host \"my_reg.io\""},
        {"reg.io:x", "invalid port \"x\" in registry \"reg.io:x\""},
        {"reg.io:99999999999999999999999",
         "invalid port \"99999999999999999999999\" in registry \"reg.io:99999999999999999999999\" "
         "(must be 1-65535)"},
        {":5000", "missing host in registry \":5000\""},
        {"reg.io/", "invalid character '/' in registry host \"reg.io/\""},
        {"reg-.io", "label \"reg-\" of registry host \"reg-.io\" must start and end with a letter "
                    "or digit"},
        {"[]:5000", "invalid IPv6 address \"\" in registry \"[]:5000\""},
        {"[1.2.3.4]", "invalid IPv6 address \"1.2.3.4\" in registry \"[1.2.3.4]\""},
        {"[::ffff:1.2.3.256]", "invalid IPv6 address \"::ffff:1.2.3.256\" in registry "
                               "\"[::ffff:1.2.3.256]\""},
    };
    for (const auto& [registry, reason] : bad) {
        CAPTURE(registry);
        bool thrown = false;
        try {
            validate_registry(registry);
        } catch (const ReferenceError& e) {
            thrown = true;
            CHECK(e.input() == registry);
            CHECK(e.reason() == reason);
        }
        CHECK(thrown);
    }
}

TEST_CASE("ref::tag_error and ref::digest_error") {
    CHECK(tag_error("latest") == "");
    CHECK(tag_error("_") == "");
    CHECK(tag_error(std::string(128, '9')) == "");
    CHECK(tag_error("") == "tag is empty");
    CHECK(tag_error(".x") == "tag \".x\" must start with a letter, digit or '_'");
    CHECK(tag_error("a:b") == "invalid character ':' in tag \"a:b\"");
    CHECK(tag_error(std::string(129, 'a')) == "tag is 129 characters long; the maximum is 128");

    CHECK(digest_error("sha256:" + h64) == "");
    CHECK(digest_error("sha512:" + h128) == "");
    CHECK(digest_error("") == "digest is empty");
    CHECK(digest_error("sha256:") == "a sha256 digest is 64 hex digits");
    CHECK(digest_error("sha256:" + h64.substr(0, 63) + "g") == "a sha256 digest is 64 hex digits");
    CHECK(digest_error("sha256:" + upper64) == "a sha256 digest is 64 lower-case hex digits");
    CHECK(digest_error("sha512:" + h64) == "a sha512 digest is 128 hex digits");
    CHECK(digest_error("sha384:" + h128.substr(0, 96)) ==
          "unsupported digest algorithm \"sha384\" (supported: sha256, sha512)");
    CHECK(digest_error("multihash+base58:" + h64) ==
          "unsupported digest algorithm \"multihash+base58\" (supported: sha256, sha512)");
    CHECK(digest_error("a..b:" + h64) == "invalid digest algorithm \"a..b\"");
    CHECK(digest_error(":" + h64) == "invalid digest algorithm \"\"");
    CHECK(digest_error(h64) == "digest \"" + h64 + "\" has no algorithm (expected \"sha256:<64 hex digits>\")");
}
