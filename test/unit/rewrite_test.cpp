#include "testing.hpp"

#include "aas_bundle/rewrite/rewrite.hpp"

#include "aas_bundle/discovery/discovery.hpp"
#include "aas_bundle/manifest/manifest.hpp"
#include "aas_bundle/util/error.hpp"
#include "aas_bundle/util/fs.hpp"
#include "aas_bundle/util/strings.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using aas::bundle::ReleaseRecord;
using aas::bundle::SiteRecord;
using aas::ref::Reference;
using aas::rewrite::FileChange;
using aas::rewrite::ImageTarget;
using aas::rewrite::Plan;
using aas::testing::slurp;
using aas::testing::TempDir;

namespace {

constexpr const char* target_registry = "127.0.0.1:5999";

fs::path source_dir() {
#ifdef AAS_SOURCE_DIR
    return AAS_SOURCE_DIR;
#else
    return fs::absolute(fs::path(__FILE__)).parent_path().parent_path().parent_path();
#endif
}

fs::path corpus_k8s() {
    if (const char* env = std::getenv("AAS_CORPUS")) return fs::path(env) / "appstore-ai/k8s";
    std::error_code ec;
    for (fs::path p = source_dir(); !p.empty(); p = p.parent_path()) {
        fs::path k8s = p / "shared" / "corpus" / "appstore-ai" / "k8s";
        if (fs::is_directory(k8s, ec)) return k8s;
        if (p == p.parent_path()) break;
    }
    return {};
}

void write(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
}

std::string read(const fs::path& p) {
    return aas::util::read_file(p);
}

Reference target_of(const Reference& r) {
    std::string s = std::string(target_registry) + "/airgap/" + r.repository();
    if (r.has_tag()) s += ":" + r.tag();
    if (r.has_digest()) s += "@" + r.digest();
    return Reference::parse(s);
}

SiteRecord record_of(const aas::discovery::Site& s) {
    SiteRecord r{s.release,
                 s.chart,
                 s.file,
                 s.line,
                 s.values_path,
                 s.written,
                 s.template_file,
                 s.template_line,
                 aas::discovery::to_string(s.cls),
                 s.reference,
                 {}};
    for (const auto& p : s.parts)
        r.parts.push_back(aas::bundle::PartRecord{p.part, p.file, p.line, p.values_path, p.file_key, p.written, p.at});
    return r;
}

// Every image found, pointed at 127.0.0.1:5999/airgap/<path> with all its sites.
std::vector<ImageTarget> targets_of(const aas::discovery::Result& found) {
    std::vector<ImageTarget> targets;
    for (const auto& img : found.images) {
        ImageTarget t{img.ref.str(), target_of(img.ref), {}};
        for (const auto& s : img.sites) t.sites.push_back(record_of(s));
        targets.push_back(std::move(t));
    }
    return targets;
}

bool in_k8s(const std::string& file) {
    return file.rfind("k8s/", 0) == 0;
}

// Copies a k8s folder into a temporary root, discovers it with `manifest_file`, points every
// image at 127.0.0.1:5999/airgap/<path>, plans, applies and discovers again.
struct Run {
    TempDir dir;
    fs::path original;
    aas::manifest::Manifest manifest;
    aas::discovery::Result before, after;
    std::vector<ImageTarget> targets;
    std::vector<ReleaseRecord> releases;
    Plan plan;

    Run(const fs::path& manifest_file, const fs::path& k8s) : original(k8s) {
        fs::copy(k8s, dir.path / "k8s", fs::copy_options::recursive | fs::copy_options::copy_symlinks);
        manifest = aas::manifest::load(manifest_file);
        before = aas::discovery::discover(manifest, dir.path / "k8s");
        for (const auto& r : manifest.releases)
            releases.push_back(ReleaseRecord{r.name, r.chart, r.namespace_, r.values});
        targets = targets_of(before);
        plan = aas::rewrite::plan(dir.path, targets, releases);
        aas::rewrite::apply(dir.path, plan);
        auto m2 = manifest;
        for (auto& r : m2.releases)
            for (const auto& pr : plan.releases)
                if (pr.name == r.name) r.values = pr.values;
        after = aas::discovery::discover(m2, dir.path / "k8s");
        if (std::getenv("AAS_SHOW_DIFF"))
            for (const auto& c : plan.changes) MESSAGE(aas::rewrite::unified_diff(c));
    }

