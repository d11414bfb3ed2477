// Discovery of the pattern charts under test/data/charts (env, args, --flag=, ConfigMap text,
// split custom-resource fields, recursive merge, off-branch toYaml, untagged fallback, digest
// switch) through the library API, and their round trip through load's rewrite: after the
// rewrite, every image discovered is under the private registry. Then the public API on
// small trees written by the tests: plain manifests, a chart's values sites, the classes,
// possible images, deduplication, a bundle manifest's releases and placeholders.

#include "testing.hpp"

#include "aas_bundle/discovery/discovery.hpp"
#include "aas_bundle/manifest/manifest.hpp"
#include "aas_bundle/rewrite/rewrite.hpp"
#include "aas_bundle/util/error.hpp"
#include "aas_bundle/util/fs.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using aas::ref::Reference;
using aas::testing::TempDir;

namespace {

constexpr const char* target_registry = "127.0.0.1:5999";

fs::path charts_dir() {
    return fs::path(AAS_SOURCE_DIR) / "test" / "data" / "charts";
}

const char* const patterns[] = {"env-images",       "args-images",       "flag-images",
                                "configmap-text",   "split-cr",          "recursive-merge",
                                "offbranch-toyaml", "untagged-fallback", "digest-switch"};

std::set<std::string> refs_of(const aas::discovery::Result& r, aas::discovery::Class cls) {
    std::set<std::string> out;
    for (const auto& i : r.images)
        if (i.cls == cls) out.insert(i.ref.str());
    return out;
}

std::set<std::string> normalised(const nlohmann::json& list) {
    std::set<std::string> out;
    for (const auto& s : list) out.insert(Reference::parse(s.get<std::string>()).str());
    return out;
}

} // namespace

TEST_CASE("discovery::pattern charts give their hand-worked expected.json") {
    for (const char* name : patterns) {
        CAPTURE(name);
        auto expected = nlohmann::json::parse(aas::util::read_file(charts_dir() / name / "expected.json"));
        auto r = aas::discovery::discover_path(charts_dir() / name);
        CHECK(r.ok());
        CHECK(r.incomplete.empty());
        CHECK(refs_of(r, aas::discovery::Class::required) == normalised(expected["required"]));
        CHECK(refs_of(r, aas::discovery::Class::optional) == normalised(expected["optional"]));
        for (const auto& ref : expected["must_not_find"]) {
            auto s = Reference::parse(ref.get<std::string>()).str();
            CHECK_MESSAGE(std::none_of(r.images.begin(), r.images.end(),
                                       [&](const aas::discovery::Image& i) { return i.ref.str() == s; }),
                          s);
        }
        // Every site of an image found through values names a values file and path.
        for (const auto& img : r.images)
            for (const auto& s : img.sites) {
                CAPTURE(img.ref.str());
                CHECK(!s.file.empty());
                CHECK(s.line > 0);
            }
    }
}

namespace {

Reference target_of(const Reference& r) {
    std::string s = std::string(target_registry) + "/airgap/" + r.repository();
    if (r.has_tag()) s += ":" + r.tag();
    if (r.has_digest()) s += "@" + r.digest();
    return Reference::parse(s);
}

/// Copies a pattern chart into a k8s folder, discovers it, rewrites every image to
/// 127.0.0.1:5999/airgap/<path> the way load does, and discovers it again.
struct RoundTrip {
    TempDir dir;
    aas::discovery::Result before, after;
    aas::rewrite::Plan plan;

    explicit RoundTrip(const std::string& name) {
        fs::create_directories(dir.path / "k8s");
        fs::copy(charts_dir() / name, dir.path / "k8s" / name, fs::copy_options::recursive);
        before = aas::discovery::discover_path(dir.path / "k8s");
        std::vector<aas::rewrite::ImageTarget> targets;
        for (const auto& img : before.images) {
            aas::rewrite::ImageTarget t{img.ref.str(), target_of(img.ref), {}};
            for (const auto& s : img.sites) {
                t.sites.push_back(aas::bundle::SiteRecord{s.release,
                                                          s.chart,
                                                          s.file,
                                                          s.line,
                                                          s.values_path,
                                                          s.written,
                                                          s.template_file,
                                                          s.template_line,
                                                          aas::discovery::to_string(s.cls),
                                                          s.reference,
                                                          {}});
                for (const auto& p : s.parts)
                    t.sites.back().parts.push_back(
                        aas::bundle::PartRecord{p.part, p.file, p.line, p.values_path, p.file_key, p.written, p.at});
            }
            targets.push_back(std::move(t));
        }
        plan = aas::rewrite::plan(dir.path, targets, {});
        aas::rewrite::apply(dir.path, plan);
        if (std::getenv("AAS_SHOW_DIFF"))
            for (const auto& c : plan.changes) MESSAGE(aas::rewrite::unified_diff(c));
        after = aas::discovery::discover_path(dir.path / "k8s");
    }
};

} // namespace

