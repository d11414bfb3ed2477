// aas-bundle images: every image a deployment needs, found without helm.

#include "commands.hpp"

#include "aas_bundle/discovery/discovery.hpp"
#include "aas_bundle/manifest/manifest.hpp"
#include "aas_bundle/util/log.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <iostream>
#include <set>

namespace aas::cli {
namespace {

struct ImagesFlags {
    std::string manifest_file;
    std::string path;
    std::string k8s;
    std::string kube_version;
    bool json = false;
    bool warnings = false;
};

nlohmann::json to_json(const discovery::Result& r) {
    using nlohmann::json;
    json images = json::array();
    for (const auto& img : r.images) {
        json sites = json::array();
        for (const auto& s : img.sites) {
            json site = {{"chart", s.chart}, {"file", s.file}, {"line", s.line}, {"values_path", s.values_path}};
            if (!s.release.empty()) site["release"] = s.release;
            if (!s.template_file.empty()) {
                site["template"] = s.template_file;
                site["template_line"] = s.template_line;
            }
            if (s.written != img.ref.str()) site["written"] = s.written;
            site["class"] = discovery::to_string(s.cls);
            if (!s.parts.empty()) {
                site["reference"] = s.reference;
                json parts = json::array();
                for (const auto& p : s.parts) {
                    json part = {{"part", p.part}, {"file", p.file}, {"line", p.line}};
                    if (!p.values_path.empty()) part["values_path"] = p.values_path;
                    if (!p.file_key.empty()) part["file_key"] = p.file_key;
                    part["written"] = p.written;
                    part["at"] = p.at;
                    parts.push_back(part);
                }
                site["parts"] = parts;
            }
            sites.push_back(site);
        }
        json j = {{"ref", img.ref.str()}, {"class", discovery::to_string(img.cls)}, {"sites", sites}};
        if (!img.source.empty()) j["source"] = img.source;
        if (img.kube_version_dependent) j["kube_version_dependent"] = true;
        images.push_back(j);
    }
    json possible = json::array();
    for (const auto& p : r.possible)
        possible.push_back(
            {{"value", p.value}, {"chart", p.chart}, {"file", p.file}, {"line", p.line}, {"why", p.why}});
    json errors = json::array();
    for (const auto& e : r.errors)
        errors.push_back({{"file", e.file}, {"line", e.line}, {"values_path", e.values_path}, {"message", e.message}});
    json unresolved = json::array();
    for (const auto& u : r.unresolved)
        unresolved.push_back({{"release", u.release},
                              {"chart", u.chart},
                              {"file", u.file},
                              {"line", u.line},
                              {"values_path", u.values_path},
                              {"target", u.target},
                              {"message", u.message}});
    return {{"images", images},         {"possible", possible},   {"errors", errors},
            {"unresolved", unresolved}, {"warnings", r.warnings}, {"incomplete", r.incomplete}};
}

void print_table(const discovery::Result& r, bool show_warnings) {
    std::size_t w = 5;
    for (const auto& img : r.images) w = std::max(w, img.ref.str().size());
    std::cout << fmt::format("{:<{}}  {:<8}  {}\n", "IMAGE", w, "CLASS", "WHERE");
    for (const auto& img : r.images) {
        bool first = true;
        std::set<std::string> shown;
        for (const auto& s : img.sites) {
            std::string where = fmt::format("{}:{}", s.file, s.line);
            if (!shown.insert(where + s.values_path).second) continue; // one line per place to edit
            if (!s.values_path.empty()) where += " " + s.values_path;
            if (!s.chart.empty()) where += fmt::format(" ({})", s.chart);
            std::cout << fmt::format("{:<{}}  {:<8}  {}\n", first ? img.ref.str() : "", w,
                                     first ? discovery::to_string(img.cls) : "", where);
            first = false;
        }
        if (!img.source.empty()) std::cout << fmt::format("{:<{}}  {:<8}  from {}\n", "", w, "", img.source);
    }
    std::size_t req = 0, opt = 0, tst = 0;
    for (const auto& img : r.images)
        (img.cls == discovery::Class::required ? req : img.cls == discovery::Class::optional ? opt : tst)++;
    std::cout << fmt::format("\n{} images: {} required, {} optional, {} test\n", r.images.size(), req, opt, tst);
    if (!r.possible.empty()) {
        std::cout << "\nPossible images (not in an image: field, not packed):\n";
        for (const auto& p : r.possible) std::cout << fmt::format("  {}  {}:{} ({})\n", p.value, p.file, p.line, p.why);
    }
    for (const auto& i : r.incomplete) log::warn("incomplete: {}", i);
    for (const auto& u : r.unresolved) log::error("{}:{}: {}", u.file, u.line, u.message);
    for (const auto& e : r.errors) log::error("{}:{}: {}: {}", e.file, e.line, e.values_path, e.message);
    if (show_warnings) {
        for (const auto& w2 : r.warnings) log::warn("{}", w2);
    } else if (!r.warnings.empty()) {
        log::info("{} warnings (annotation cross-checks, expressions not evaluated): --warnings shows them",
                  r.warnings.size());
    }
}

int run(const ImagesFlags& f) {
    if (f.manifest_file.empty() == f.path.empty())
        throw UsageError("give either -f MANIFEST or a folder, chart folder or .tgz to scan");
    discovery::Result r;
    if (!f.manifest_file.empty()) {
        auto m = manifest::load(f.manifest_file);
        r = discovery::discover(m, f.k8s, f.kube_version);
    } else {
        r = discovery::discover_path(f.path, f.kube_version);
    }
    if (f.json) {
        std::cout << to_json(r).dump(2) << "\n";
        for (const auto& i : r.incomplete) log::warn("incomplete: {}", i);
    } else {
        print_table(r, f.warnings);
    }
    if (!r.ok()) {
        if (f.json) {
            for (const auto& e : r.errors) log::error("{}:{}: {}: {}", e.file, e.line, e.values_path, e.message);
            for (const auto& u : r.unresolved) log::error("{}:{}: {}", u.file, u.line, u.message);
        }
        return failure;
    }
    return ok;
}

} // namespace

std::function<int()> install_images(CLI::App& app) {
    auto f = std::make_shared<ImagesFlags>();
    app.add_option("-f,--file", f->manifest_file, "Bundle manifest (manifests/ai-appstore.yaml)")
        ->check(CLI::ExistingFile);
    app.add_option("PATH", f->path, "Without a manifest: a k8s folder, a chart folder or a chart .tgz to scan");
    app.add_option("--k8s", f->k8s, "The k8s folder, instead of the manifest's \"k8s\"")->check(CLI::ExistingDirectory);
    app.add_option("--kube-version", f->kube_version,
                   "Kubernetes version for .Capabilities.KubeVersion (default v1.29.0, as helm template)")
        ->check([](const std::string& v) {
            std::string b = !v.empty() && v[0] == 'v' ? v.substr(1) : v;
            auto dot = b.find('.');
            bool ok = dot != std::string::npos && dot > 0 && dot + 1 < b.size() &&
                      b.find_first_not_of("0123456789.") == std::string::npos;
            return ok ? std::string() : "expected a version such as v1.29.0";
        });
    app.add_flag("--json", f->json, "Print the result as JSON");
    app.add_flag("--warnings", f->warnings, "Print annotation cross-checks and expressions not evaluated");
    return [f] { return run(*f); };
}

} // namespace aas::cli