    const FileChange* change(const std::string& path) const {
        for (const auto& c : plan.changes)
            if (c.path == path) return &c;
        return nullptr;
    }
};

// (1) Every image found after the rewrite (at a site in k8s/) is under the target registry,
// and is exactly the target of an image found before.
void check_only_targets(const Run& r, const std::set<std::string>& expected_missing = {}) {
    std::set<std::string> wanted;
    for (const auto& t : r.targets) {
        bool k8s_site = false;
        for (const auto& s : t.sites) k8s_site = k8s_site || in_k8s(s.file);
        if (k8s_site && !expected_missing.count(t.source)) wanted.insert(t.target.str());
    }
    std::set<std::string> found;
    for (const auto& img : r.after.images) {
        bool k8s_site = false;
        for (const auto& s : img.sites) k8s_site = k8s_site || in_k8s(s.file);
        if (!k8s_site) continue; // the manifest's own images entries
        INFO("after rewrite: ", img.ref.str());
        CHECK(img.ref.registry() == target_registry);
        found.insert(img.ref.str());
    }
    CHECK(found == wanted);
    CHECK(r.after.unresolved.empty());
}

struct Hunk {
    int old_start = 0;
    std::vector<std::string> lines; // with their mark
};

std::vector<Hunk> hunks_of(const std::string& diff) {
    std::vector<Hunk> out;
    for (const auto& l : aas::util::split(diff, '\n')) {
        if (l.rfind("@@ -", 0) == 0) {
            Hunk h;
            h.old_start = std::stoi(l.substr(4));
            out.push_back(h);
        } else if (!out.empty() && !l.empty() && l[0] != '\\') {
            out.back().lines.push_back(l);
        }
    }
    return out;
}

std::string key_part(const std::string& line) {
    auto colon = line.find(": ");
    return colon == std::string::npos ? line : line.substr(0, colon + 2);
}

// (2) Comparing each changed file with the original shows only image lines changed (the
// lines discovery recorded, or image keys of the same map) and lines inserted.
void check_only_image_lines(const Run& r) {
    std::map<std::string, std::set<int>> site_lines;
    for (const auto& img : r.before.images)
        for (const auto& s : img.sites) {
            site_lines[s.file].insert(s.line);
            for (const auto& p : s.parts) site_lines[p.file].insert(p.line); // a joined reference's values
        }
    static const std::set<std::string> image_keys = {"image", "repository", "registry", "name"};
    for (const auto& c : r.plan.changes) {
        INFO("file ", c.path);
        auto diff = aas::rewrite::unified_diff(c);
        REQUIRE(!diff.empty());
        for (const auto& h : hunks_of(diff)) {
            int old_line = h.old_start;
            std::vector<std::pair<int, std::string>> removed;
            std::vector<std::string> added;
            auto flush = [&] {
                REQUIRE(removed.size() <= added.size());
                for (std::size_t i = 0; i < removed.size(); ++i) {
                    const auto& [n, text] = removed[i];
                    std::string key(aas::util::trim(key_part(text)));
                    if (!key.empty() && key[0] == '-') key = std::string(aas::util::trim(key.substr(1)));
                    if (key.size() > 2) key.resize(key.size() - 2);
                    INFO("removed line ", n, ": ", text);
                    CHECK((site_lines[c.path].count(n) > 0 || image_keys.count(key) > 0));
                    CHECK(key_part(added[i]) == key_part(text)); // same key, same indentation
                }
                for (std::size_t i = removed.size(); i < added.size(); ++i) {
                    INFO("inserted line: ", added[i]);
                    CHECK((added[i].find(':') != std::string::npos || (c.created && added[i].rfind("# ", 0) == 0)));
                }
                removed.clear();
                added.clear();
            };
            for (const auto& l : h.lines) {
                if (l[0] == ' ') {
                    flush();
                    ++old_line;
                } else if (l[0] == '-') {
                    if (!added.empty()) flush();
                    removed.emplace_back(old_line++, l.substr(1));
                } else if (l[0] == '+') {
                    added.push_back(l.substr(1));
                }
            }
            flush();
        }
    }
}

// (3) Files without a change are byte for byte the original; changed ones hold `after`.
void check_other_files_identical(const Run& r) {
    std::size_t compared = 0;
    for (const auto& e : fs::recursive_directory_iterator(r.original)) {
        if (!e.is_regular_file() || e.is_symlink()) continue;
        std::string rel = "k8s/" + fs::relative(e.path(), r.original).generic_string();
        const FileChange* c = r.change(rel);
        INFO("file ", rel);
        if (c)
            CHECK(read(r.dir.path / rel) == c->after);
        else
            CHECK(read(r.dir.path / rel) == read(e.path()));
        ++compared;
    }
    CHECK(compared > 10);
}

// A small chart and release written into a temporary root.
struct Mini {
    TempDir dir;
    fs::path k8s() const { return dir.path / "k8s"; }
    void file(const std::string& rel, const std::string& text) { write(dir.path / rel, text); }
    Plan plan_with(const std::string& manifest_text, aas::discovery::Result* found = nullptr,
                   std::vector<ReleaseRecord>* rels = nullptr) {
        file("bundle.yaml", manifest_text);
        auto m = aas::manifest::load(dir.path / "bundle.yaml");
        auto res = aas::discovery::discover(m, k8s());
        auto targets = targets_of(res);
        std::vector<ReleaseRecord> releases;
        for (const auto& r : m.releases) releases.push_back(ReleaseRecord{r.name, r.chart, r.namespace_, r.values});
        if (found) *found = res;
        if (rels) *rels = releases;
        return aas::rewrite::plan(dir.path, targets, releases);
    }
};

const std::string deployment_template = R"(apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  template:
    spec:
      containers:
        - name: api
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
        - name: side
          image: "{{ .Values.sidecar.repository }}:{{ .Values.sidecar.tag }}"
)";

} // namespace