TEST_CASE("discovery::pattern charts round trip through load's rewrite") {
    for (const char* name : patterns) {
        CAPTURE(name);
        RoundTrip rt(name);
        for (const auto& w : rt.plan.warnings) MESSAGE(std::string(name), ": rewrite warning: ", w);
        CHECK(rt.plan.warnings.empty());
        CHECK_FALSE(rt.plan.changes.empty());
        CHECK(rt.after.images.size() == rt.before.images.size());
        for (const auto& img : rt.after.images) {
            CAPTURE(img.ref.str());
            CHECK(img.ref.registry() == target_registry);
        }
    }
}

TEST_CASE("discovery::an invalid reference only a branch not taken builds is a warning, a live one an error") {
    TempDir t;
    auto write = [&](const std::string& rel, const std::string& text) {
        fs::create_directories((t.path / rel).parent_path());
        std::ofstream(t.path / rel) << text;
    };
    write("c/Chart.yaml", "apiVersion: v2\nname: c\nversion: 0.1.0\n");
    write("c/values.yaml", "head: {}\nimage: {repository: rayproject/ray, tag: '2.52.0'}\n"
                           "bad: {repository: registry.example.io/x/y, digest: 'sha256:v1'}\n");
    write("c/templates/pod.yaml",
          "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n    - name: a\n"
          "      {{- if .Values.head.image }}\n"
          "      image: {{ .Values.head.image.repository }}:{{ .Values.head.image.tag }}\n"
          "      {{- else }}\n"
          "      image: {{ .Values.image.repository }}:{{ .Values.image.tag }}\n"
          "      {{- end }}\n");
    auto r = aas::discovery::discover_path(t.path / "c");
    CHECK(r.ok());
    REQUIRE(r.images.size() == 1);
    CHECK(r.images[0].ref.str() == "docker.io/rayproject/ray:2.52.0");
    CHECK(std::any_of(r.warnings.begin(), r.warnings.end(), [](const std::string& w) {
        return w.find("\":\" is not a valid image reference") != std::string::npos &&
               w.find("only in a branch the values do not take") != std::string::npos;
    }));
    // The same kind of mistake on the path the values take stays an error at its values line.
    write("c/templates/bad.yaml",
          "apiVersion: v1\nkind: Pod\nmetadata:\n  name: b\nspec:\n  containers:\n"
          "    - name: b\n      image: {{ .Values.bad.repository }}@{{ .Values.bad.digest }}\n");
    r = aas::discovery::discover_path(t.path / "c");
    CHECK_FALSE(r.ok());
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].file.find("values.yaml") != std::string::npos);
    CHECK(r.errors[0].line == 3);
}

// ---------------------------------------------------------------------------------------------
// The public API on small trees written here: plain manifests, a chart with values, the
// classes, possible images, one image per reference, a bundle manifest's releases.

namespace {

/// A k8s folder under a fresh temp folder; `write` puts text at a path relative to it.
struct Tree {
    TempDir tmp;
    fs::path k8s = tmp.path / "k8s";
    void write(const std::string& rel, const std::string& text) const {
        fs::create_directories((k8s / rel).parent_path());
        std::ofstream(k8s / rel) << text;
    }
};

const aas::discovery::Image* image_of(const aas::discovery::Result& r, const std::string& ref) {
    for (const auto& i : r.images)
        if (i.ref.str() == ref) return &i;
    return nullptr;
}

const char* const plain_deploy = R"(apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      initContainers:
        - name: init
          image: busybox:1.36
      containers:
        - name: web
          image: nginx:1.25
          args: ["--sidecar-image=ghcr.io/acme/sidecar:2.0"]
        - name: helper
          image: quay.io/acme/helper@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
# image: commented/out:1
---
apiVersion: v1
kind: Pod
metadata:
  name: second
spec:
  containers:
    - name: web
      image: "nginx:1.25"
)";

const char* const helper_ref =
    "quay.io/acme/helper@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

