#include "aas_bundle/manifest/manifest.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace fs = std::filesystem;
using aas::manifest::ManifestError;

namespace {

struct TempManifest {
    fs::path dir;
    fs::path file;
    explicit TempManifest(const std::string& text) {
        std::string tmpl = (fs::temp_directory_path() / "aas-manifest-XXXXXX").string();
        dir = ::mkdtemp(tmpl.data());
        file = dir / "bundle.yaml";
        std::ofstream(file) << text;
    }
    ~TempManifest() { fs::remove_all(dir); }
};

std::string problems_of(const std::string& text) {
    TempManifest t(text);
    try {
        aas::manifest::load(t.file);
    } catch (const ManifestError& e) {
        return e.what();
    }
    return {};
}

} // namespace

TEST_CASE("manifest::load reads every key") {
    TempManifest t(R"(apiVersion: aas-bundle/v1
kind: Bundle
name: ai-appstore
version: 1.2.0
k8s: ../k8s
releases:
  - name: mongodb
    chart: charts/dependencies/mongodb
    namespace: ai-appstore
    values: [environments/production/mongodb-values.yaml]
  - name: ingress-nginx
    chart: charts/dependencies/ingress-nginx
manifests: [knative-operator.yaml]
images:
  - ref: docker.io/bitnami/redis:7.0.5-debian-11-r25
  - ref: ai-appstore/aas-frontend:1.2.2
    from: docker-archive:../build/aas-frontend.tar
exclude: [docker.io/library/busybox, quay.io/x/y:1]
mirrors: {docker.io: "127.0.0.1:5000", index.docker.io: "127.0.0.1:5001"}
platforms: [linux/amd64, linux/arm64/v8]
)");
    auto m = aas::manifest::load(t.file);
    CHECK(m.name == "ai-appstore");
    CHECK(m.version == "1.2.0");
    CHECK(m.k8s == (t.dir / "../k8s").lexically_normal());
    REQUIRE(m.releases.size() == 2);
    CHECK(m.releases[0].namespace_ == "ai-appstore");
    CHECK(m.releases[0].values == std::vector<std::string>{"environments/production/mongodb-values.yaml"});
    CHECK(m.releases[0].where.line == 7);
    CHECK(m.releases[1].namespace_ == "default");
    CHECK(m.plain_manifests == std::vector<std::string>{"knative-operator.yaml"});
    REQUIRE(m.images.size() == 2);
    CHECK(m.images[1].ref.str() == "docker.io/ai-appstore/aas-frontend:1.2.2");
    CHECK(m.images[1].from == "docker-archive:../build/aas-frontend.tar");
    CHECK(m.images[1].where.line == 16);
    CHECK(m.excluded(aas::ref::Reference::parse("busybox:1.36")));
    CHECK(m.excluded(aas::ref::Reference::parse("quay.io/x/y:1")));
    CHECK_FALSE(m.excluded(aas::ref::Reference::parse("quay.io/x/y:2")));
    CHECK(m.mirrors.at("docker.io") == "127.0.0.1:5001"); // index.docker.io is Docker Hub too
    REQUIRE(m.platforms.size() == 2);
    CHECK(m.platforms[1].str() == "linux/arm64/v8");
}

TEST_CASE("manifest::load accepts a bundle of images alone") {
    TempManifest t("apiVersion: aas-bundle/v1\nkind: Bundle\nname: tools\nversion: '1'\nimages: [busybox]\n");
    auto m = aas::manifest::load(t.file);
    CHECK(m.releases.empty());
    REQUIRE(m.images.size() == 1);
    CHECK(m.images[0].ref.str() == "docker.io/library/busybox:latest");
}

TEST_CASE("manifest::load reports every problem with file and line") {
    auto p = problems_of(R"(apiVersion: aas-bundle/v2
kind: Bundel
name: Bad_Name
relases: []
releases:
  - name: a
  - chart: charts/x
    name: a
  - name: b
    chart: ../outside
images:
  - ref: x/queue@sha256:v1.8.3
  - ref: ok/image:1
    from: ftp://somewhere
platforms: [linux]
)");
    CHECK(p.find("bundle.yaml:1: apiVersion \"aas-bundle/v2\" is not supported") != std::string::npos);
    CHECK(p.find("bundle.yaml:2: kind \"Bundel\" is not supported") != std::string::npos);
    CHECK(p.find("bundle.yaml:3: name \"Bad_Name\"") != std::string::npos);
    CHECK(p.find("bundle.yaml:4: unknown key \"relases\" in the bundle manifest; did you mean \"releases\"?") !=
          std::string::npos);
    CHECK(p.find("\"version\" is required") != std::string::npos);
    CHECK(p.find("release \"a\": \"chart\" is required") != std::string::npos);
    CHECK(p.find("release \"a\" is listed twice") != std::string::npos);
    CHECK(p.find("chart \"../outside\" must be a path inside the k8s folder") != std::string::npos);
    CHECK(p.find("\"k8s\" is required when releases are listed") != std::string::npos);
    CHECK(
        p.find("bundle.yaml:12: invalid image reference \"x/queue@sha256:v1.8.3\": a sha256 digest is 64 hex digits") !=
        std::string::npos);
    CHECK(p.find("bundle.yaml:14: from \"ftp://somewhere\"") != std::string::npos);
    CHECK(p.find("invalid platform \"linux\"") != std::string::npos);
}

TEST_CASE("manifest::load names unreadable and non-YAML files") {
    CHECK_THROWS_WITH_AS(aas::manifest::load("/nonexistent/bundle.yaml"),
                         doctest::Contains("cannot read the bundle manifest"), ManifestError);
    auto p = problems_of("a: [unclosed\n");
    CHECK(p.find("bundle.yaml:") != std::string::npos);
    CHECK(problems_of("- a\n- b\n").find("a bundle manifest is a YAML map") != std::string::npos);
}