TEST_CASE("rewrite::example folder, every form") {
    fs::path ex = source_dir() / "manifests/example";
    Run r(ex / "example.yaml", ex / "k8s");
    for (const auto& w : r.plan.warnings) MESSAGE("warning: ", w);
    CHECK(r.plan.warnings.empty());
    CHECK(r.before.errors.empty());
    CHECK(r.after.errors.empty());
    check_only_targets(r);
    check_only_image_lines(r);
    check_other_files_identical(r);

    // Bitnami map, chart default: registry and repository inserted at the end of the
    // release's values file (it has no image: section).
    const FileChange* kv = r.change("k8s/environments/production/kvstore-values.yaml");
    REQUIRE(kv);
    CHECK(kv->after == kv->before + "image:\n  registry: 127.0.0.1:5999\n  repository: airgap/example/kvstore\n"
                                    "metrics:\n  image:\n    registry: 127.0.0.1:5999\n"
                                    "    repository: airgap/example/kvstore-exporter\n"
                                    "volumePermissions:\n  image:\n    registry: 127.0.0.1:5999\n"
                                    "    repository: airgap/example/os-shell\n");

    // ingress-nginx map, release without values: a created values file, added to the release.
    const FileChange* edge = r.change("k8s/environments/airgap/edge-ingress-values.yaml");
    REQUIRE(edge);
    CHECK(edge->created);
    CHECK(edge->after.find("controller:\n  image:\n    registry: 127.0.0.1:5999/airgap\n") != std::string::npos);
    CHECK(edge->after.find("defaultBackend:\n  image:\n    registry: 127.0.0.1:5999/airgap\n") != std::string::npos);
    CHECK(edge->after.find("image: edge/") == std::string::npos); // image paths stay the chart's
    bool listed = false;
    for (const auto& rel : r.plan.releases)
        if (rel.name == "edge-ingress")
            listed = rel.values == std::vector<std::string>{"environments/airgap/edge-ingress-values.yaml"};
    CHECK(listed);

    // Full references with placeholders, in place.
    const FileChange* ms = r.change("k8s/environments/production/model-serving-values.yaml");
    REQUIRE(ms);
    CHECK(ms->after.find("  router: 127.0.0.1:5999/airgap/example-serving/serving/router:v0.9.2\n") !=
          std::string::npos);
    CHECK(ms->after.find("  gateway: 127.0.0.1:5999/airgap/servinglabs/envoy-lite:1.21.4\n") != std::string::npos);

    // repository with a placeholder: the name only, in place.
    const FileChange* shop = r.change("k8s/environments/production/shop-frontend-values.yaml");
    REQUIRE(shop);
    CHECK(shop->after.find("  repository: 127.0.0.1:5999/airgap/shop/shop-frontend\n  pullPolicy") !=
          std::string::npos);

    // Digest-only plain manifest and the helm test template: in place.
    const FileChange* op = r.change("k8s/plain/operator.yaml");
    REQUIRE(op);
    CHECK(op->after.find("          image: 127.0.0.1:5999/airgap/exampleshop/shop-operator@sha256:") !=
          std::string::npos);
    CHECK(op->after.find("value: quay.io/exampleshop/kv-backup:0.4.0") != std::string::npos); // not an image site
    const FileChange* test = r.change("k8s/charts/shop-frontend/templates/tests/test-connection.yaml");
    REQUIRE(test);
    CHECK(test->after.find("      image: 127.0.0.1:5999/airgap/library/busybox\n") != std::string::npos);

    // Chart defaults are never edited when a release can override them.
    CHECK_FALSE(r.change("k8s/charts/dependencies/kvstore/values.yaml"));
    CHECK_FALSE(r.change("k8s/charts/model-serving/values.yaml"));

    // Planning again over the result, each image to itself, changes nothing.
    std::vector<ImageTarget> same;
    for (const auto& img : r.after.images) {
        ImageTarget t{img.ref.str(), img.ref, {}};
        for (const auto& s : img.sites) t.sites.push_back(record_of(s));
        same.push_back(std::move(t));
    }
    auto again = aas::rewrite::plan(r.dir.path, same, r.plan.releases);
    CHECK(again.changes.empty());
    for (const auto& w : again.warnings) MESSAGE("warning: ", w);
    CHECK(again.warnings.empty());
}

TEST_CASE("rewrite::a folder scanned without a manifest edits chart defaults in place") {
    fs::path k8s = source_dir() / "manifests/example/k8s";
    TempDir dir;
    fs::copy(k8s, dir.path / "k8s", fs::copy_options::recursive);
    auto before = aas::discovery::discover_path(dir.path / "k8s");
    auto targets = targets_of(before);
    auto p = aas::rewrite::plan(dir.path, targets, {});
    for (const auto& w : p.warnings) MESSAGE("warning: ", w);
    CHECK(p.warnings.empty());
    aas::rewrite::apply(dir.path, p);
    auto after = aas::discovery::discover_path(dir.path / "k8s");
    CHECK(after.images.size() == before.images.size());
    for (const auto& img : after.images) {
        INFO(img.ref.str());
        CHECK(img.ref.registry() == target_registry);
    }
    std::string kv = read(dir.path / "k8s/charts/dependencies/kvstore/values.yaml");
    CHECK(kv.find("image:\n  registry: 127.0.0.1:5999\n  repository: airgap/example/kvstore\n  tag: 7.0.5-r1\n") !=
          std::string::npos);
}

namespace {
bool have_corpus() {
    fs::path k8s = corpus_k8s();
    return !k8s.empty() && fs::is_directory(k8s / "charts");
}
} // namespace

