// Discovery of the pattern charts under test/data/charts (env, args, --flag=, ConfigMap text,
// split custom-resource fields, recursive merge, off-branch toYaml, untagged fallback, digest
// switch) through the library API, and their round trip through load's rewrite: after the
// rewrite, every image discovered is under the private registry.

#include "testing.hpp"

#include "aas_bundle/discovery/discovery.hpp"
#include "aas_bundle/rewrite/rewrite.hpp"
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

const char* const patterns[] = {"env-images",       "args-images",      "flag-images",
                                "configmap-text",   "split-cr",         "recursive-merge",
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
                t.sites.push_back(aas::bundle::SiteRecord{s.release, s.chart, s.file, s.line, s.values_path, s.written,
                                                          s.template_file, s.template_line,
                                                          aas::discovery::to_string(s.cls), s.reference, {}});
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
    write("c/templates/bad.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: b\nspec:\n  containers:\n"
                                  "    - name: b\n      image: {{ .Values.bad.repository }}@{{ .Values.bad.digest }}\n");
    r = aas::discovery::discover_path(t.path / "c");
    CHECK_FALSE(r.ok());
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].file.find("values.yaml") != std::string::npos);
    CHECK(r.errors[0].line == 3);
}
