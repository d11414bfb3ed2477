#include "aas_bundle/chart/chart.hpp"

#include "aas_bundle/bundle/tar_archive.hpp"
#include "aas_bundle/util/error.hpp"
#include "aas_bundle/util/fs.hpp"
#include "aas_bundle/util/strings.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <optional>
#include <system_error>

namespace aas::chart {
namespace fs = std::filesystem;

const Chart* Chart::subchart_for(const Dependency& d) const {
    for (const auto& s : subcharts)
        if (s.name == d.name) return &s;
    return nullptr;
}

namespace {

// ---------------------------------------------------------------------------------------------
// Reading chart files (folders and archives) into a name -> content map

constexpr std::uint64_t max_total_bytes = 64ull << 20; // whole chart, nested archives included
constexpr std::uint64_t max_file_bytes = 16ull << 20;
constexpr int max_nesting = 8; // charts/ inside charts/ inside ...

// Files keyed by their path inside the chart ("templates/x.yaml"), in byte order.
using FileMap = std::map<std::string, std::string>;

// Bytes unpacked so far for one load_chart call, over every nested archive and folder.
struct Budget {
    std::string top; // the display name of the chart being loaded, for messages
    std::uint64_t used = 0;

    void charge(std::uint64_t n) {
        used += n;
        if (used > max_total_bytes)
            throw Error(
                fmt::format("loading chart {}: larger than the limit of {} MiB unpacked", top, max_total_bytes >> 20));
    }
};

bool starts_with(std::string_view s, std::string_view p) {
    return s.substr(0, p.size()) == p;
}
bool ends_with(std::string_view s, std::string_view p) {
    return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

// Whether a file (path relative to a chart root) is one aas-bundle needs: the chart's
// metadata and values, templates, CRDs, and the same inside subcharts under charts/.
bool relevant_file(std::string_view rel) {
    if (rel == "Chart.yaml" || rel == "values.yaml" || rel == "requirements.yaml") return true;
    if (starts_with(rel, "templates/") || starts_with(rel, "crds/")) return true;
    if (!starts_with(rel, "charts/")) return !starts_with(rel, ".") && rel.find("/.") == std::string_view::npos;
    std::string_view rest = rel.substr(7);
    auto slash = rest.find('/');
    if (slash == std::string_view::npos) return ends_with(rest, ".tgz");
    return relevant_file(rest.substr(slash + 1));
}

// Whether a relevant file is one of a chart's other files (.Files: files/, config/, README…),
// which templates may read but need not: too large ones are left out instead of failing.
bool extra_file(std::string_view rel) {
    while (starts_with(rel, "charts/")) {
        std::string_view rest = rel.substr(7);
        auto slash = rest.find('/');
        if (slash == std::string_view::npos) return false; // a packaged subchart
        rel = rest.substr(slash + 1);
    }
    return !(rel == "Chart.yaml" || rel == "values.yaml" || rel == "requirements.yaml" ||
             starts_with(rel, "templates/") || starts_with(rel, "crds/"));
}
// Whether a file is a template (of the chart or a subchart folder): what renders images.
bool template_file(std::string_view rel) {
    while (starts_with(rel, "charts/")) {
        std::string_view rest = rel.substr(7);
        auto slash = rest.find('/');
        if (slash == std::string_view::npos) return false;
        rel = rest.substr(slash + 1);
    }
    return starts_with(rel, "templates/");
}
constexpr std::uint64_t max_extra_file_bytes = 4ull << 20;
constexpr std::uint64_t max_extra_total_bytes = 32ull << 20;

// Whether a folder (relative to a chart root) can hold relevant files: the walk skips others.
bool relevant_dir(std::string_view rel) {
    auto slash = rel.find('/');
    std::string_view first = rel.substr(0, slash);
    if (first == "templates" || first == "crds") return true;
    if (first != "charts") return !starts_with(first, "."); // .Files (not .git/ and the like)
    if (slash == std::string_view::npos) return true;
    std::string_view rest = rel.substr(slash + 1); // "<subchart>[/...]"
    auto slash2 = rest.find('/');
    if (slash2 == std::string_view::npos) return true;
    return relevant_dir(rest.substr(slash2 + 1));
}

FileMap read_folder(const fs::path& root, Budget& budget) {
    FileMap files;
    std::error_code ec;
    const fs::path real_root = fs::weakly_canonical(root, ec);
    fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
    if (ec) throw Error(fmt::format("loading chart {}: {}", budget.top, ec.message()));
    for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (ec) throw Error(fmt::format("loading chart {}: {}", budget.top, ec.message()));
        std::string rel = it->path().lexically_relative(root).generic_string();
        std::error_code sec;
        if (it->is_directory(sec)) {
            if (!relevant_dir(rel)) it.disable_recursion_pending();
            continue;
        }
        if (!it->is_regular_file(sec) || !relevant_file(rel)) continue;
        bool extra = extra_file(rel);
        if (extra) {
            std::error_code zec;
            auto size = it->file_size(zec);
            if (zec || size > max_extra_file_bytes || budget.used + size > max_extra_total_bytes) continue;
        }
        if (it->is_symlink(sec)) {
            // As pack: a symlink must stay inside (here: inside the chart), through every link.
            std::error_code cec;
            fs::path target = fs::weakly_canonical(it->path(), cec);
            auto inside = target.lexically_relative(real_root);
            bool outside = cec || inside.empty() || inside.begin()->string() == "..";
            // A README or CRD linked from elsewhere in the repository is not read; a template that
            // leaves the chart is refused, as pack refuses it.
            if (outside && !template_file(rel)) continue;
            if (outside)
                throw Error(fmt::format("loading chart {}: {} is a symlink to {}, outside the chart; replace it "
                                        "with the file it points to (pack refuses it too)",
                                        budget.top, rel, fs::read_symlink(it->path(), cec).string()));
        }
        std::string data = util::read_file(it->path(), max_file_bytes);
        budget.charge(data.size());
        files.emplace(std::move(rel), std::move(data));
    }
    return files;
}

// The chart inside a packaged chart: files with the top folder ("metallb/") removed;
// `top_dir` receives that folder's name.
FileMap read_archive(std::string_view data, const std::string& display, Budget& budget, std::string& top_dir,
                     std::vector<std::string>& warnings) {
    bundle::TarArchive a(bundle::TarArchive::Compression::gzip, fmt::format("reading chart archive {}", display));
    auto fail = [&](const std::string& what) {
        const char* msg = a.error();
        throw Error(fmt::format("reading chart archive {}: {}{}{}", display, what, msg ? ": " : "", msg ? msg : ""));
    };
    if (!a.open(data)) fail("not a .tgz");

    FileMap files;
    bool mixed_warned = false;
    std::vector<char> chunk(64 * 1024);
    for (bundle::TarArchive::Member entry;;) {
        auto r = a.next(entry);
        if (r == bundle::TarArchive::Next::end) break;
        if (r == bundle::TarArchive::Next::failed) fail("bad entry");
        if (entry.type != bundle::TarArchive::Member::Type::file) continue;
        if (!entry.name) continue;
        const std::string& raw = *entry.name;

        std::string name = raw;
        std::replace(name.begin(), name.end(), '\\', '/');
        std::vector<std::string> parts;
        bool unsafe = false;
        for (auto& p : util::split(name, '/')) {
            if (p.empty() || p == ".") continue;
            if (p == "..") unsafe = true;
            parts.push_back(std::move(p));
        }
        if (unsafe) {
            warnings.push_back(fmt::format("{}: skipped entry {} (its path leaves the chart)", display, raw));
            continue;
        }
        if (parts.empty()) continue;
        if (parts.size() == 1) {
            if (parts[0] == "Chart.yaml")
                throw Error(fmt::format("reading chart archive {}: Chart.yaml is not inside a chart folder", display));
            continue;
        }
        if (top_dir.empty()) {
            top_dir = parts[0];
        } else if (parts[0] != top_dir && !mixed_warned) {
            warnings.push_back(fmt::format("{}: holds more than one top folder ({}, {})", display, top_dir, parts[0]));
            mixed_warned = true;
        }
        std::string rel;
        for (std::size_t i = 1; i < parts.size(); ++i) rel += (i > 1 ? "/" : "") + parts[i];

        std::optional<std::uint64_t> size;
        if (entry.size) size = static_cast<std::uint64_t>(std::max<std::int64_t>(0, *entry.size));
        bool too_big_extra =
            extra_file(rel) && size && (*size > max_extra_file_bytes || budget.used > max_extra_total_bytes);
        if (!relevant_file(rel) || too_big_extra) {
            // Skipped data is still decompressed: count its declared size so a bomb is refused.
            if (size) budget.charge(*size);
            continue;
        }
        std::string content;
        for (;;) {
            auto n = a.read(chunk.data(), chunk.size());
            if (!n) fail(fmt::format("reading {}", rel));
            if (*n == 0) break;
            auto un = *n;
            if (content.size() + un > max_file_bytes)
                throw Error(fmt::format("reading chart archive {}: {} is larger than the limit of {} MiB", display, rel,
                                        max_file_bytes >> 20));
            budget.charge(un);
            content.append(chunk.data(), un);
        }
        files[rel] = std::move(content);
    }
    if (top_dir.empty()) throw Error(fmt::format("reading chart archive {}: no chart inside", display));
    return files;
}

// ---------------------------------------------------------------------------------------------
// Building a Chart from its files

std::string scalar_text(const Value& map, std::string_view key) {
    const Value* v = map.find(key);
    return v && v->is_scalar() ? v->text() : std::string();
}

[[noreturn]] void fail_at(const Value& v, const std::string& file, const std::string& msg) {
    if (v.origin().line > 0) throw Error(fmt::format("{}:{}: {}", file, v.origin().line, msg));
    throw Error(fmt::format("{}: {}", file, msg));
}

std::vector<Dependency> parse_dependencies(const Value* list, const std::string& file) {
    std::vector<Dependency> out;
    if (!list || list->is_null()) return out;
    if (!list->is_list()) fail_at(*list, file, "dependencies must be a list");
    for (const auto& item : list->items()) {
        if (!item.is_map()) fail_at(item, file, "a dependency must be a map");
        Dependency d;
        d.name = scalar_text(item, "name");
        if (d.name.empty()) fail_at(item, file, "a dependency has no name");
        d.alias = scalar_text(item, "alias");
        d.version = scalar_text(item, "version");
        d.repository = scalar_text(item, "repository");
        d.condition = scalar_text(item, "condition");
        if (const Value* tags = item.find("tags")) {
            if (tags->is_list()) {
                for (const auto& t : tags->items())
                    if (t.is_scalar() && !t.is_null()) d.tags.push_back(t.text());
            } else if (tags->is_scalar() && !tags->is_null()) {
                d.tags.push_back(tags->text());
            }
        }
        if (const Value* iv = item.find("import-values")) d.import_values = *iv;
        out.push_back(std::move(d));
    }
    return out;
}

Chart build_chart(FileMap files, const std::string& display, Budget& budget, int depth);

void load_subcharts(Chart& c, FileMap& files, Budget& budget, int depth) {
    // "charts/<entry>..." grouped by entry: a folder's files, or a packaged chart's bytes.
    struct Entry {
        FileMap files;
        std::optional<std::string> archive;
    };
    std::map<std::string, Entry> entries;
    for (auto& [name, data] : files) {
        if (!starts_with(name, "charts/")) continue;
        std::string rest = name.substr(7);
        auto slash = rest.find('/');
        if (slash == std::string::npos) {
            if (ends_with(rest, ".tgz")) entries[rest].archive = std::move(data);
        } else {
            entries[rest.substr(0, slash)].files.emplace(rest.substr(slash + 1), std::move(data));
        }
    }
    if (!entries.empty() && depth >= max_nesting)
        throw Error(fmt::format("loading chart {}: subcharts nested more than {} deep", c.display, max_nesting));
    for (auto& [entry, e] : entries) {
        std::string sub_display = c.display + "/charts/" + entry;
        if (e.archive) {
            std::string top;
            FileMap sub = read_archive(*e.archive, sub_display, budget, top, c.warnings);
            e.archive.reset();
            c.subcharts.push_back(build_chart(std::move(sub), sub_display + ":" + top, budget, depth + 1));
        } else if (e.files.count("Chart.yaml")) {
            c.subcharts.push_back(build_chart(std::move(e.files), sub_display, budget, depth + 1));
        } else {
            c.warnings.push_back(fmt::format("{}: no Chart.yaml; not a subchart, skipped", sub_display));
        }
    }
}

Chart build_chart(FileMap files, const std::string& display, Budget& budget, int depth) {
    Chart c;
    c.display = display;
    auto meta_it = files.find("Chart.yaml");
    if (meta_it == files.end()) throw Error(fmt::format("loading chart {}: Chart.yaml is missing", display));
    const std::string meta_file = display + "/Chart.yaml";
    Value meta = parse_yaml(meta_it->second, meta_file);
    if (!meta.is_map()) throw Error(fmt::format("{}: not a map of chart metadata", meta_file));
    c.name = scalar_text(meta, "name");
    if (c.name.empty()) throw Error(fmt::format("{}: the chart has no name", meta_file));
    c.version = scalar_text(meta, "version");
    c.app_version = scalar_text(meta, "appVersion");
    c.api_version = scalar_text(meta, "apiVersion");
    if (c.api_version.empty()) {
        c.warnings.push_back(fmt::format("{}: apiVersion is missing; read as v1", meta_file));
        c.api_version = "v1";
    } else if (c.api_version != "v1" && c.api_version != "v2") {
        c.warnings.push_back(fmt::format("{}: unknown apiVersion {}", meta_file, c.api_version));
    }
    c.type = scalar_text(meta, "type");
    if (c.type.empty()) c.type = "application";
    if (const Value* ann = meta.find("annotations"); ann && ann->is_map()) {
        for (const auto& [k, v] : ann->entries())
            if (v.is_scalar()) c.annotations[k] = v.text();
    }
    c.dependencies = parse_dependencies(meta.find("dependencies"), meta_file);

    // Helm reads requirements.yaml over Chart.yaml's dependencies (apiVersion v1 charts).
    if (auto req = files.find("requirements.yaml"); req != files.end()) {
        const std::string req_file = display + "/requirements.yaml";
        Value r = parse_yaml(req->second, req_file);
        if (r.is_map() && r.find("dependencies")) {
            if (c.api_version != "v1")
                c.warnings.push_back(
                    fmt::format("{}: dependencies belong in Chart.yaml since apiVersion v2", req_file));
            c.dependencies = parse_dependencies(r.find("dependencies"), req_file);
        }
    }

    if (auto vals = files.find("values.yaml"); vals != files.end()) {
        const std::string values_file = display + "/values.yaml";
        c.values = parse_yaml(vals->second, values_file);
        if (c.values.is_null())
            c.values = Value::make_map(Origin{values_file, 1, ""});
        else if (!c.values.is_map())
            throw Error(fmt::format("{}:{}: values must be a map", values_file, c.values.origin().line));
    } else {
        c.values = Value::make_map();
    }

    for (auto& [name, data] : files) {
        if (starts_with(name, "templates/"))
            c.templates.push_back(File{name, display + "/" + name, std::move(data)});
        else if (starts_with(name, "crds/"))
            c.crds.push_back(File{name, display + "/" + name, std::move(data)});
        else if (!starts_with(name, "charts/") && name != "Chart.yaml" && name != "values.yaml" &&
                 name != "requirements.yaml" && name != "requirements.lock" && name != "Chart.lock" &&
                 name != "values.schema.json")
            c.files.push_back(File{name, display + "/" + name, std::move(data)});
    }

    load_subcharts(c, files, budget, depth);

    for (const auto& d : c.dependencies) {
        if (!c.subchart_for(d))
            c.warnings.push_back(fmt::format("{}: dependency {} is not in charts/ (run helm dependency build); "
                                             "its images cannot be found",
                                             display, d.name));
    }
    for (std::size_t i = 0; i < c.subcharts.size(); ++i) {
        for (std::size_t j = 0; j < i; ++j) {
            if (c.subcharts[i].name == c.subcharts[j].name) {
                c.warnings.push_back(fmt::format("{}: charts/ holds chart {} more than once ({} and {})", display,
                                                 c.subcharts[i].name, c.subcharts[j].display, c.subcharts[i].display));
                break;
            }
        }
    }
    return c;
}

} // namespace

Chart load_chart(const fs::path& path, const std::string& display) {
    const std::string shown = display.empty() ? path.string() : display;
    Budget budget{shown};
    std::error_code ec;
    auto st = fs::status(path, ec);
    if (ec || !fs::exists(st)) throw Error(fmt::format("loading chart {}: no such file or folder", shown));
    if (fs::is_directory(st)) return build_chart(read_folder(path, budget), shown, budget, 0);

    std::string data = util::read_file(path, max_total_bytes);
    std::vector<std::string> warnings;
    std::string top;
    FileMap files = read_archive(data, shown, budget, top, warnings);
    data.clear();
    Chart c = build_chart(std::move(files), shown + ":" + top, budget, 0);
    c.warnings.insert(c.warnings.begin(), warnings.begin(), warnings.end());
    return c;
}

// ---------------------------------------------------------------------------------------------
// Coalescing

namespace {

std::string join_path(const std::string& prefix, std::string_view key) {
    return prefix.empty() ? std::string(key) : prefix + "." + std::string(key);
}

// Helm's mergeMaps (several --values files) and coalesceGlobals: top wins, maps merge
// recursively, and a null in top is kept, so that it still removes a chart default later.
Value overlay(const Value& base, const Value& top) {
    if (!base.is_map() || !top.is_map()) return top;
    Value out = Value::make_map(top.origin());
    for (const auto& [key, bv] : base.entries()) {
        const Value* tv = top.find(key);
        if (!tv)
            out.set(key, bv);
        else if (tv->is_map() && bv.is_map())
            out.set(key, overlay(bv, *tv));
        else
            out.set(key, *tv);
    }
    for (const auto& [key, tv] : top.entries())
        if (!base.find(key)) out.set(key, tv);
    return out;
}

// Sets every values_path in `v` to the place it has below `path` (for values that moved).
void repath(Value& v, const std::string& path) {
    v.origin().values_path = path;
    if (v.is_map()) {
        std::vector<std::string> keys;
        for (const auto& e : v.entries()) keys.push_back(e.first);
        for (const auto& k : keys) repath(*v.find(k), join_path(path, k));
    } else if (v.is_list()) {
        std::size_t i = 0;
        for (auto& item : v.items()) repath(item, fmt::format("{}[{}]", path, i++));
    }
}

// A chart's own values.yaml with release-level paths. `global` keeps its "global..." paths:
// globals are set at the release's top level, whichever chart declares them.
Value defaults_of(const Chart& chart, const std::string& prefix) {
    Value v = chart.values.is_map() ? chart.values : Value::make_map();
    if (prefix.empty()) return v;
    v.origin().values_path = prefix;
    std::vector<std::string> keys;
    for (const auto& e : v.entries()) keys.push_back(e.first);
    for (const auto& k : keys)
        if (k != "global") v.find(k)->prefix_paths(prefix);
    return v;
}

// A subchart as the parent sees it: the dependency naming it (none for a chart found in
// charts/ that Chart.yaml does not list) and the key of its values in the parent.
struct Link {
    const Dependency* dep = nullptr;
    const Chart* sub = nullptr;
    std::string key;
};

std::vector<Link> links_of(const Chart& c) {
    std::vector<Link> out;
    for (const auto& d : c.dependencies)
        if (const Chart* s = c.subchart_for(d)) out.push_back({&d, s, d.key()});
    for (const auto& s : c.subcharts) {
        bool listed = std::any_of(c.dependencies.begin(), c.dependencies.end(),
                                  [&](const Dependency& d) { return d.name == s.name; });
        if (!listed) out.push_back({nullptr, &s, s.name});
    }
    return out;
}

struct Switch {
    bool enabled = true;
    std::string disabled_by;
};

// Helm's processDependencyTags then processDependencyConditions: a condition path that holds
// a bool decides; otherwise tags switch the chart off when one is false and none is true.
Switch decide(const Link& link, const Value& parent_values, const Value& tags) {
    Switch s;
    if (!link.dep) return s;
    const Dependency& d = *link.dep;
    if (tags.is_map() && !d.tags.empty()) {
        bool any_true = false;
        std::vector<std::string> falses;
        for (const auto& t : d.tags) {
            const Value* v = tags.find(t);
            if (!v || v->kind() != Value::Kind::boolean) continue;
            if (v->as_bool())
                any_true = true;
            else
                falses.push_back(t);
        }
        if (!any_true && !falses.empty()) {
            s.enabled = false;
            s.disabled_by = fmt::format("tag{} {} {} false", falses.size() > 1 ? "s" : "", fmt::join(falses, ", "),
                                        falses.size() > 1 ? "are" : "is");
        }
    }
    for (const auto& part : util::split(d.condition, ',')) {
        std::string cond(util::trim(part));
        if (cond.empty()) continue;
        const Value* v = parent_values.at_path(cond);
        if (!v || v->kind() != Value::Kind::boolean) continue;
        s.enabled = v->as_bool();
        s.disabled_by = s.enabled ? "" : fmt::format("condition {} is false", cond);
        break;
    }
    return s;
}

void disable_below(Coalesced& c, const std::string& why) {
    for (auto& sub : c.subcharts) {
        if (sub.enabled) {
            sub.enabled = false;
            sub.disabled_by = why;
        }
        disable_below(sub, why);
    }
}

Coalesced coalesce_chart(const Chart& chart, const Value& section, const std::string& prefix, const Value* tags);

// One pass of coalescing `chart` with `defaults` (its values.yaml, maybe with imports) under
// `section` (what the release sets for it). `forced` gives the subcharts' switches instead of
// evaluating conditions and tags.
Coalesced coalesce_pass(const Chart& chart, const Value& defaults, const Value& section, const std::string& prefix,
                        const Value* tags, const std::vector<Link>& links, const std::vector<Switch>* forced) {
    Coalesced out;
    out.chart = &chart;
    out.values_prefix = prefix;
    Value vals = merge_values(defaults, section);
    if (!vals.is_map()) vals = defaults;

    // Tags are read at the release's top level (helm passes the top values down).
    Value tag_table = tags ? *tags : (vals.find("tags") ? *vals.find("tags") : Value());

    std::vector<std::optional<Value>> before; // the parent's section of each subchart, unmerged
    for (const auto& link : links) {
        const std::string sub_prefix = join_path(prefix, link.key);
        const Value* s = vals.find(link.key);
        before.push_back(s ? std::optional<Value>(*s) : std::nullopt);
        Value sub_section = s && s->is_map() ? *s : Value::make_map(Origin{"", 0, sub_prefix});

        // coalesceGlobals: the parent's globals over what the section says under global.
        const Value* sub_global = sub_section.find("global");
        Value global = sub_global && sub_global->is_map() ? *sub_global : Value::make_map(Origin{"", 0, "global"});
        if (const Value* pg = vals.find("global"); pg && pg->is_map()) global = overlay(global, *pg);
        sub_section.set("global", std::move(global));

        Coalesced child = coalesce_chart(*link.sub, sub_section, sub_prefix, &tag_table);
        vals.set(link.key, child.values);
        out.subcharts.push_back(std::move(child));
    }

    // Conditions see the values with every subchart's defaults merged in, as in helm.
    std::vector<Switch> switches;
    for (std::size_t i = 0; i < links.size(); ++i)
        switches.push_back(forced ? (*forced)[i] : decide(links[i], vals, tag_table));
    for (std::size_t i = 0; i < links.size(); ++i) {
        if (switches[i].enabled) continue;
        Coalesced& child = out.subcharts[i];
        child.enabled = false;
        child.disabled_by = switches[i].disabled_by;
        disable_below(child, fmt::format("its parent chart {} is disabled", child.values_prefix));
        // A disabled subchart is not coalesced into the parent's values in helm.
        if (before[i])
            vals.set(links[i].key, *before[i]);
        else
            vals.erase(links[i].key);
    }
    out.values = std::move(vals);
    return out;
}

// Helm's processImportValues: tables of enabled subcharts' values (defaults only, no user
// values) copied into the parent, under the parent's own values.
Value collect_imports(const std::vector<Link>& links, const std::vector<Switch>& switches, const Value& vals,
                      const std::string& prefix) {
    Value imported = Value::make_map(Origin{"", 0, prefix});
    for (std::size_t i = 0; i < links.size(); ++i) {
        const Dependency* d = links[i].dep;
        if (!d || !switches[i].enabled || !d->import_values.is_list()) continue;
        for (const auto& iv : d->import_values.items()) {
            std::string child;
            std::string parent;
            if (iv.is_map()) {
                child = scalar_text(iv, "child");
                parent = scalar_text(iv, "parent");
            } else if (iv.is_scalar() && !iv.is_null()) {
                child = "exports." + iv.text();
                parent = ".";
            }
            if (child.empty() || parent.empty()) continue;
            const Value* table = vals.at_path(links[i].key + "." + child);
            if (!table || !table->is_map()) continue;
            Value piece = *table;
            std::vector<std::string> parts;
            if (parent != ".") parts = util::split(parent, '.');
            repath(piece, parent == "." ? prefix : join_path(prefix, parent));
            for (std::size_t k = parts.size(); k-- > 0;) {
                std::string at = prefix;
                for (std::size_t j = 0; j < k; ++j) at = join_path(at, parts[j]);
                Value wrap = Value::make_map(Origin{"", 0, at});
                wrap.set(parts[k], std::move(piece));
                piece = std::move(wrap);
            }
            imported = merge_values(piece, imported); // an earlier import wins over a later one
        }
    }
    return imported;
}

Coalesced coalesce_chart(const Chart& chart, const Value& section, const std::string& prefix, const Value* tags) {
    Value defaults = defaults_of(chart, prefix);
    auto links = links_of(chart);
    Coalesced first = coalesce_pass(chart, defaults, section, prefix, tags, links, nullptr);

    std::vector<Switch> switches;
    bool imports = false;
    for (std::size_t i = 0; i < links.size(); ++i) {
        switches.push_back({first.subcharts[i].enabled, first.subcharts[i].disabled_by});
        const Dependency* d = links[i].dep;
        if (d && switches.back().enabled && d->import_values.is_list() && !d->import_values.items().empty())
            imports = true;
    }
    if (!imports) return first;

    // Helm imports from the chart's defaults alone, then lets the chart's values win over them.
    Value empty = Value::make_map(Origin{"", 0, prefix});
    Coalesced plain = coalesce_pass(chart, defaults, empty, prefix, tags, links, &switches);
    Value with_imports = merge_values(collect_imports(links, switches, plain.values, prefix), defaults);
    return coalesce_pass(chart, with_imports, section, prefix, tags, links, &switches);
}

} // namespace

Coalesced coalesce(const Chart& chart, const std::vector<Value>& user_values) {
    Value user = Value::make_map();
    for (const auto& v : user_values)
        if (v.is_map()) user = overlay(user, v);
    return coalesce_chart(chart, user, "", nullptr);
}

} // namespace aas::chart