// Reported as skipped when ../shared/corpus/appstore-ai is absent.
TEST_CASE("rewrite::AI App Store corpus" * doctest::skip(!have_corpus())) {
    fs::path k8s = corpus_k8s();
    REQUIRE_MESSAGE(have_corpus(), "shared corpus ../shared/corpus/appstore-ai/k8s not found");
    Run r(source_dir() / "manifests/ai-appstore.yaml", k8s);
    for (const auto& w : r.plan.warnings) MESSAGE("warning: ", w);
    CHECK(r.plan.warnings.empty());
    // The invalid `queue@sha256:v1.8.3` was never resolved: it is still there, still an error.
    CHECK(r.before.errors.size() == 1);
    CHECK(r.after.errors.size() == r.before.errors.size());
    check_only_targets(r);
    check_only_image_lines(r);
    check_other_files_identical(r);
    MESSAGE(r.plan.changes.size(), " files changed for ", r.targets.size(), " images");

    // The whole folder without the manifest (chart defaults, metallb's .tgz included): chart
    // defaults are edited in place, what is inside an archive is reported.
    TempDir dir;
    fs::copy(k8s, dir.path / "k8s", fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    auto before = aas::discovery::discover_path(dir.path / "k8s");
    auto targets = targets_of(before);
    auto p = aas::rewrite::plan(dir.path, targets, {});
    for (const auto& w : p.warnings) MESSAGE("folder scan warning: ", w);
    aas::rewrite::apply(dir.path, p);
    auto after = aas::discovery::discover_path(dir.path / "k8s");
    std::size_t moved = 0;
    for (const auto& img : after.images) moved += img.ref.registry() == target_registry;
    MESSAGE("folder scan: ", before.images.size(), " images before, ", moved, " of ", after.images.size(),
            " under the target after, ", p.changes.size(), " files changed, ", p.warnings.size(), " warnings");
    CHECK(after.images.size() == before.images.size());
    for (const auto& img : after.images) {
        if (img.ref.registry() == target_registry) continue;
        INFO("not rewritten: ", img.ref.str());
        bool warned = false;
        for (const auto& w : p.warnings)
            warned = warned || (w.find(".tgz:") != std::string::npos &&
                                w.find("airgap/" + img.ref.repository()) != std::string::npos);
        CHECK(warned);
    }
}

TEST_CASE("rewrite::charts packaged as .tgz: values files only") {
    Mini m;
    m.file("src/tiny/Chart.yaml", "apiVersion: v2\nname: tiny\nversion: 1.0.0\n");
    m.file("src/tiny/values.yaml", "image:\n  repository: acme/tiny\n  tag: \"1.0\"\n");
    m.file("src/tiny/templates/deployment.yaml",
           "apiVersion: v1\nkind: Pod\nmetadata:\n  name: tiny\nspec:\n  containers:\n    - name: tiny\n"
           "      image: \"{{ .Values.image.repository }}:{{ .Values.image.tag }}\"\n");
    m.file("src/tiny/templates/tests/test.yaml",
           "apiVersion: v1\nkind: Pod\nmetadata:\n  name: tiny-test\n  annotations:\n    helm.sh/hook: test\n"
           "spec:\n  containers:\n    - name: t\n      image: busybox:1.36\n");
    fs::create_directories(m.k8s() / "charts");
    std::string cmd = fmt::format("tar -czf '{}' -C '{}' tiny", (m.k8s() / "charts/tiny-1.0.0.tgz").string(),
                                  (m.dir.path / "src").string());
    REQUIRE(std::system(cmd.c_str()) == 0);
    m.file("k8s/env/tiny-values.yaml", "replicas: 2\n");
    std::string tgz = read(m.k8s() / "charts/tiny-1.0.0.tgz");
    auto p = m.plan_with(
        "apiVersion: aas-bundle/v1\nkind: Bundle\nname: t\nversion: '1'\nk8s: k8s\n"
        "releases:\n  - name: tiny\n    chart: charts/tiny-1.0.0.tgz\n    values: [env/tiny-values.yaml]\n");
    REQUIRE(p.changes.size() == 1);
    CHECK(p.changes[0].path == "k8s/env/tiny-values.yaml");
    CHECK(p.changes[0].after == "replicas: 2\nimage:\n  repository: 127.0.0.1:5999/airgap/acme/tiny\n");
    REQUIRE(p.warnings.size() == 1);
    CHECK(p.warnings[0].rfind("k8s/charts/tiny-1.0.0.tgz:tiny/templates/tests/test.yaml:10: image: ", 0) == 0);
    aas::rewrite::apply(m.dir.path, p);
    CHECK(read(m.k8s() / "charts/tiny-1.0.0.tgz") == tgz);
}

TEST_CASE("rewrite::comments, quoting, trailing spaces and CRLF are kept") {
    Mini m;
    m.file("k8s/charts/app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 1.0.0\n");
    m.file("k8s/charts/app/values.yaml",
           "image:\n  repository: acme/api\n  tag: \"1.0\"\nsidecar:\n  repository: acme/side\n  tag: \"2.0\"\n");
    m.file("k8s/charts/app/templates/deployment.yaml", deployment_template);
    const std::string values = "# Production values.\r\n"
                               "image:\r\n"
                               "  repository: \"<REGISTRY>/acme/api\"   # the API server\r\n"
                               "  tag: '1.0'  \r\n"
                               "\r\n"
                               "sidecar:   \r\n"
                               "  # a comment\r\n"
                               "  'repository': '<REGISTRY>/acme/side'\r\n"
                               "  tag: \"2.0\"\r\n";
    m.file("k8s/env/app-values.yaml", values);
    auto p = m.plan_with("apiVersion: aas-bundle/v1\nkind: Bundle\nname: t\nversion: '1'\nk8s: k8s\n"
                         "releases:\n  - name: app\n    chart: charts/app\n    values: [env/app-values.yaml]\n");
    CHECK(p.warnings.empty());
    REQUIRE(p.changes.size() == 1);
    CHECK(p.changes[0].path == "k8s/env/app-values.yaml");
    CHECK(p.changes[0].after == "# Production values.\r\n"
                                "image:\r\n"
                                "  repository: \"127.0.0.1:5999/airgap/acme/api\"   # the API server\r\n"
                                "  tag: '1.0'  \r\n"
                                "\r\n"
                                "sidecar:   \r\n"
                                "  # a comment\r\n"
                                "  'repository': '127.0.0.1:5999/airgap/acme/side'\r\n"
                                "  tag: \"2.0\"\r\n");
    aas::rewrite::apply(m.dir.path, p);
    CHECK(read(m.k8s() / "env/app-values.yaml") == p.changes[0].after);
}

TEST_CASE("rewrite::inserting under an existing parent, into a subchart section, and creating a values file") {
    Mini m;
    m.file("k8s/charts/app/Chart.yaml",
           "apiVersion: v2\nname: app\nversion: 1.0.0\ndependencies:\n  - name: db\n    version: 1.0.0\n");
    m.file("k8s/charts/app/values.yaml", "image:\n  repository: acme/api\n  tag: \"1.0\"\n"
                                         "sidecar:\n  repository: acme/side\n  tag: \"2.0\"\n");
    m.file("k8s/charts/app/templates/deployment.yaml", deployment_template);
    m.file("k8s/charts/app/charts/db/Chart.yaml", "apiVersion: v2\nname: db\nversion: 1.0.0\n");
    m.file("k8s/charts/app/charts/db/values.yaml",
           "image:\n  registry: docker.io\n  repository: acme/db\n  tag: 15.1.0\n  pullPolicy: IfNotPresent\n");
    m.file("k8s/charts/app/charts/db/templates/db.yaml",
           "apiVersion: v1\nkind: Pod\nmetadata:\n  name: db\nspec:\n  containers:\n    - name: db\n"
           "      image: {{ .Values.image.registry }}/{{ .Values.image.repository }}:{{ .Values.image.tag }}\n");
    // `image:` exists (without repository), `db:` exists (without image), `sidecar:` does not;
    // a block scalar ends the image section.
    const std::string values = "image:\n"
                               "    pullPolicy: Always\n"
                               "    note: |\n"
                               "      # not a comment: text\n"
                               "\n"
                               "db:\n"
                               "    auth:\n"
                               "        enabled: true\n"
                               "# the end\n"
                               "extra: 1";
    m.file("k8s/env/app-values.yaml", values);
    m.file("k8s/charts/other/Chart.yaml", "apiVersion: v2\nname: other\nversion: 1.0.0\n");
    m.file("k8s/charts/other/values.yaml", "image:\n  repository: acme/other\n  tag: \"3.0\"\n"
                                           "sidecar:\n  repository: acme/side\n  tag: \"2.0\"\n");
    m.file("k8s/charts/other/templates/deployment.yaml", deployment_template);
    std::vector<ReleaseRecord> releases;
    auto p = m.plan_with("apiVersion: aas-bundle/v1\nkind: Bundle\nname: t\nversion: '1'\nk8s: k8s\n"
                         "releases:\n  - name: app\n    chart: charts/app\n    values: [env/app-values.yaml]\n"
                         "  - name: other\n    chart: charts/other\n",
                         nullptr, &releases);
    for (const auto& w : p.warnings) MESSAGE("warning: ", w);
    CHECK(p.warnings.empty());
    REQUIRE(p.changes.size() == 2);
    CHECK(p.changes[0].path == "k8s/env/app-values.yaml");
    CHECK(p.changes[0].after == "image:\n"
                                "    pullPolicy: Always\n"
                                "    note: |\n"
                                "      # not a comment: text\n"
                                "    repository: 127.0.0.1:5999/airgap/acme/api\n"
                                "\n"
                                "db:\n"
                                "    auth:\n"
                                "        enabled: true\n"
                                "    image:\n"
                                "        registry: 127.0.0.1:5999\n"
                                "        repository: airgap/acme/db\n"
                                "# the end\n"
                                "extra: 1\n"
                                "sidecar:\n"
                                "    repository: 127.0.0.1:5999/airgap/acme/side\n");
    CHECK(p.changes[1].path == "k8s/environments/airgap/other-values.yaml");
    CHECK(p.changes[1].created);
    CHECK(p.changes[1].before.empty());
    CHECK(p.changes[1].after.rfind("# ", 0) == 0);
    CHECK(p.changes[1].after.find("\nimage:\n  repository: 127.0.0.1:5999/airgap/acme/other\n"
                                  "sidecar:\n  repository: 127.0.0.1:5999/airgap/acme/side\n") != std::string::npos);
    REQUIRE(p.releases.size() == 2);
    CHECK(p.releases[0].values == releases[0].values);
    CHECK(p.releases[1].values == std::vector<std::string>{"environments/airgap/other-values.yaml"});

    aas::rewrite::apply(m.dir.path, p);
    CHECK(fs::exists(m.k8s() / "environments/airgap/other-values.yaml"));
    CHECK((fs::status(m.k8s() / "environments/airgap/other-values.yaml").permissions() & fs::perms::owner_write) !=
          fs::perms::none);
    // Discovery over the result, with the created file, finds only targets.
    auto man = aas::manifest::load(m.dir.path / "bundle.yaml");
    man.releases[1].values = p.releases[1].values;
    auto res = aas::discovery::discover(man, m.k8s());
    REQUIRE(res.images.size() == 4);
    for (const auto& img : res.images) CHECK(img.ref.registry() == target_registry);
    // Applying a plan whose files changed in between is refused.
    CHECK_THROWS_AS(aas::rewrite::apply(m.dir.path, p), aas::Error);
}

TEST_CASE("rewrite::a subchart's default without a release is edited in its own values.yaml") {
    Mini m;
    m.file("k8s/charts/app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 1.0.0\n");
    m.file("k8s/charts/app/charts/db/Chart.yaml", "apiVersion: v2\nname: db\nversion: 1.0.0\n");
    m.file("k8s/charts/app/charts/db/values.yaml",
           "image:\n  registry: docker.io # upstream\n  repository: 'acme/db'\n  tag: 15.1.0\n");
    m.file("k8s/charts/app/charts/db/templates/db.yaml",
           "apiVersion: v1\nkind: Pod\nmetadata:\n  name: db\nspec:\n  containers:\n    - name: db\n"
           "      image: {{ .Values.image.registry }}/{{ .Values.image.repository }}:{{ .Values.image.tag }}\n");
    auto res = aas::discovery::discover_path(m.k8s());
    REQUIRE(res.images.size() == 1);
    ImageTarget t{res.images[0].ref.str(), target_of(res.images[0].ref), {}};
    for (const auto& s : res.images[0].sites) t.sites.push_back(record_of(s));
    auto p = aas::rewrite::plan(m.dir.path, {t}, {});
    for (const auto& w : p.warnings) MESSAGE("warning: ", w);
    CHECK(p.warnings.empty());
    REQUIRE(p.changes.size() == 1);
    CHECK(p.changes[0].path == "k8s/charts/app/charts/db/values.yaml");
    CHECK(p.changes[0].after ==
          "image:\n  registry: 127.0.0.1:5999 # upstream\n  repository: 'airgap/acme/db'\n  tag: 15.1.0\n");
}

TEST_CASE("rewrite::file modes are kept") {
    Mini m;
    m.file("k8s/plain/app.yaml", "kind: Pod\napiVersion: v1\nspec:\n  containers:\n    - image: busybox:1.36\n");
    fs::permissions(m.k8s() / "plain/app.yaml", fs::perms::owner_read | fs::perms::owner_write);
    auto p = m.plan_with("apiVersion: aas-bundle/v1\nkind: Bundle\nname: t\nversion: '1'\nk8s: k8s\n"
                         "manifests: [plain/app.yaml]\n");
    REQUIRE(p.changes.size() == 1);
    CHECK(p.changes[0].after.find("    - image: 127.0.0.1:5999/airgap/library/busybox:1.36\n") != std::string::npos);
    aas::rewrite::apply(m.dir.path, p);
    CHECK(fs::status(m.k8s() / "plain/app.yaml").permissions() == (fs::perms::owner_read | fs::perms::owner_write));
}

TEST_CASE("rewrite::two images at one place is an error naming both") {
    Mini m;
    m.file("k8s/plain/app.yaml", "kind: Pod\napiVersion: v1\nspec:\n  containers:\n    - image: busybox:1.36\n");
    SiteRecord s{"", "", "k8s/plain/app.yaml", 5, "spec.containers[0].image", "busybox:1.36", "", 0, "required"};
    std::vector<ImageTarget> images{
        {"docker.io/library/busybox:1.36", Reference::parse("reg.a:5000/library/busybox:1.36"), {s}},
        {"docker.io/library/busybox:1.36", Reference::parse("reg.b:5000/library/busybox:1.36"), {s}},
    };
    try {
        aas::rewrite::plan(m.dir.path, images, {});
        FAIL("no error");
    } catch (const aas::Error& e) {
        std::string what = e.what();
        CHECK(what.find("reg.a:5000/library/busybox:1.36") != std::string::npos);
        CHECK(what.find("reg.b:5000/library/busybox:1.36") != std::string::npos);
        CHECK(what.find("k8s/plain/app.yaml:5") != std::string::npos);
    }
    // The same target twice is one edit.
    images[1].target = images[0].target;
    CHECK(aas::rewrite::plan(m.dir.path, images, {}).changes.size() == 1);
}

TEST_CASE("rewrite::what cannot be edited is a warning") {
    Mini m;
    m.file("k8s/plain/app.yaml", "kind: Pod\napiVersion: v1\nspec:\n  containers:\n    - image: busybox:1.36\n");
    std::vector<ImageTarget> images{
        {"docker.io/library/busybox:1.36",
         Reference::parse("reg.a:5000/library/busybox:1.36"),
         {// a template inside a chart archive
          SiteRecord{"", "k8s/charts/x.tgz:x", "k8s/charts/x.tgz:x/templates/tests/t.yaml", 9, "", "busybox:1.36",
                     "k8s/charts/x.tgz:x/templates/tests/t.yaml", 9, "test"},
          // the line does not hold what discovery saw
          SiteRecord{"", "", "k8s/plain/app.yaml", 4, "spec.containers[0].image", "busybox:1.36", "", 0, "required"},
          // outside k8s/: ignored
          SiteRecord{"", "", "bundle.yaml", 12, "images", "", "", 0, "required"}}},
    };
    auto p = aas::rewrite::plan(m.dir.path, images, {});
    CHECK(p.changes.empty());
    REQUIRE(p.warnings.size() == 2);
    CHECK(p.warnings[0].rfind("k8s/charts/x.tgz:x/templates/tests/t.yaml:9: image: ", 0) == 0);
    CHECK(p.warnings[1].rfind("k8s/plain/app.yaml:4: spec.containers[0].image: ", 0) == 0);
}

namespace {

// strimzi style: each image is the shared registry, the shared repository (organisation),
// its own name, and the shared tag or its own.
const std::string joined_values = "defaultImageRegistry: registry.example.io\n"
                                  "defaultImageRepository: acme\n"
                                  "defaultImageTag: \"1.2.0\"\n"
                                  "operator:\n  image:\n    name: operator\n"
                                  "bridge:\n  image:\n    name: bridge\n    tag: \"0.9.1\"\n";
const std::string joined_template = R"(apiVersion: apps/v1
kind: Deployment
metadata:
  name: op
spec:
  template:
    spec:
      containers:
        - name: op
          image: {{ .Values.defaultImageRegistry }}/{{ .Values.defaultImageRepository }}/{{ .Values.operator.image.name }}:{{ .Values.defaultImageTag }}
          env:
            - name: BRIDGE_IMAGE
              value: {{ .Values.defaultImageRegistry }}/{{ .Values.defaultImageRepository }}/{{ .Values.bridge.image.name }}:{{ .Values.bridge.image.tag | default .Values.defaultImageTag }}
)";

const aas::discovery::Image* image_named(const aas::discovery::Result& r, const std::string& ref) {
    for (const auto& i : r.images)
        if (i.ref.str() == ref) return &i;
    return nullptr;
}

} // namespace

