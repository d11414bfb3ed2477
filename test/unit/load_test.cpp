// Target names of load (the deployment guide's <registry-url>/<repository>/<image-name>).

#include "aas_bundle/load/load.hpp"

#include <doctest/doctest.h>

using namespace aas;

namespace {
std::string target(const std::string& src, const std::string& reg, bool flatten = false) {
    return load::target_for(ref::Reference::parse(src), reg, flatten).str();
}
const std::string hex64(64, 'a');
} // namespace

TEST_CASE("load::target_for keeps the repository path under the registry and prefix") {
    CHECK(target("docker.io/bitnami/mongodb:6.0.3-debian-11-r9", "reg.local:5000/ai-appstore") ==
          "reg.local:5000/ai-appstore/bitnami/mongodb:6.0.3-debian-11-r9");
    CHECK(target("gcr.io/knative-releases/knative.dev/serving/cmd/queue@sha256:" + hex64, "reg.local/ai") ==
          "reg.local/ai/knative-releases/knative.dev/serving/cmd/queue@sha256:" + hex64);
    CHECK(target("busybox", "reg.local") == "reg.local/library/busybox:latest");
    CHECK(target("registry.k8s.io/ingress-nginx/controller:v1.5.1@sha256:" + hex64, "10.0.0.5:443/a/b/") ==
          "10.0.0.5:443/a/b/ingress-nginx/controller:v1.5.1@sha256:" + hex64);
}

TEST_CASE("load::target_for --flatten keeps the last path component") {
    CHECK(target("docker.io/bitnami/mongodb:6.0.3", "reg.local/ai", true) == "reg.local/ai/mongodb:6.0.3");
    CHECK(target("gcr.io/a/b/c/queue:v1", "reg.local", true) == "reg.local/queue:v1");
}

TEST_CASE("load::target_for refuses what cannot be a target") {
    CHECK_THROWS_AS(target("busybox", ""), UsageError);
    CHECK_THROWS_AS(target("busybox", "/prefix"), UsageError);
    CHECK_THROWS_AS(target("busybox", "reg.local/UPPER"), UsageError);
    CHECK_THROWS_AS(target("busybox", "bad host!/x"), Error);
}

TEST_CASE("load::digest_tag") {
    CHECK(load::digest_tag("sha256:" + hex64) == "sha256-" + hex64);
}
