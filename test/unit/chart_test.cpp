#include "aas_bundle/chart/chart.hpp"
#include "aas_bundle/util/fs.hpp"

#include <doctest/doctest.h>

#include <algorithm>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace aas::chart;

namespace {

// A folder under the temp dir, removed with everything in it at the end of the test.
struct TempDir {
    fs::path path;
    TempDir() {
        static std::atomic<int> counter{0};
        path = fs::temp_directory_path() /
               ("aas-chart-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    void write(const std::string& rel, const std::string& text) const {
        fs::path p = path / rel;
        fs::create_directories(p.parent_path());
        std::ofstream(p, std::ios::binary) << text;
    }
    // Packs folder `rel` (relative to the temp dir) into `tgz` like `helm package` does.
    void pack(const std::string& rel, const std::string& tgz) const {
        fs::create_directories((path / tgz).parent_path());
        std::string cmd = "tar czf '" + (path / tgz).string() + "' -C '" + path.string() + "' '" + rel + "'";
        REQUIRE(std::system(cmd.c_str()) == 0);
    }
};

const Chart* find_sub(const Chart& c, const std::string& name) {
    for (const auto& s : c.subcharts)
        if (s.name == name) return &s;
    return nullptr;
}

const Coalesced* find_sub(const Coalesced& c, const std::string& prefix) {
    for (const auto& s : c.subcharts)
        if (s.values_prefix == prefix) return &s;
    return nullptr;
}

std::string text_at(const Value& v, const std::string& path) {
    const Value* x = v.at_path(path);
    return x ? x->text() : "<missing>";
}

bool has_warning(const Chart& c, const std::string& part) {
    for (const auto& w : c.warnings)
        if (w.find(part) != std::string::npos) return true;
    return false;
}

} // namespace

TEST_CASE("chart::load_chart reads a folder chart") {
    TempDir t;
    t.write("app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 1.2.3\nappVersion: \"4.5\"\n"
                              "annotations:\n  category: Database\n"
                              "dependencies:\n  - name: common\n    version: 1.x.x\n    repository: https://x\n"
                              "    tags: [shared]\n");
    t.write("app/values.yaml", "image:\n  repository: app\n  tag: '1'\n");
    t.write("app/README.md", "ignored");
    t.write("app/values.schema.json", "{}");
    t.write("app/templates/_helpers.tpl", "{{- define \"x\" -}}{{- end -}}");
    t.write("app/templates/deployment.yaml", "kind: Deployment");
    t.write("app/templates/tests/test-pod.yaml", "kind: Pod");
    t.write("app/templates/NOTES.txt", "notes");
    t.write("app/crds/crd.yaml", "kind: CustomResourceDefinition");
    t.write("app/ci/values.yaml", "ignored: true");
    t.write("app/charts/common/Chart.yaml", "apiVersion: v2\nname: common\nversion: 1.0.0\ntype: library\n");
    t.write("app/charts/common/templates/_names.tpl", "{{- define \"common.names\" -}}{{- end -}}");
    t.write("app/charts/common/README.md", "ignored");
    t.write("app/charts/notachart/values.yaml", "no: Chart.yaml here");

    Chart c = load_chart(t.path / "app", "charts/app");
    CHECK(c.name == "app");
    CHECK(c.version == "1.2.3");
    CHECK(c.app_version == "4.5");
    CHECK(c.api_version == "v2");
    CHECK(c.type == "application");
    CHECK(c.display == "charts/app");
    CHECK(c.annotations.at("category") == "Database");
    REQUIRE(c.templates.size() == 4);
    CHECK(c.templates[0].name == "templates/NOTES.txt");
    CHECK(c.templates[1].name == "templates/_helpers.tpl");
    CHECK(c.templates[2].name == "templates/deployment.yaml");
    CHECK(c.templates[2].display == "charts/app/templates/deployment.yaml");
    CHECK(c.templates[2].text == "kind: Deployment");
    CHECK(c.templates[3].name == "templates/tests/test-pod.yaml");
    REQUIRE(c.crds.size() == 1);
    CHECK(c.crds[0].display == "charts/app/crds/crd.yaml");
    CHECK(text_at(c.values, "image.repository") == "app");
    CHECK(c.values.at_path("image.tag")->origin().file == "charts/app/values.yaml");
    CHECK(c.values.at_path("image.tag")->origin().line == 3);

    REQUIRE(c.dependencies.size() == 1);
    CHECK(c.dependencies[0].name == "common");
    CHECK(c.dependencies[0].key() == "common");
    CHECK(c.dependencies[0].version == "1.x.x");
    CHECK(c.dependencies[0].repository == "https://x");
    REQUIRE(c.dependencies[0].tags.size() == 1);
    CHECK(c.dependencies[0].tags[0] == "shared");

    REQUIRE(c.subcharts.size() == 1);
    const Chart& common = c.subcharts[0];
    CHECK(common.name == "common");
    CHECK(common.type == "library");
    CHECK(common.display == "charts/app/charts/common");
    REQUIRE(common.templates.size() == 1);
    CHECK(common.templates[0].display == "charts/app/charts/common/templates/_names.tpl");
    CHECK(common.values.is_map());
    CHECK(c.subchart_for(c.dependencies[0]) == &common);
    CHECK(has_warning(c, "charts/app/charts/notachart"));
}

TEST_CASE("chart::load_chart reads packaged charts with nested packaged subcharts") {
    TempDir t;
    t.write("sub/Chart.yaml", "apiVersion: v2\nname: sub\nversion: 0.1.0\nappVersion: 9.9\n");
    t.write("sub/values.yaml", "image:\n  repository: sub/image\n  tag: '2'\nenabled: true\n");
    t.write("sub/templates/_images.tpl", "{{- define \"sub.image\" -}}{{- end -}}");
    t.write("sub/templates/deploy.yaml", "kind: Deployment");
    t.pack("sub", "top/charts/sub-0.1.0.tgz");
    t.write("top/Chart.yaml", "apiVersion: v2\nname: top\nversion: 2.0.0\n"
                              "dependencies:\n  - name: sub\n    alias: db\n    version: 0.1.0\n"
                              "    condition: db.enabled\n");
    t.write("top/values.yaml", "replicas: 1\n");
    t.write("top/templates/controller.yaml", "kind: DaemonSet");
    t.write("top/policy/x.rego", "ignored");
    t.write("top/charts/crds/Chart.yaml", "apiVersion: v2\nname: crds\nversion: 0.1.0\n");
    t.write("top/charts/crds/templates/crds.yaml", "kind: CustomResourceDefinition");
    t.pack("top", "top-2.0.0.tgz");

    Chart c = load_chart(t.path / "top-2.0.0.tgz", "charts/dependencies/top-2.0.0.tgz");
    CHECK(c.name == "top");
    CHECK(c.version == "2.0.0");
    CHECK(c.display == "charts/dependencies/top-2.0.0.tgz:top");
    REQUIRE(c.templates.size() == 1);
    CHECK(c.templates[0].display == "charts/dependencies/top-2.0.0.tgz:top/templates/controller.yaml");
    CHECK(c.values.find("replicas")->origin().file == "charts/dependencies/top-2.0.0.tgz:top/values.yaml");
    REQUIRE(c.subcharts.size() == 2);
    CHECK(c.subcharts[0].name == "crds");
    CHECK(c.subcharts[0].display == "charts/dependencies/top-2.0.0.tgz:top/charts/crds");
    CHECK(c.subcharts[0].templates.at(0).display ==
          "charts/dependencies/top-2.0.0.tgz:top/charts/crds/templates/crds.yaml");
    const Chart& sub = c.subcharts[1];
    CHECK(sub.name == "sub");
    CHECK(sub.app_version == "9.9");
    CHECK(sub.display == "charts/dependencies/top-2.0.0.tgz:top/charts/sub-0.1.0.tgz:sub");
    REQUIRE(sub.templates.size() == 2);
    CHECK(sub.templates[0].display ==
          "charts/dependencies/top-2.0.0.tgz:top/charts/sub-0.1.0.tgz:sub/templates/_images.tpl");
    CHECK(sub.values.at_path("image.tag")->origin().file ==
          "charts/dependencies/top-2.0.0.tgz:top/charts/sub-0.1.0.tgz:sub/values.yaml");
    CHECK(sub.values.at_path("image.tag")->origin().line == 3);

    // Alias and condition: the subchart's values live under "db".
    Coalesced on = coalesce(c, {});
    const Coalesced* db = find_sub(on, "db");
    REQUIRE(db);
    CHECK(db->chart == &sub);
    CHECK(db->enabled);
    CHECK(text_at(db->values, "image.repository") == "sub/image");
    CHECK(db->values.at_path("image.repository")->origin().values_path == "db.image.repository");
    const Coalesced* crds = find_sub(on, "crds");
    REQUIRE(crds);
    CHECK(crds->enabled);
    CHECK(text_at(on.values, "db.image.tag") == "2");

    Value user = parse_yaml("db:\n  enabled: false\n", "env/top.yaml");
    Coalesced off = coalesce(c, {user});
    db = find_sub(off, "db");
    REQUIRE(db);
    CHECK_FALSE(db->enabled);
    CHECK(db->disabled_by == "condition db.enabled is false");
    CHECK(text_at(db->values, "image.repository") == "sub/image");
    // A disabled subchart's defaults are not merged into the parent's values.
    CHECK(off.values.at_path("db.image") == nullptr);
    CHECK(text_at(off.values, "db.enabled") == "false");
}

TEST_CASE("chart::coalesce merges user files, globals, tags, import-values and extra subcharts") {
    TempDir t;
    t.write("p/Chart.yaml", "apiVersion: v2\nname: p\nversion: 1.0.0\n"
                            "dependencies:\n"
                            "  - name: db\n    version: 1.0.0\n    condition: db.enabled,global.db.enabled\n"
                            "    import-values:\n      - data\n      - child: image\n        parent: imported.dbImage\n"
                            "  - name: lib\n    version: 1.0.0\n    tags: [front, back]\n"
                            "  - name: absent\n    version: 1.0.0\n");
    t.write("p/values.yaml", "global:\n  imageRegistry: reg.example\n  nested:\n    a: 1\n"
                             "image:\n  repository: p/app\n  tag: '1.0'\n"
                             "db:\n  auth:\n    enabled: true\n"
                             "fromExport: parent-wins\n");
    t.write("p/charts/db/Chart.yaml", "apiVersion: v2\nname: db\nversion: 1.0.0\n"
                                      "dependencies:\n  - name: metrics\n    version: 1.0.0\n"
                                      "    condition: metrics.enabled\n");
    t.write("p/charts/db/values.yaml", "global:\n  imageRegistry: ''\n  nested:\n    a: 0\n    b: 2\n"
                                       "image:\n  registry: docker.io\n  repository: bitnami/db\n  tag: 6.0.3\n"
                                       "auth:\n  enabled: false\n  rootUser: root\n"
                                       "metrics:\n  enabled: false\n"
                                       "exports:\n  data:\n    fromExport: child\n    exported: yes\n");
    t.write("p/charts/db/charts/metrics/Chart.yaml", "apiVersion: v2\nname: metrics\nversion: 1.0.0\n");
    t.write("p/charts/db/charts/metrics/values.yaml", "image:\n  repository: bitnami/exporter\n  tag: '0.1'\n");
    t.write("p/charts/lib/Chart.yaml", "apiVersion: v2\nname: lib\nversion: 1.0.0\n");
    t.write("p/charts/lib/values.yaml", "image:\n  repository: lib\n");
    t.write("p/charts/extra/Chart.yaml", "apiVersion: v2\nname: extra\nversion: 0.0.1\n");
    t.write("p/charts/extra/values.yaml", "image: {repository: extra}\n");

    Chart c = load_chart(t.path / "p", "charts/p");
    CHECK(has_warning(c, "dependency absent"));

    Value f1 = parse_yaml("image:\n  tag: '2.0'\n"
                          "db:\n  image:\n    tag: 7.0.0\n  metrics:\n    enabled: true\n"
                          "tags:\n  front: false\n  back: false\n",
                          "env/f1.yaml");
    Value f2 = parse_yaml("image:\n  pullPolicy: Always\n"
                          "db:\n  image:\n    registry: ~\n"
                          "global:\n  nested:\n    c: 3\n",
                          "env/f2.yaml");
    Coalesced top = coalesce(c, {f1, f2});

    SUBCASE("user files merge in order over the defaults, with origins") {
        CHECK(top.chart == &c);
        CHECK(top.values_prefix.empty());
        CHECK(top.enabled);
        const Value* tag = top.values.at_path("image.tag");
        REQUIRE(tag);
        CHECK(tag->text() == "2.0");
        CHECK(tag->origin().file == "env/f1.yaml");
        CHECK(tag->origin().line == 2);
        CHECK(tag->origin().values_path == "image.tag");
        const Value* repo = top.values.at_path("image.repository");
        CHECK(repo->origin().file == "charts/p/values.yaml");
        CHECK(repo->origin().line == 6);
        CHECK(repo->origin().values_path == "image.repository");
        CHECK(text_at(top.values, "image.pullPolicy") == "Always");
    }

    SUBCASE("subchart values: parent section over subchart defaults, release-level paths") {
        const Coalesced* db = find_sub(top, "db");
        REQUIRE(db);
        CHECK(db->enabled);
        CHECK(db->chart->name == "db");
        const Value* tag = db->values.at_path("image.tag");
        CHECK(tag->text() == "7.0.0");
        CHECK(tag->origin().file == "env/f1.yaml");
        CHECK(tag->origin().values_path == "db.image.tag");
        const Value* repo = db->values.at_path("image.repository");
        CHECK(repo->text() == "bitnami/db");
        CHECK(repo->origin().file == "charts/p/charts/db/values.yaml");
        CHECK(repo->origin().line == 8);
        CHECK(repo->origin().values_path == "db.image.repository");
        // A null in a user file removes the subchart's default.
        CHECK(db->values.at_path("image.registry") == nullptr);
        // The parent chart's values.yaml sets the subchart's values too.
        const Value* auth = db->values.at_path("auth.enabled");
        CHECK(auth->as_bool());
        CHECK(auth->origin().file == "charts/p/values.yaml");
        CHECK(auth->origin().values_path == "db.auth.enabled");
        CHECK(text_at(db->values, "auth.rootUser") == "root");
        // The parent's values see the subchart's coalesced values.
        CHECK(text_at(top.values, "db.image.repository") == "bitnami/db");
    }

    SUBCASE("globals flow down; the parent wins") {
        const Coalesced* db = find_sub(top, "db");
        REQUIRE(db);
        const Value* reg = db->values.at_path("global.imageRegistry");
        CHECK(reg->text() == "reg.example");
        CHECK(reg->origin().file == "charts/p/values.yaml");
        CHECK(reg->origin().values_path == "global.imageRegistry");
        CHECK(text_at(db->values, "global.nested.a") == "1");
        CHECK(text_at(db->values, "global.nested.b") == "2");
        CHECK(db->values.at_path("global.nested.b")->origin().values_path == "global.nested.b");
        CHECK(text_at(db->values, "global.nested.c") == "3");
        const Coalesced* metrics = find_sub(*db, "db.metrics");
        REQUIRE(metrics);
        CHECK(text_at(metrics->values, "global.imageRegistry") == "reg.example");
        CHECK(text_at(metrics->values, "global.nested.c") == "3");
        const Coalesced* extra = find_sub(top, "extra");
        REQUIRE(extra);
        CHECK(text_at(extra->values, "global.imageRegistry") == "reg.example");
    }

    SUBCASE("nested subchart condition evaluated in its parent's values") {
        const Coalesced* db = find_sub(top, "db");
        REQUIRE(db);
        const Coalesced* metrics = find_sub(*db, "db.metrics");
        REQUIRE(metrics);
        CHECK(metrics->enabled);
        const Value* repo = metrics->values.at_path("image.repository");
        CHECK(repo->text() == "bitnami/exporter");
        CHECK(repo->origin().values_path == "db.metrics.image.repository");
        CHECK(repo->origin().file == "charts/p/charts/db/charts/metrics/values.yaml");

        Coalesced plain = coalesce(c, {});
        db = find_sub(plain, "db");
        REQUIRE(db);
        metrics = find_sub(*db, "db.metrics");
        REQUIRE(metrics);
        CHECK_FALSE(metrics->enabled);
        CHECK(metrics->disabled_by == "condition metrics.enabled is false");
    }

    SUBCASE("tags: all false disables, a condition would win") {
        const Coalesced* lib = find_sub(top, "lib");
        REQUIRE(lib);
        CHECK_FALSE(lib->enabled);
        CHECK(lib->disabled_by == "tags front, back are false");
        Value one_true = parse_yaml("tags:\n  front: false\n  back: true\n", "t.yaml");
        lib = nullptr;
        Coalesced c2 = coalesce(c, {one_true});
        lib = find_sub(c2, "lib");
        REQUIRE(lib);
        CHECK(lib->enabled);
        Coalesced c3 = coalesce(c, {});
        CHECK(find_sub(c3, "lib")->enabled);
    }

    SUBCASE("a chart in charts/ that is not a dependency is included and enabled") {
        const Coalesced* extra = find_sub(top, "extra");
        REQUIRE(extra);
        CHECK(extra->enabled);
        CHECK(extra->values.at_path("image.repository")->origin().values_path == "extra.image.repository");
        CHECK(find_sub(top, "absent") == nullptr);
        CHECK(top.subcharts.size() == 3);
    }

    SUBCASE("import-values in both forms; the parent's own values win") {
        const Value* exported = top.values.find("exported");
        REQUIRE(exported);
        CHECK(exported->as_bool());
        CHECK(exported->origin().file == "charts/p/charts/db/values.yaml");
        CHECK(exported->origin().values_path == "exported");
        CHECK(text_at(top.values, "fromExport") == "parent-wins");
        const Value* imported = top.values.at_path("imported.dbImage.repository");
        REQUIRE(imported);
        CHECK(imported->text() == "bitnami/db");
        CHECK(imported->origin().values_path == "imported.dbImage.repository");
        // Imports come from defaults: the user's db.image.tag does not reach the import.
        CHECK(text_at(top.values, "imported.dbImage.tag") == "6.0.3");
    }

    SUBCASE("conditions: the first path holding a bool decides") {
        Value u = parse_yaml("db:\n  enabled: not-a-bool\nglobal:\n  db:\n    enabled: false\n", "u.yaml");
        Coalesced r = coalesce(c, {u});
        const Coalesced* db = find_sub(r, "db");
        REQUIRE(db);
        CHECK_FALSE(db->enabled);
        CHECK(db->disabled_by == "condition global.db.enabled is false");
        // Everything below a disabled chart is disabled too.
        Value u2 = parse_yaml("db:\n  enabled: false\n  metrics:\n    enabled: true\n", "u.yaml");
        Coalesced r2 = coalesce(c, {u2});
        db = find_sub(r2, "db");
        REQUIRE(db);
        CHECK_FALSE(db->enabled);
        const Coalesced* metrics = find_sub(*db, "db.metrics");
        REQUIRE(metrics);
        CHECK_FALSE(metrics->enabled);
        CHECK(metrics->disabled_by == "its parent chart db is disabled");
        // No import from a disabled subchart.
        CHECK(r2.values.find("exported") == nullptr);
    }
}

TEST_CASE("chart::coalesce null in a later user file removes an earlier value and the default") {
    TempDir t;
    t.write("c/Chart.yaml", "apiVersion: v2\nname: c\nversion: 1.0.0\n");
    t.write("c/values.yaml", "a: default\nb: keep\n");
    Chart c = load_chart(t.path / "c", "c");
    Coalesced r = coalesce(c, {parse_yaml("a: first\n", "f1"), parse_yaml("a: ~\n", "f2")});
    CHECK(r.values.find("a") == nullptr);
    CHECK(text_at(r.values, "b") == "keep");
}

TEST_CASE("chart::load_chart apiVersion v1 with requirements.yaml") {
    TempDir t;
    t.write("old/Chart.yaml", "apiVersion: v1\nname: old\nversion: 0.1.0\n");
    t.write("old/requirements.yaml", "dependencies:\n  - name: redis\n    version: ~1.0\n    alias: cache\n"
                                     "    condition: cache.enabled\n");
    t.write("old/charts/redis/Chart.yaml", "apiVersion: v1\nname: redis\nversion: 1.0.1\n");
    t.write("old/charts/redis/values.yaml", "image: redis\n");
    Chart c = load_chart(t.path / "old", "old");
    CHECK(c.api_version == "v1");
    REQUIRE(c.dependencies.size() == 1);
    CHECK(c.dependencies[0].key() == "cache");
    CHECK(c.dependencies[0].condition == "cache.enabled");
    CHECK(c.values.is_map());
    Coalesced r = coalesce(c, {});
    REQUIRE(r.subcharts.size() == 1);
    CHECK(r.subcharts[0].values_prefix == "cache");
    CHECK(text_at(r.values, "cache.image") == "redis");
    CHECK(r.values.at_path("cache.image")->origin().values_path == "cache.image");
}

TEST_CASE("chart::load_chart errors name the file") {
    TempDir t;
    CHECK_THROWS_WITH_AS(load_chart(t.path / "nothing", "charts/nothing"), doctest::Contains("charts/nothing"),
                         aas::Error);
    t.write("nochart/values.yaml", "a: 1\n");
    CHECK_THROWS_WITH_AS(load_chart(t.path / "nochart", "charts/nochart"),
                         doctest::Contains("charts/nochart: Chart.yaml is missing"), aas::Error);
    t.write("badvalues/Chart.yaml", "apiVersion: v2\nname: b\nversion: 1\n");
    t.write("badvalues/values.yaml", "a: 1\nb: [\n");
    CHECK_THROWS_WITH_AS(load_chart(t.path / "badvalues", "charts/badvalues"),
                         doctest::Contains("charts/badvalues/values.yaml:"), aas::Error);
    t.write("badmeta/Chart.yaml", "apiVersion: v2\nversion: 1\n");
    CHECK_THROWS_WITH_AS(load_chart(t.path / "badmeta", "charts/badmeta"),
                         doctest::Contains("charts/badmeta/Chart.yaml"), aas::Error);
    t.write("listvalues/Chart.yaml", "apiVersion: v2\nname: l\nversion: 1\n");
    t.write("listvalues/values.yaml", "- 1\n");
    CHECK_THROWS_WITH_AS(load_chart(t.path / "listvalues", "lv"), doctest::Contains("lv/values.yaml:1:"), aas::Error);
    t.write("junk.tgz", "this is not an archive");
    CHECK_THROWS_WITH_AS(load_chart(t.path / "junk.tgz", "charts/junk.tgz"), doctest::Contains("charts/junk.tgz"),
                         aas::Error);
    // A broken subchart archive fails the whole chart, naming the archive.
    t.write("broken/Chart.yaml", "apiVersion: v2\nname: broken\nversion: 1\n");
    t.write("broken/charts/sub-1.tgz", "garbage");
    CHECK_THROWS_WITH_AS(load_chart(t.path / "broken", "broken"), doctest::Contains("broken/charts/sub-1.tgz"),
                         aas::Error);
}

TEST_CASE("chart::load_chart refuses a template symlink that leaves the chart") {
    TempDir t;
    t.write("outside/secret.yaml", "kind: Secret\n");
    t.write("c/Chart.yaml", "apiVersion: v2\nname: c\nversion: 1\n");
    t.write("c/files/inside.yaml", "kind: ConfigMap\n");
    std::filesystem::create_directories(t.path / "c" / "templates");
    // Inside the chart: allowed, read through the link.
    std::filesystem::create_symlink("../files/inside.yaml", t.path / "c" / "templates" / "inside.yaml");
    auto ch = load_chart(t.path / "c", "charts/c");
    REQUIRE(ch.templates.size() == 1);
    CHECK(ch.templates[0].text == "kind: ConfigMap\n");
    // Out of the chart, directly or through a chain of links: refused, naming the file.
    std::filesystem::create_symlink("../../outside/secret.yaml", t.path / "c" / "templates" / "leak.yaml");
    CHECK_THROWS_WITH_AS(load_chart(t.path / "c", "charts/c"),
                         doctest::Contains("templates/leak.yaml is a symlink to ../../outside/secret.yaml, outside "
                                           "the chart"),
                         aas::Error);
    std::filesystem::remove(t.path / "c" / "templates" / "leak.yaml");
    // Other files linked from outside (a README, a CRD) are only left out.
    t.write("README.md", "# the repository\n");
    std::filesystem::create_symlink("../README.md", t.path / "c" / "README.md");
    std::filesystem::create_directories(t.path / "c" / "crds");
    std::filesystem::create_symlink("../../outside/secret.yaml", t.path / "c" / "crds" / "x.yaml");
    ch = load_chart(t.path / "c", "charts/c");
    CHECK(ch.crds.empty());
    CHECK(std::none_of(ch.files.begin(), ch.files.end(), [](const File& f) { return f.name == "README.md"; }));
    CHECK(std::any_of(ch.files.begin(), ch.files.end(), [](const File& f) { return f.name == "files/inside.yaml"; }));
    std::filesystem::create_symlink("../../outside", t.path / "c" / "files" / "up");
    std::filesystem::create_symlink("../files/up/secret.yaml", t.path / "c" / "templates" / "chain.yaml");
    CHECK_THROWS_WITH_AS(load_chart(t.path / "c", "charts/c"), doctest::Contains("outside the chart"), aas::Error);
}

TEST_CASE("chart::load_chart leaves out oversized files templates may read") {
    TempDir t;
    t.write("c/Chart.yaml", "apiVersion: v2\nname: c\nversion: 1\n");
    t.write("c/files/small.yaml", "a: 1\n");
    t.write("c/docs/huge.bin", std::string((5u << 20), 'x'));
    auto ch = load_chart(t.path / "c", "charts/c");
    REQUIRE(ch.files.size() == 1);
    CHECK(ch.files[0].name == "files/small.yaml");
}

TEST_CASE("chart::load_chart refuses oversized files") {
    TempDir t;
    t.write("big/Chart.yaml", "apiVersion: v2\nname: big\nversion: 1\n");
    t.write("big/templates/huge.yaml", std::string((16u << 20) + 1, '#'));
    CHECK_THROWS_WITH_AS(load_chart(t.path / "big", "big"), doctest::Contains("larger than the limit"), aas::Error);
    t.pack("big", "big.tgz");
    CHECK_THROWS_WITH_AS(load_chart(t.path / "big.tgz", "big.tgz"), doctest::Contains("larger than the limit"),
                         aas::Error);
}

namespace {

// The shared corpus sits next to the repository (../shared/corpus from the repo root). Found by
// walking up from the current folder and from this source file.
fs::path corpus_k8s() {
    std::vector<fs::path> starts;
#ifdef AAS_SOURCE_DIR
    starts.emplace_back(AAS_SOURCE_DIR);
#endif
    std::error_code ec;
    starts.push_back(fs::current_path(ec));
    starts.push_back(fs::absolute(fs::path(__FILE__), ec).parent_path());
    for (fs::path p : starts) {
        for (; !p.empty(); p = p.parent_path()) {
            fs::path k8s = p / "shared" / "corpus" / "appstore-ai" / "k8s";
            if (fs::is_directory(k8s, ec)) return k8s;
            if (p == p.parent_path()) break;
        }
    }
    return {};
}

bool have_corpus() {
    fs::path k8s = corpus_k8s();
    return !k8s.empty() && fs::is_directory(k8s / "charts/dependencies/mongodb");
}

} // namespace

// Reported as skipped when ../shared/corpus/appstore-ai is absent.
TEST_CASE("chart::corpus charts load and coalesce" * doctest::skip(!have_corpus())) {
    fs::path k8s = corpus_k8s();
    REQUIRE_MESSAGE(have_corpus(), "shared corpus ../shared/corpus/appstore-ai/k8s not found");

    SUBCASE("mongodb with a vendored common folder and tgz") {
        Chart c = load_chart(k8s / "charts/dependencies/mongodb", "charts/dependencies/mongodb");
        CHECK(c.name == "mongodb");
        CHECK(c.app_version == "6.0.3");
        CHECK(c.version == "13.6.1");
        CHECK(c.annotations.at("category") == "Database");
        CHECK(c.templates.size() > 20);
        const Chart* common = find_sub(c, "common");
        REQUIRE(common);
        CHECK(common->type == "library");
        bool saw_tgz = false;
        for (const auto& s : c.subcharts) {
            if (s.display == "charts/dependencies/mongodb/charts/common-2.2.2.tgz:common") {
                saw_tgz = true;
                bool has_images = false;
                for (const auto& f : s.templates)
                    if (f.display == "charts/dependencies/mongodb/charts/common-2.2.2.tgz:common/templates/_images.tpl")
                        has_images = true;
                CHECK(has_images);
            }
        }
        CHECK(saw_tgz);

        Value user = parse_yaml(aas::util::read_file(k8s / "environments/production/mongodb-values.yaml"),
                                "environments/production/mongodb-values.yaml");
        Coalesced r = coalesce(c, {user});
        const Value* reg = r.values.at_path("image.registry");
        REQUIRE(reg);
        CHECK(reg->text() == "docker.io");
        CHECK(reg->origin().file == "charts/dependencies/mongodb/values.yaml");
        CHECK(reg->origin().values_path == "image.registry");
        CHECK(reg->origin().line > 100);
        CHECK(text_at(r.values, "image.repository") == "bitnami/mongodb");
        CHECK(text_at(r.values, "image.tag") == "6.0.3-debian-11-r9");
        CHECK(r.values.at_path("image.tag")->origin().line == reg->origin().line + 2);
        const Value* root_user = r.values.at_path("auth.rootUser");
        REQUIRE(root_user);
        CHECK(root_user->origin().file == "environments/production/mongodb-values.yaml");
        CHECK(root_user->origin().line == 3);
        // common is used once (the dependency), with its values under "common".
        int commons = 0;
        for (const auto& s : r.subcharts)
            if (s.chart->name == "common") ++commons;
        CHECK(commons == 1);
        const Coalesced* cc = find_sub(r, "common");
        REQUIRE(cc);
        CHECK(cc->enabled);
        const Value* example = cc->values.at_path("exampleValue");
        REQUIRE(example);
        CHECK(example->origin().values_path == "common.exampleValue");
        CHECK(example->origin().file == "charts/dependencies/mongodb/charts/common/values.yaml");
        const Value* global_reg = cc->values.at_path("global.imageRegistry");
        REQUIRE(global_reg);
        CHECK(global_reg->origin().file == "charts/dependencies/mongodb/values.yaml");
        CHECK(global_reg->origin().line == 13);
        CHECK(global_reg->origin().values_path == "global.imageRegistry");
        const Value* metrics_tag = r.values.at_path("metrics.image.tag");
        REQUIRE(metrics_tag);
        CHECK(metrics_tag->origin().values_path == "metrics.image.tag");
    }

    SUBCASE("ingress-nginx folder") {
        Chart c = load_chart(k8s / "charts/dependencies/ingress-nginx", "charts/dependencies/ingress-nginx");
        CHECK(c.name == "ingress-nginx");
        CHECK(c.app_version == "1.5.1");
        CHECK(c.version == "4.4.0");
        CHECK(c.annotations.count("artifacthub.io/changes") == 1);
        Coalesced r = coalesce(c, {});
        CHECK(text_at(r.values, "controller.image.image") == "ingress-nginx/controller");
    }

    SUBCASE("metallb packaged chart") {
        fs::path tgz = k8s / "charts/dependencies/metallb-0.13.7.tgz";
        REQUIRE_MESSAGE(fs::exists(tgz), "the corpus has no " << tgz.string());
        Chart c = load_chart(tgz, "charts/dependencies/metallb-0.13.7.tgz");
        CHECK(c.name == "metallb");
        CHECK(c.app_version == "v0.13.7");
        CHECK(c.display == "charts/dependencies/metallb-0.13.7.tgz:metallb");
        bool has_controller = false;
        for (const auto& f : c.templates)
            if (f.display == "charts/dependencies/metallb-0.13.7.tgz:metallb/templates/controller.yaml")
                has_controller = true;
        CHECK(has_controller);
        const Chart* crds = find_sub(c, "crds");
        REQUIRE(crds);
        CHECK(crds->display == "charts/dependencies/metallb-0.13.7.tgz:metallb/charts/crds");
        Coalesced r = coalesce(c, {});
        const Coalesced* rc = find_sub(r, "crds");
        REQUIRE(rc);
        CHECK(rc->enabled);
        Coalesced off = coalesce(c, {parse_yaml("crds:\n  enabled: false\n", "u.yaml")});
        CHECK_FALSE(find_sub(off, "crds")->enabled);
        const Value* repo = r.values.at_path("controller.image.repository");
        REQUIRE(repo);
        CHECK(repo->text() == "quay.io/metallb/controller");
        CHECK(repo->origin().file == "charts/dependencies/metallb-0.13.7.tgz:metallb/values.yaml");
        CHECK(repo->origin().line == 199);
        CHECK(r.values.at_path("controller.image.tag")->is_null());
    }
}