TEST_CASE("rewrite::discovery records the values a joined reference is built from") {
    Mini m;
    m.file("k8s/charts/kafka/Chart.yaml", "apiVersion: v2\nname: kafka\nversion: 1.0.0\n");
    m.file("k8s/charts/kafka/values.yaml", joined_values);
    m.file("k8s/charts/kafka/templates/op.yaml", joined_template);
    auto res = aas::discovery::discover_path(m.k8s());
    const auto* op = image_named(res, "registry.example.io/acme/operator:1.2.0");
    REQUIRE(op);
    REQUIRE(op->sites.size() == 1);
    const auto& s = op->sites[0];
    CHECK(s.reference == "registry.example.io/acme/operator:1.2.0");
    std::vector<std::string> parts;
    for (const auto& p : s.parts) {
        CHECK(s.reference.compare(p.at, p.written.size(), p.written) == 0);
        CHECK(p.file == "k8s/charts/kafka/values.yaml");
        parts.push_back(fmt::format("{} {} {}@{}", p.part, p.values_path, p.line, p.at));
    }
    CHECK(parts == std::vector<std::string>{"registry defaultImageRegistry 1@0",
                                            "repository defaultImageRepository 2@20",
                                            "repository operator.image.name 6@25", "tag defaultImageTag 3@34"});
    // One value or one map's fields need no parts: values_path says it all.
    Mini one;
    one.file("k8s/charts/app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 1.0.0\n");
    one.file("k8s/charts/app/values.yaml",
             "image:\n  registry: registry.example.io\n  repository: acme/app\n  tag: \"1\"\n");
    one.file("k8s/charts/app/templates/d.yaml",
             "kind: Pod\napiVersion: v1\nspec:\n  containers:\n    - name: a\n"
             "      image: {{ .Values.image.registry }}/{{ .Values.image.repository }}:{{ .Values.image.tag }}\n");
    auto plain = aas::discovery::discover_path(one.k8s());
    REQUIRE(plain.images.size() == 1);
    CHECK(plain.images[0].sites.at(0).values_path == "image");
    CHECK(plain.images[0].sites.at(0).parts.empty());
}