void write_redis_chart(const Tree& t) {
    t.write("c/Chart.yaml", "apiVersion: v2\nname: c\nversion: 0.1.0\nappVersion: \"7.2.4\"\n");
    t.write("c/values.yaml", "image:\n"
                             "  registry: docker.io\n"
                             "  repository: bitnami/redis\n"
                             "  tag: \"\"\n"
                             "metrics:\n"
                             "  enabled: false\n"
                             "  image:\n"
                             "    repository: bitnami/redis-exporter\n"
                             "    tag: 1.58.0\n");
    t.write("c/templates/sts.yaml",
            "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n"
            "  template:\n    spec:\n      containers:\n        - name: redis\n"
            "          image: {{ .Values.image.registry }}/{{ .Values.image.repository }}:"
            "{{ .Values.image.tag | default .Chart.AppVersion }}\n"
            "        {{- if .Values.metrics.enabled }}\n"
            "        - name: metrics\n"
            "          image: {{ .Values.metrics.image.repository }}:{{ .Values.metrics.image.tag }}\n"
            "        {{- end }}\n");
    t.write("c/templates/tests/test-connection.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: test\n  annotations:\n    \"helm.sh/hook\": test\n"
            "spec:\n  containers:\n    - name: ping\n      image: busybox:1.36\n");
}

} // namespace

TEST_CASE("discovery::image fields of plain manifests, one image per reference, sorted") {
    Tree t;
    t.write("deploy.yaml", plain_deploy);
    auto r = aas::discovery::discover_path(t.k8s);
    CHECK(r.ok());
    CHECK(r.errors.empty());
    CHECK(r.warnings.empty());
    std::vector<std::string> refs;
    for (const auto& i : r.images) refs.push_back(i.ref.str());
    // The commented-out image is not one; nginx, written twice, is one image.
    CHECK(refs ==
          std::vector<std::string>{"docker.io/library/busybox:1.36", "docker.io/library/nginx:1.25", helper_ref});

    const auto* nginx = image_of(r, "docker.io/library/nginx:1.25");
    REQUIRE(nginx != nullptr);
    CHECK(nginx->cls == aas::discovery::Class::required);
    CHECK(nginx->source.empty());
    REQUIRE(nginx->sites.size() == 2);
    CHECK(nginx->sites[0].file == "k8s/deploy.yaml");
    CHECK(nginx->sites[0].line == 13);
    CHECK(nginx->sites[0].values_path == "spec.template.spec.containers[0].image");
    CHECK(nginx->sites[0].written == "nginx:1.25");
    CHECK(nginx->sites[0].chart.empty());
    CHECK(nginx->sites[0].template_file.empty());
    CHECK(nginx->sites[1].file == "k8s/deploy.yaml");
    CHECK(nginx->sites[1].line == 26);
    CHECK(nginx->sites[1].values_path == "spec.containers[0].image");

    const auto* init = image_of(r, "docker.io/library/busybox:1.36");
    REQUIRE(init != nullptr);
    REQUIRE(init->sites.size() == 1);
    CHECK(init->sites[0].line == 10);
    CHECK(init->sites[0].values_path == "spec.template.spec.initContainers[0].image");
    const auto* helper = image_of(r, helper_ref);
    REQUIRE(helper != nullptr);
    REQUIRE(helper->sites.size() == 1);
    CHECK(helper->sites[0].line == 16);
    CHECK(helper->ref.has_digest());
    CHECK_FALSE(helper->ref.has_tag());
}

TEST_CASE("discovery::a literal image in container args is possible, not an image") {
    Tree t;
    t.write("deploy.yaml", plain_deploy);
    auto r = aas::discovery::discover_path(t.k8s);
    REQUIRE(r.possible.size() == 1);
    CHECK(r.possible[0].value == "ghcr.io/acme/sidecar:2.0");
    CHECK(r.possible[0].file == "k8s/deploy.yaml");
    CHECK(r.possible[0].line == 14);
    CHECK(r.possible[0].chart.empty());
    CHECK(r.possible[0].why == "container args");
    CHECK(image_of(r, "ghcr.io/acme/sidecar:2.0") == nullptr);
}

TEST_CASE("discovery::an invalid reference in a plain manifest is an error at its line") {
    Tree t;
    t.write("pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n"
                        "    - name: a\n      image: registry.example.io/x/y@sha256:v1\n"
                        "    - name: b\n      image: nginx:1.25\n");
    auto r = aas::discovery::discover_path(t.k8s);
    CHECK_FALSE(r.ok());
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].file == "k8s/pod.yaml");
    CHECK(r.errors[0].line == 8);
    CHECK(r.errors[0].values_path == "spec.containers[0].image");
    CHECK(r.errors[0].message.find("is not a valid image reference") != std::string::npos);
    // The valid image beside it is still found.
    REQUIRE(r.images.size() == 1);
    CHECK(r.images[0].ref.str() == "docker.io/library/nginx:1.25");
}

