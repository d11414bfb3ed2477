#include "aas_bundle/manifest/manifest.hpp"

#include "aas_bundle/chart/values.hpp"
#include "aas_bundle/util/fs.hpp"
#include "aas_bundle/util/strings.hpp"

#include <fmt/format.h>

#include <optional>
#include <set>

namespace aas::manifest {
namespace fs = std::filesystem;
using chart::Value;

static std::string join_lines(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& p : v) s += (s.empty() ? "" : "\n") + p;
    return s;
}

ManifestError::ManifestError(std::vector<std::string> problems)
    : aas::UsageError(join_lines(problems)), problems_(std::move(problems)) {}

bool Manifest::excluded(const ref::Reference& r) const {
    for (const auto& e : exclude)
        if (e == r.str() || e == r.name()) return true;
    return false;
}

namespace {

class Reader {
public:
    explicit Reader(std::string file) : file_(std::move(file)) {}

    void problem(const Value& at, const std::string& msg) {
        problems_.push_back(fmt::format("{}:{}: {}", file_, at.origin().line, msg));
    }
    void problem(int line, const std::string& msg) { problems_.push_back(fmt::format("{}:{}: {}", file_, line, msg)); }

    // Checks that `map` has only `allowed` keys; suggests the nearest for typos.
    void keys(const Value& map, std::initializer_list<std::string_view> allowed, std::string_view where) {
        for (const auto& [k, v] : map.entries()) {
            bool ok = false;
            std::string_view best;
            std::size_t best_d = 3;
            for (auto a : allowed) {
                if (k == a) ok = true;
                auto d = util::edit_distance(k, a);
                if (d < best_d) {
                    best_d = d;
                    best = a;
                }
            }
            if (ok) continue;
            std::string msg = fmt::format("unknown key \"{}\" in {}", k, where);
            if (!best.empty()) msg += fmt::format("; did you mean \"{}\"?", best);
            problem(v, msg);
        }
    }

    std::string string(const Value& map, std::string_view key, std::string_view where, bool required) {
        const Value* v = map.find(key);
        if (!v || v->is_null()) {
            if (required) problem(map, fmt::format("{}: \"{}\" is required", where, key));
            return {};
        }
        if (!v->is_scalar()) {
            problem(*v, fmt::format("{}: \"{}\" must be a string", where, key));
            return {};
        }
        if (v->text().empty() && required) problem(*v, fmt::format("{}: \"{}\" must not be empty", where, key));
        return v->text();
    }

    // The value under `key` when it is of `kind`; nullptr when it is absent or null, or of
    // another kind (reported as `wrong`).
    const Value* child(const Value& map, std::string_view key, Value::Kind kind, const std::string& wrong) {
        const Value* v = map.find(key);
        if (!v || v->is_null()) return nullptr;
        if (v->kind() != kind) {
            problem(*v, wrong);
            return nullptr;
        }
        return v;
    }

    std::vector<std::string> strings(const Value& map, std::string_view key, std::string_view where) {
        std::vector<std::string> out;
        const Value* v = map.find(key);
        if (!v || v->is_null()) return out;
        if (!v->is_list()) {
            problem(*v, fmt::format("{}: \"{}\" must be a list", where, key));
            return out;
        }
        for (const auto& item : v->items()) {
            if (!item.is_scalar() || item.text().empty()) {
                problem(item, fmt::format("{}: every entry of \"{}\" must be a non-empty string", where, key));
                continue;
            }
            out.push_back(item.text());
        }
        return out;
    }