TEST_CASE("rewrite::a reference joined from top-level values rewrites the shared registry once") {
    Mini m;
    m.file("k8s/charts/kafka/Chart.yaml", "apiVersion: v2\nname: kafka\nversion: 1.0.0\n");
    m.file("k8s/charts/kafka/values.yaml", joined_values);
    m.file("k8s/charts/kafka/templates/op.yaml", joined_template);
    m.file("k8s/env/kafka-values.yaml", "# production\noperator:\n  replicas: 2\n");
    const std::string manifest = "apiVersion: aas-bundle/v1\nkind: Bundle\nname: t\nversion: '1'\nk8s: k8s\n"
                                 "releases:\n  - name: kafka\n    chart: charts/kafka\n"
                                 "    values: [env/kafka-values.yaml]\n";
    aas::discovery::Result found;
    auto p = m.plan_with(manifest, &found);
    for (const auto& w : p.warnings) MESSAGE("warning: ", w);
    CHECK(p.warnings.empty());
    REQUIRE(found.images.size() == 2);
    // Both images take the registry from defaultImageRegistry, a chart default: one key
    // inserted into the release's values file, holding the target registry and prefix.
    REQUIRE(p.changes.size() == 1);
    CHECK(p.changes[0].path == "k8s/env/kafka-values.yaml");
    CHECK(p.changes[0].after ==
          "# production\noperator:\n  replicas: 2\ndefaultImageRegistry: 127.0.0.1:5999/airgap\n");
    aas::rewrite::apply(m.dir.path, p);
    auto after = aas::discovery::discover(aas::manifest::load(m.dir.path / "bundle.yaml"), m.k8s());
    std::set<std::string> refs;
    for (const auto& i : after.images) refs.insert(i.ref.str());
    CHECK(refs == std::set<std::string>{"127.0.0.1:5999/airgap/acme/bridge:0.9.1",
                                        "127.0.0.1:5999/airgap/acme/operator:1.2.0"});

    // Set in the release's values file: edited there, in place.
    Mini w;
    w.file("k8s/charts/kafka/Chart.yaml", "apiVersion: v2\nname: kafka\nversion: 1.0.0\n");
    w.file("k8s/charts/kafka/values.yaml", joined_values);
    w.file("k8s/charts/kafka/templates/op.yaml", joined_template);
    w.file("k8s/env/kafka-values.yaml", "defaultImageRegistry: \"mirror.example.io\" # ours\n");
    p = w.plan_with(manifest, &found);
    CHECK(p.warnings.empty());
    REQUIRE(p.changes.size() == 1);
    CHECK(p.changes[0].after == "defaultImageRegistry: \"127.0.0.1:5999/airgap\" # ours\n");

    // The two images to different registries through one value is the error naming both.
    auto targets = targets_of(found);
    REQUIRE(targets.size() == 2);
    targets[1].target =
        Reference::parse("reg.b:5000/" + targets[1].target.repository() + ":" + targets[1].target.tag());
    try {
        aas::rewrite::plan(w.dir.path, targets,
                           {ReleaseRecord{"kafka", "charts/kafka", "default", {"env/kafka-values.yaml"}}});
        FAIL("no error");
    } catch (const aas::Error& e) {
        std::string what = e.what();
        CHECK(what.find("defaultImageRegistry") != std::string::npos);
        CHECK(what.find("reg.b:5000") != std::string::npos);
        CHECK(what.find("127.0.0.1:5999/airgap") != std::string::npos);
    }
}