TEST_CASE("discovery::a chart's image from its values: the site is the values line to edit") {
    Tree t;
    write_redis_chart(t);
    auto r = aas::discovery::discover_path(t.k8s);
    CHECK(r.ok());
    const auto* redis = image_of(r, "docker.io/bitnami/redis:7.2.4"); // the tag from appVersion
    REQUIRE(redis != nullptr);
    CHECK(redis->cls == aas::discovery::Class::required);
    REQUIRE(redis->sites.size() == 1);
    const auto& s = redis->sites[0];
    CHECK(s.chart == "k8s/c");
    CHECK(s.file == "k8s/c/values.yaml");
    CHECK(s.line == 3);
    CHECK(s.values_path == "image");
    CHECK(s.written == "bitnami/redis");
    CHECK(s.template_file == "k8s/c/templates/sts.yaml");
    CHECK(s.template_line == 10);
    CHECK(s.release.empty());
    CHECK(s.cls == aas::discovery::Class::required);
}

TEST_CASE("discovery::classes: required, optional behind a switch that is off, test in a test hook") {
    Tree t;
    write_redis_chart(t);
    auto r = aas::discovery::discover_path(t.k8s);
    CHECK(r.ok());
    REQUIRE(r.images.size() == 3);
    CHECK(refs_of(r, aas::discovery::Class::required) == std::set<std::string>{"docker.io/bitnami/redis:7.2.4"});
    CHECK(refs_of(r, aas::discovery::Class::optional) ==
          std::set<std::string>{"docker.io/bitnami/redis-exporter:1.58.0"});
    CHECK(refs_of(r, aas::discovery::Class::test) == std::set<std::string>{"docker.io/library/busybox:1.36"});

    const auto* exporter = image_of(r, "docker.io/bitnami/redis-exporter:1.58.0");
    REQUIRE(exporter != nullptr);
    REQUIRE(exporter->sites.size() == 1);
    CHECK(exporter->sites[0].values_path == "metrics.image");
    CHECK(exporter->sites[0].line == 8);
    CHECK(exporter->sites[0].cls == aas::discovery::Class::optional);
    const auto* ping = image_of(r, "docker.io/library/busybox:1.36");
    REQUIRE(ping != nullptr);
    REQUIRE(ping->sites.size() == 1);
    // A literal in a template: the template is the file to edit.
    CHECK(ping->sites[0].file == "k8s/c/templates/tests/test-connection.yaml");
    CHECK(ping->sites[0].line == 10);
    CHECK(ping->sites[0].values_path.empty());

    CHECK(std::string(aas::discovery::to_string(aas::discovery::Class::required)) == "required");
    CHECK(std::string(aas::discovery::to_string(aas::discovery::Class::optional)) == "optional");
    CHECK(std::string(aas::discovery::to_string(aas::discovery::Class::test)) == "test");
}

TEST_CASE("discovery::an image at several sites takes the strongest class of its sites") {
    Tree t;
    write_redis_chart(t);
    t.write("deploy.yaml", plain_deploy); // busybox:1.36 again, as a required init container
    auto r = aas::discovery::discover_path(t.k8s);
    const auto* busybox = image_of(r, "docker.io/library/busybox:1.36");
    REQUIRE(busybox != nullptr);
    CHECK(busybox->cls == aas::discovery::Class::required);
    REQUIRE(busybox->sites.size() == 2);
    std::multiset<std::string> classes;
    for (const auto& s : busybox->sites) classes.insert(aas::discovery::to_string(s.cls));
    CHECK(classes == std::multiset<std::string>{"required", "test"});
    CHECK(r.images.size() == 5); // busybox, nginx, helper, redis, redis-exporter: each once
}

