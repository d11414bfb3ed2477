// Target names of load (the deployment guide's <registry-url>/<repository>/<image-name>).

#include "aas_bundle/load/load.hpp"
#include "aas_bundle/load/mirrors.hpp"
#include "aas_bundle/util/error.hpp"

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

TEST_CASE("load::mirror_files: one configuration per runtime, the path kept") {
    aas::load::MirrorOptions o;
    o.registry = "registry.internal:5000/ai-appstore";
    auto files = aas::load::mirror_files({"docker.io", "quay.io"}, o);
    auto text = [&](const std::string& path) {
        for (const auto& f : files)
            if (f.path == path) return f.text;
        FAIL("no file " << path);
        return std::string();
    };
    auto hub = text("registries/containerd/certs.d/docker.io/hosts.toml");
    CHECK(hub.find("server = \"https://registry-1.docker.io\"") != std::string::npos);
    CHECK(hub.find("[host.\"https://registry.internal:5000/v2/ai-appstore\"]") != std::string::npos);
    CHECK(hub.find("override_path = true") != std::string::npos);
    CHECK(text("registries/containerd/certs.d/quay.io/hosts.toml").find("server = \"https://quay.io\"") !=
          std::string::npos);
    auto crio = text("registries/registries.conf.d/50-aas-bundle.conf");
    CHECK(crio.find("prefix = \"quay.io\"") != std::string::npos);
    CHECK(crio.find("location = \"registry.internal:5000/ai-appstore\"") != std::string::npos);
    CHECK(crio.find("insecure") == std::string::npos);
    auto k3s = text("registries/registries.yaml");
    CHECK(k3s.find("\"^(.*)$\": \"ai-appstore/$1\"") != std::string::npos);
    CHECK(k3s.find("configs:") == std::string::npos); // no CA, TLS verified

    o.registry = "127.0.0.1:5000";
    o.plain_http = true;
    files = aas::load::mirror_files({"docker.io"}, o);
    hub = text("registries/containerd/certs.d/docker.io/hosts.toml");
    CHECK(hub.find("[host.\"http://127.0.0.1:5000\"]") != std::string::npos);
    CHECK(hub.find("override_path") == std::string::npos);
    CHECK(text("registries/registries.conf.d/50-aas-bundle.conf").find("insecure = true") != std::string::npos);
    CHECK(text("registries/registries.yaml").find("rewrite") == std::string::npos);

    // Registry names come from the bundle: never a folder that climbs.
    CHECK_THROWS_AS(aas::load::mirror_files({".."}, o), aas::Error);
    CHECK_THROWS_AS(aas::load::mirror_files({"a/../b"}, o), aas::Error);
}