TEST_CASE("rewrite::a joined Docker Hub name gets the registry before its first value") {
    Mini m;
    m.file("k8s/charts/app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 1.0.0\n");
    m.file("k8s/charts/app/values.yaml", "org: acme\nhub: docker.io\n"
                                         "image:\n  name: app\n  tag: \"2.0\"\n"
                                         "tools:\n  name: busybox\n  tag: \"1.36\"\n");
    m.file("k8s/charts/app/templates/d.yaml",
           "kind: Pod\napiVersion: v1\nspec:\n  containers:\n    - name: a\n"
           "      image: {{ .Values.org }}/{{ .Values.image.name }}:{{ .Values.image.tag }}\n"
           "    - name: b\n"
           "      image: {{ .Values.hub }}/{{ .Values.tools.name }}:{{ .Values.tools.tag }}\n");
    auto found = aas::discovery::discover_path(m.k8s());
    auto p = aas::rewrite::plan(m.dir.path, targets_of(found), {});
    for (const auto& w : p.warnings) MESSAGE("warning: ", w);
    CHECK(p.warnings.empty());
    REQUIRE(p.changes.size() == 1);
    // acme/app -> 127.0.0.1:5999/airgap/acme/app; docker.io/busybox is library/busybox.
    CHECK(p.changes[0].after == "org: 127.0.0.1:5999/airgap/acme\nhub: 127.0.0.1:5999/airgap/library\n"
                                "image:\n  name: app\n  tag: \"2.0\"\n"
                                "tools:\n  name: busybox\n  tag: \"1.36\"\n");
    aas::rewrite::apply(m.dir.path, p);
    std::set<std::string> refs;
    for (const auto& i : aas::discovery::discover_path(m.k8s()).images) refs.insert(i.ref.str());
    CHECK(refs ==
          std::set<std::string>{"127.0.0.1:5999/airgap/acme/app:2.0", "127.0.0.1:5999/airgap/library/busybox:1.36"});
}

TEST_CASE("rewrite::a joined reference whose registry is a chart file's value edits that file") {
    Mini m;
    m.file("k8s/charts/app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 1.0.0\n");
    m.file("k8s/charts/app/values.yaml", "image:\n  repository: acme/worker\n  tag: \"1.0\"\n");
    m.file("k8s/charts/app/files/registry.yaml",
           "# where images come from\nimages:\n  registry: 'registry.example.io'\n");
    m.file("k8s/charts/app/templates/d.yaml",
           "{{- $f := .Files.Get \"files/registry.yaml\" | fromYaml }}\n"
           "kind: Pod\napiVersion: v1\nspec:\n  containers:\n    - name: a\n"
           "      image: {{ $f.images.registry }}/{{ .Values.image.repository }}:{{ .Values.image.tag }}\n");
    m.file("k8s/env/app-values.yaml", "image:\n  tag: \"1.0\"\n");
    aas::discovery::Result found;
    auto p = m.plan_with("apiVersion: aas-bundle/v1\nkind: Bundle\nname: t\nversion: '1'\nk8s: k8s\n"
                         "releases:\n  - name: app\n    chart: charts/app\n    values: [env/app-values.yaml]\n",
                         &found);
    REQUIRE(found.images.size() == 1);
    const auto& parts = found.images[0].sites.at(0).parts;
    REQUIRE(parts.size() == 3);
    CHECK(parts[0].part == "registry");
    CHECK(parts[0].file == "k8s/charts/app/files/registry.yaml");
    CHECK(parts[0].line == 3);
    CHECK(parts[0].file_key == "images.registry");
    CHECK(parts[0].values_path.empty());
    for (const auto& w : p.warnings) MESSAGE("warning: ", w);
    CHECK(p.warnings.empty());
    REQUIRE(p.changes.size() == 1);
    CHECK(p.changes[0].path == "k8s/charts/app/files/registry.yaml");
    CHECK(p.changes[0].after == "# where images come from\nimages:\n  registry: '127.0.0.1:5999/airgap'\n");
    aas::rewrite::apply(m.dir.path, p);
    auto after = aas::discovery::discover(aas::manifest::load(m.dir.path / "bundle.yaml"), m.k8s());
    REQUIRE(after.images.size() == 1);
    CHECK(after.images[0].ref.str() == "127.0.0.1:5999/airgap/acme/worker:1.0");
}