    std::vector<std::string> problems_;

private:
    std::string file_;
};

bool valid_name(std::string_view s) {
    if (s.empty() || s.size() > 128) return false;
    auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    if (!alnum(s.front()) || !alnum(s.back())) return false;
    for (char c : s)
        if (!alnum(c) && c != '-' && c != '.' && c != '_') return false;
    return true;
}

bool relative_inside(const std::string& p) {
    fs::path path(p);
    if (path.is_absolute()) return false;
    for (const auto& part : path)
        if (part == "..") return false;
    return true;
}

// The file as a YAML map; a file that cannot be read or parsed is the only problem reported.
Value read_root(const fs::path& file, const std::string& display) {
    std::string text;
    try {
        text = util::read_file(file, 4u << 20);
    } catch (const Error& e) {
        throw ManifestError({fmt::format("{}: cannot read the bundle manifest: {}", display, e.what())});
    }
    Value root;
    try {
        root = chart::parse_yaml(text, display);
    } catch (const Error& e) {
        throw ManifestError({e.what()});
    }
    if (!root.is_map()) throw ManifestError({fmt::format("{}:1: a bundle manifest is a YAML map", display)});
    return root;
}

// apiVersion, kind, name, version and the k8s folder (relative to the manifest).
void read_header(Reader& r, const Value& root, const fs::path& file, Manifest& m) {
    auto api = r.string(root, "apiVersion", "the bundle manifest", true);
    if (!api.empty() && api != "aas-bundle/v1")
        r.problem(*root.find("apiVersion"),
                  fmt::format("apiVersion \"{}\" is not supported (expected aas-bundle/v1)", api));
    auto kind = r.string(root, "kind", "the bundle manifest", true);
    if (!kind.empty() && kind != "Bundle")
        r.problem(*root.find("kind"), fmt::format("kind \"{}\" is not supported (expected Bundle)", kind));
    m.name = r.string(root, "name", "the bundle manifest", true);
    if (!m.name.empty() && !valid_name(m.name))
        r.problem(*root.find("name"), fmt::format("name \"{}\": use lower case letters, digits, '-', '.', '_'",
                                                  util::escape_control(m.name)));
    m.version = r.string(root, "version", "the bundle manifest", true);
    if (util::has_control(m.version))
        r.problem(*root.find("version"),
                  fmt::format("version \"{}\" holds a control character", util::escape_control(m.version)));

    const fs::path base = file.has_parent_path() ? file.parent_path() : fs::path(".");
    if (auto k = r.string(root, "k8s", "the bundle manifest", false); !k.empty())
        m.k8s = fs::absolute(base / k).lexically_normal();
}

// One entry of releases: a map with name, chart, namespace and values.
Release read_release(Reader& r, const Value& item, const std::string& display, std::set<std::string>& names) {
    r.keys(item, {"name", "chart", "namespace", "values"}, "a release");
    Release rel;
    rel.where = {display, item.origin().line};
    rel.name = r.string(item, "name", "release", true);
    std::string where = fmt::format("release \"{}\"", rel.name);
    rel.chart = r.string(item, "chart", where, true);
    if (auto ns = r.string(item, "namespace", where, false); !ns.empty()) rel.namespace_ = ns;
    rel.values = r.strings(item, "values", where);
    if (!rel.name.empty() && !names.insert(rel.name).second)
        r.problem(item, fmt::format("release \"{}\" is listed twice", rel.name));
    if (auto why = util::helm_release_name_problem(rel.name); !rel.name.empty() && !why.empty())
        r.problem(*item.find("name"), fmt::format("release name \"{}\": {}", util::escape_control(rel.name), why));
    if (auto why = util::dns1123_label_problem(rel.namespace_); !why.empty())
        r.problem(item.find("namespace") ? *item.find("namespace") : item,
                  fmt::format("{}: namespace \"{}\": {}", util::escape_control(where),
                              util::escape_control(rel.namespace_), why));
    if (!rel.chart.empty() && !relative_inside(rel.chart))
        r.problem(*item.find("chart"),
                  fmt::format("{}: chart \"{}\" must be a path inside the k8s folder", where, rel.chart));
    for (const auto& v : rel.values)
        if (!relative_inside(v))
            r.problem(item, fmt::format("{}: values file \"{}\" must be a path inside the k8s folder", where, v));
    return rel;
}

void read_releases(Reader& r, const Value& root, const std::string& display, Manifest& m) {
    const Value* rels = r.child(root, "releases", Value::Kind::list, "\"releases\" must be a list");
    if (!rels) return;
    std::set<std::string> names;
    for (const auto& item : rels->items()) {
        if (!item.is_map()) {
            r.problem(item, "a release is a map with name, chart, namespace and values");
            continue;
        }
        m.releases.push_back(read_release(r, item, display, names));
    }
}

// One entry of images: a reference, or a map with ref and from; nullopt after a problem.
std::optional<Image> read_image(Reader& r, const Value& item, const std::string& display) {
    const Value* refv = item.is_map() ? item.find("ref") : &item;
    if (item.is_map()) r.keys(item, {"ref", "from"}, "an image");
    if (!refv || !refv->is_scalar() || refv->text().empty()) {
        r.problem(item, "an image needs \"ref\"");
        return std::nullopt;
    }
    Image img;
    img.where = {display, refv->origin().line};
    std::string err;
    auto parsed = ref::Reference::try_parse(refv->text(), &err);
    if (!parsed) {
        r.problem(*refv, err);
        return std::nullopt;
    }
    img.ref = *parsed;
    if (item.is_map()) img.from = r.string(item, "from", "image", false);
    if (!img.from.empty()) {
        bool ok = img.from.rfind("docker-archive:", 0) == 0 || img.from.rfind("oci:", 0) == 0 ||
                  img.from.rfind("oci-archive:", 0) == 0 || ref::Reference::try_parse(img.from).has_value();
        if (!ok)
            r.problem(*item.find("from"), fmt::format("from \"{}\": expected docker-archive:PATH[:REF], "
                                                      "oci:PATH[:NAME], oci-archive:PATH[:NAME] or an image reference",
                                                      img.from));
    }
    return img;
}

void read_images(Reader& r, const Value& root, const std::string& display, Manifest& m) {
    const Value* imgs = r.child(root, "images", Value::Kind::list, "\"images\" must be a list of {ref, from}");
    if (!imgs) return;
    for (const auto& item : imgs->items())
        if (auto img = read_image(r, item, display)) m.images.push_back(std::move(*img));
}

void read_exclude(Reader& r, const Value& root, Manifest& m) {
    for (const auto& e : r.strings(root, "exclude", "the bundle manifest")) {
        std::string err;
        auto parsed = ref::Reference::try_parse(e, &err);
        if (!parsed) {
            r.problem(*root.find("exclude"), err);
            continue;
        }
        // A name without tag or digest excludes every tag of it.
        auto slash = e.rfind('/');
        bool versioned = e.find('@') != std::string::npos ||
                         e.find(':', slash == std::string::npos ? 0 : slash) != std::string::npos;
        m.exclude.push_back(versioned ? parsed->str() : parsed->name());
    }
}

void read_mirrors(Reader& r, const Value& root, Manifest& m) {
    const Value* mir = r.child(root, "mirrors", Value::Kind::map, "\"mirrors\" must be a map of registry: mirror host");
    if (!mir) return;
    for (const auto& [k, v] : mir->entries()) {
        if (!v.is_scalar() || v.text().empty()) {
            r.problem(v, fmt::format("mirror for \"{}\" must be HOST[:PORT]", k));
            continue;
        }
        try {
            ref::validate_registry(v.text());
            m.mirrors[ref::is_docker_hub(k) ? "docker.io" : k] = v.text();
        } catch (const std::exception& e) {
            r.problem(v, e.what());
        }
    }
}

void read_platforms(Reader& r, const Value& root, Manifest& m) {
    for (const auto& p : r.strings(root, "platforms", "the bundle manifest")) {
        try {
            m.platforms.push_back(oci::Platform::parse(p));
        } catch (const std::exception& e) {
            r.problem(*root.find("platforms"), e.what());
        }
    }
}

} // namespace

Manifest load(const fs::path& file) {
    std::string display = file.string();
    Value root = read_root(file, display);
    Reader r(display);
    Manifest m;
    m.file = file;
    r.keys(root,
           {"apiVersion", "kind", "name", "version", "k8s", "releases", "manifests", "images", "exclude", "mirrors",
            "platforms"},
           "the bundle manifest");
    read_header(r, root, file, m);
    read_releases(r, root, display, m);
    if (!m.releases.empty() && m.k8s.empty())
        r.problem(root, "\"k8s\" is required when releases are listed (the folder the charts are in)");

    m.plain_manifests = r.strings(root, "manifests", "the bundle manifest");
    for (const auto& p : m.plain_manifests)
        if (!relative_inside(p))
            r.problem(*root.find("manifests"), fmt::format("manifest \"{}\" must be a path inside the k8s folder", p));

    read_images(r, root, display, m);
    read_exclude(r, root, m);
    read_mirrors(r, root, m);
    read_platforms(r, root, m);
    if (!r.problems_.empty()) throw ManifestError(r.problems_);
    return m;
}

} // namespace aas::manifest