namespace {

/// The bundle manifest of a release whose values file sets a tag and a `<REGISTRY>`
/// placeholder, a plain manifest and an extra image; `extra` is appended to its images.
fs::path write_manifest(const Tree& t, const std::string& extra = {}) {
    t.write("charts/app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 1.0.0\n");
    t.write("charts/app/values.yaml",
            "image:\n  repository: registry.example.io/team/app\n  tag: \"1.0\"\nfrontend:\n  image: \"\"\n");
    t.write("charts/app/templates/deploy.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n"
            "      containers:\n        - name: app\n"
            "          image: \"{{ .Values.image.repository }}:{{ .Values.image.tag }}\"\n"
            "        {{- with .Values.frontend.image }}\n        - name: frontend\n          image: {{ . }}\n"
            "        {{- end }}\n");
    t.write("env/prod.yaml", "image:\n  tag: \"1.1\"\nfrontend:\n  image: <REGISTRY>/ai-appstore/aas-frontend:1.2.2\n");
    t.write("extra.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: extra\nspec:\n  containers:\n"
                          "    - name: x\n      image: registry.example.io/team/extra:3\n");
    fs::path file = t.tmp.path / "bundle.yaml";
    std::ofstream(file) << "apiVersion: aas-bundle/v1\nkind: Bundle\nname: demo\nversion: 0.1.0\nk8s: k8s\n"
                           "releases:\n  - name: app\n    chart: charts/app\n    values: [env/prod.yaml]\n"
                           "manifests: [extra.yaml]\n"
                           "images:\n  - ref: docker.io/library/redis:7.2\n"
                        << extra;
    return file;
}

} // namespace

TEST_CASE("discovery::a manifest's release takes its values files; a placeholder without a source is unresolved") {
    Tree t;
    auto m = aas::manifest::load(write_manifest(t));
    auto r = aas::discovery::discover(m);
    CHECK(r.errors.empty());
    CHECK_FALSE(r.ok()); // the placeholder
    std::vector<std::string> refs;
    for (const auto& i : r.images) refs.push_back(i.ref.str());
    CHECK(refs == std::vector<std::string>{"docker.io/library/redis:7.2", "registry.example.io/team/app:1.1",
                                           "registry.example.io/team/extra:3"});

    const auto* app = image_of(r, "registry.example.io/team/app:1.1"); // the tag of env/prod.yaml
    REQUIRE(app != nullptr);
    REQUIRE(app->sites.size() == 1);
    CHECK(app->sites[0].release == "app");
    CHECK(app->sites[0].chart == "k8s/charts/app");
    CHECK(app->sites[0].file == "k8s/charts/app/values.yaml");
    CHECK(app->sites[0].line == 2);
    CHECK(app->sites[0].values_path == "image");

    const auto* extra = image_of(r, "docker.io/library/redis:7.2");
    REQUIRE(extra != nullptr);
    REQUIRE(extra->sites.size() == 1);
    CHECK(extra->sites[0].values_path == "images");
    CHECK(extra->sites[0].line == 12);

    REQUIRE(r.unresolved.size() == 1);
    const auto& u = r.unresolved[0];
    CHECK(u.release == "app");
    CHECK(u.chart == "k8s/charts/app");
    CHECK(u.file == "k8s/env/prod.yaml");
    CHECK(u.line == 4);
    CHECK(u.values_path == "frontend.image");
    CHECK(u.target == "<REGISTRY>/ai-appstore/aas-frontend:1.2.2");
    CHECK(u.message.find("name its source in the bundle manifest") != std::string::npos);
}

TEST_CASE("discovery::a manifest image with a source resolves the placeholder into one image") {
    Tree t;
    auto m = aas::manifest::load(write_manifest(t, "  - ref: ai-appstore/aas-frontend:1.2.2\n"
                                                   "    from: oci:build/frontend\n"));
    auto r = aas::discovery::discover(m);
    CHECK(r.ok());
    CHECK(r.unresolved.empty());
    const auto* fe = image_of(r, "docker.io/ai-appstore/aas-frontend:1.2.2");
    REQUIRE(fe != nullptr);
    CHECK(fe->source == "oci:build/frontend");
    CHECK(fe->cls == aas::discovery::Class::required);
    REQUIRE(fe->sites.size() == 2); // the manifest's entry and the values line it resolves
    std::set<std::string> paths;
    for (const auto& s : fe->sites) paths.insert(s.values_path);
    CHECK(paths == std::set<std::string>{"images", "frontend.image"});
    for (const auto& s : fe->sites)
        if (s.values_path == "frontend.image") {
            CHECK(s.file == "k8s/env/prod.yaml");
            CHECK(s.line == 4);
            CHECK(s.written == "<REGISTRY>/ai-appstore/aas-frontend:1.2.2");
        }
    CHECK(r.images.size() == 4);
}

TEST_CASE("discovery::discover_path refuses a path that does not exist") {
    TempDir t;
    CHECK_THROWS_AS(aas::discovery::discover_path(t.path / "nothing"), aas::UsageError);
}