TEST_CASE("rewrite::a joined reference that cannot be rewritten is a warning") {
    Mini m;
    m.file("k8s/charts/kafka/Chart.yaml", "apiVersion: v2\nname: kafka\nversion: 1.0.0\n");
    m.file("k8s/charts/kafka/values.yaml", joined_values);
    m.file("k8s/charts/kafka/templates/op.yaml", joined_template);
    auto found = aas::discovery::discover_path(m.k8s());
    auto targets = targets_of(found);
    REQUIRE(targets.size() == 2);
    // Flattened (reg/operator): "registry.example.io/acme" is two values and a slash.
    for (auto& t : targets)
        t.target =
            Reference::parse("127.0.0.1:5999/" + t.target.repository().substr(t.target.repository().rfind('/') + 1) +
                             ":" + t.target.tag());
    auto p = aas::rewrite::plan(m.dir.path, targets, {});
    CHECK(p.changes.empty());
    REQUIRE(p.warnings.size() == 2);
    CHECK(p.warnings[0].find("\"registry.example.io/acme\" would become \"127.0.0.1:5999\"") != std::string::npos);
    CHECK(p.warnings[0].find("edit it by hand") != std::string::npos);

    // A part inside a chart archive, and a value that changed since discovery.
    SiteRecord s{"",
                 "k8s/charts/x.tgz:x",
                 "k8s/charts/x.tgz:x/values.yaml",
                 3,
                 "image.repository",
                 "acme/app",
                 "k8s/charts/x.tgz:x/templates/d.yaml",
                 9,
                 "required",
                 "registry.example.io/acme/app:1",
                 {}};
    s.parts.push_back({"registry", "k8s/charts/x.tgz:x/files/r.yaml", 1, "", "registry", "registry.example.io", 0});
    s.parts.push_back({"repository", "k8s/charts/x.tgz:x/values.yaml", 3, "image.repository", "", "acme/app", 20});
    ImageTarget archived{
        "registry.example.io/acme/app:1", target_of(Reference::parse("registry.example.io/acme/app:1")), {s}};
    p = aas::rewrite::plan(m.dir.path, {archived}, {});
    REQUIRE(p.warnings.size() == 1);
    CHECK(p.warnings[0].rfind("k8s/charts/x.tgz:x/files/r.yaml:1: registry: ", 0) == 0);
    CHECK(p.warnings[0].find("inside a chart archive") != std::string::npos);

    targets = targets_of(found);
    m.file("k8s/charts/kafka/values.yaml",
           "defaultImageRegistry: other.example.io\n" + joined_values.substr(joined_values.find('\n') + 1));
    p = aas::rewrite::plan(m.dir.path, targets, {});
    CHECK(p.changes.empty());
    REQUIRE_FALSE(p.warnings.empty());
    CHECK(p.warnings[0].rfind(
              "k8s/charts/kafka/values.yaml:1: defaultImageRegistry: does not hold \"registry.example.io\"", 0) == 0);
}

TEST_CASE("rewrite::unified_diff") {
    FileChange c{"k8s/x.yaml", "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\nm\nn\n",
                 "a\nB\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\nm\nN\nadded\n", false};
    CHECK(aas::rewrite::unified_diff(c) == "--- a/k8s/x.yaml\n+++ b/k8s/x.yaml\n"
                                           "@@ -1,5 +1,5 @@\n a\n-b\n+B\n c\n d\n e\n"
                                           "@@ -11,4 +11,5 @@\n k\n l\n m\n-n\n+N\n+added\n");
    // Changes 6 lines apart share one hunk.
    FileChange near{"k8s/y.yaml", "1\n2\n3\n4\n5\n6\n7\n8\n", "x\n2\n3\n4\n5\n6\n7\ny\n", false};
    CHECK(aas::rewrite::unified_diff(near) ==
          "--- a/k8s/y.yaml\n+++ b/k8s/y.yaml\n@@ -1,8 +1,8 @@\n-1\n+x\n 2\n 3\n 4\n 5\n 6\n 7\n-8\n+y\n");
    FileChange created{"k8s/new.yaml", "", "a: 1\n", true};
    CHECK(aas::rewrite::unified_diff(created) == "--- /dev/null\n+++ b/k8s/new.yaml\n@@ -0,0 +1 @@\n+a: 1\n");
    FileChange eof{"k8s/z.yaml", "a\nb", "a\nc", false};
    CHECK(aas::rewrite::unified_diff(eof) == "--- a/k8s/z.yaml\n+++ b/k8s/z.yaml\n@@ -1,2 +1,2 @@\n a\n-b\n"
                                             "\\ No newline at end of file\n+c\n\\ No newline at end of file\n");
    FileChange same{"k8s/s.yaml", "a\n", "a\n", false};
    CHECK(aas::rewrite::unified_diff(same).empty());
    // Agrees with diff -u when it is installed.
    if (std::system("diff --version >/dev/null 2>&1") == 0) {
        TempDir d;
        write(d.path / "a", c.before);
        write(d.path / "b", c.after);
        std::string cmd = fmt::format("cd '{}' && diff -u a b | tail -n +3 > out", d.path.string());
        REQUIRE(std::system(cmd.c_str()) >= 0);
        std::string ours = aas::rewrite::unified_diff(c);
        CHECK(read(d.path / "out") == ours.substr(ours.find("@@")));
    }
}
