// Rewriting image values in a k8s/ folder as text edits (see rewrite.hpp for the rules).
//
// The work is done in three passes:
//   1. every site becomes "set values path P to V" requests: in place at FILE:LINE when the
//      value is written in a file that may be edited, or an insertion of P into a release's
//      last values file when the value is a chart default or missing;
//   2. requests are merged: the same place asked for twice with the same value is one edit,
//      with different values an error naming both sites;
//   3. each file is edited: in-place values are replaced by column span on their line (the
//      quoting style kept), then insertions go in one by one, each checked by parsing the
//      result again (an insertion that does not read back as intended is dropped with a
//      warning).

#include "aas_bundle/rewrite/rewrite.hpp"

#include "rewrite_impl.hpp"

#include "aas_bundle/chart/chart.hpp"
#include "aas_bundle/chart/values.hpp"
#include "aas_bundle/util/error.hpp"
#include "aas_bundle/util/fs.hpp"
#include "aas_bundle/util/strings.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <tuple>

namespace aas::rewrite {

namespace fs = std::filesystem;
using chart::Coalesced;
using chart::Value;

using namespace detail;

namespace {

constexpr std::string_view k8s_prefix = "k8s/";

// ---------------------------------------------------------------------------------------------
// References as written

struct Written {
    std::string name; ///< without tag and digest
    std::string tag;
    std::string digest;
};

Written split_written(std::string_view w) {
    Written out;
    std::string s(util::trim(w));
    auto at = s.find('@');
    if (at != std::string::npos) {
        out.digest = s.substr(at + 1);
        s.resize(at);
    }
    auto slash = s.rfind('/');
    auto colon = s.rfind(':');
    if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
        out.tag = s.substr(colon + 1);
        s.resize(colon);
    }
    out.name = s;
    return out;
}

bool is_placeholder(std::string_view s) {
    return s.size() > 2 && s[0] == '<' && s.find('>') != std::string_view::npos;
}

// The repository path a written name stands for: "<REGISTRY>/a/b" -> "a/b", "busybox" ->
// "library/busybox", "quay.io/a/b" -> "a/b". `raw` keeps a registry-less name as written
// (for maps whose registry is a key of its own).
std::optional<std::string> written_path(const std::string& name, bool raw) {
    if (name.empty()) return std::nullopt;
    if (is_placeholder(name)) {
        auto slash = name.find('/');
        if (slash == std::string::npos) return std::nullopt;
        return name.substr(slash + 1);
    }
    if (raw) return name;
    auto r = ref::Reference::try_parse(name);
    if (!r) return std::nullopt;
    return r->repository();
}

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}
bool starts_with(std::string_view s, std::string_view p) {
    return s.substr(0, p.size()) == p;
}

// The target repository path that corresponds to written path `w`, given that the chart
// renders `w` (plus perhaps a suffix of its own, as "-chroot") into the source path `s`.
// With `registry_key` the value is read beside a `registry` key, which may carry path
// components of its own ("reg.local/mirror" + "edge/controller"): `w` may then be preceded
// by whole path components in `s`.
std::optional<std::string> target_repo_for(const std::string& w, const std::string& s, const ref::Reference& t,
                                           bool registry_key = false) {
    std::size_t at = 0;
    if (!starts_with(s, w)) {
        if (!registry_key) return std::nullopt;
        at = s.rfind("/" + w);
        if (at == std::string::npos) return std::nullopt;
        ++at;
    }
    std::string suffix = s.substr(at + w.size());
    const std::string& tr = t.repository();
    if (!ends_with(tr, suffix)) return std::nullopt;
    std::string base = tr.substr(0, tr.size() - suffix.size());
    if (base.empty()) return std::nullopt;
    return base;
}

// ---------------------------------------------------------------------------------------------
// Charts and their coalesced values, one per release

struct ReleaseCtx {
    const bundle::ReleaseRecord* record = nullptr; ///< null for a chart scanned without a release
    std::unique_ptr<chart::Chart> chart;
    Coalesced values;
    Coalesced defaults;
    std::set<std::string> values_files; ///< "k8s/…" of the release's values files
};

const Coalesced* node_for(const Coalesced& root, const std::string& path, std::string& rel) {
    const Coalesced* best = &root;
    rel = path;
    std::vector<const Coalesced*> todo{&root};
    while (!todo.empty()) {
        const Coalesced* n = todo.back();
        todo.pop_back();
        if (!n->values_prefix.empty() && starts_with(path, n->values_prefix + ".") &&
            n->values_prefix.size() >= best->values_prefix.size()) {
            best = n;
            rel = path.substr(n->values_prefix.size() + 1);
        }
        for (const auto& s : n->subcharts) todo.push_back(&s);
    }
    return best;
}

const Value* lookup(const Coalesced& root, const std::string& path) {
    std::string rel;
    const Coalesced* n = node_for(root, path, rel);
    return n->values.at_path(rel);
}

// ---------------------------------------------------------------------------------------------
// Planning

struct SiteDesc {
    std::string where; ///< "FILE:LINE: values.path"
    std::string image; ///< source -> target
    std::string str() const { return where + " (" + image + ")"; }
};

struct InPlace {
    std::string file;
    int line = 0;
    std::string key;         ///< "" for a list item
    std::string expected;    ///< the value there now
    std::string value;       ///< the value to write
    std::string values_path; ///< for values files: checked by parsing after the edit
    SiteDesc site;
};

struct Insert {
    std::string file;
    std::string path;
    std::string value;
    SiteDesc site;
    std::string rank_file; ///< where the chart default is written: insertions follow its order
    int rank_line = 0;
};

std::string last_key(const std::string& values_path) {
    auto dot = values_path.rfind('.');
    std::string k = dot == std::string::npos ? values_path : values_path.substr(dot + 1);
    if (k.empty() || k.back() == ']') return "";
    return k;
}

class Planner {
public:
    Planner(fs::path root, const std::vector<bundle::ReleaseRecord>& releases) : root_(std::move(root)) {
        result_.releases = releases;
    }

    void image(const ImageTarget& img) {
        auto src = ref::Reference::try_parse(img.source);
        for (const auto& site : img.sites) {
            if (!starts_with(site.file, k8s_prefix)) continue; // the manifest's images entries
            SiteDesc d{
                fmt::format("{}:{}: {}", site.file, site.line, site.values_path.empty() ? "image" : site.values_path),
                img.source + " -> " + img.target.str()};
            if (!src) {
                warn(d, fmt::format("source reference \"{}\" is not valid", img.source));
                continue;
            }
            try {
                one_site(*src, img, site, d);
            } catch (const ref::ReferenceError& e) {
                warn(d, e.what());
            }
        }
    }

    Plan finish();

private:
    void warn(const SiteDesc& d, const std::string& why) {
        std::string w = d.where + ": " + why;
        if (warned_.insert(w).second) result_.warnings.push_back(w);
    }

    void one_site(const ref::Reference& src, const ImageTarget& img, const bundle::SiteRecord& site,
                  const SiteDesc& d) {
        if (!site.parts.empty()) {
            joined_site(src, img, site, d);
            return;
        }
        bool in_archive = site.file.find(".tgz:") != std::string::npos;
        bool is_template = !site.template_file.empty() && site.file == site.template_file;
        if (is_template || site.chart.empty()) {
            if (in_archive) {
                warn(d, "the image is written in a template inside a chart archive, which load does not edit; "
                        "set it with --set or unpack the chart");
                return;
            }
            std::string written = site.written.empty() ? img.source : site.written;
            auto value = full_reference(written, src, img.target);
            if (!value) {
                warn(d, fmt::format("cannot tell how \"{}\" becomes {}; edit it by hand", written, src.str()));
                return;
            }
            std::string key = site.values_path.empty() ? "image" : last_key(site.values_path);
            add_in_place(InPlace{site.file, site.line, key, written, *value, "", d});
            return;
        }
        values_site(src, img, site, d);
    }

    // A full reference string rewritten: target name plus the kind of suffix written.
    static std::optional<std::string> full_reference(const std::string& written, const ref::Reference& src,
                                                     const ref::Reference& t) {
        Written w = split_written(written);
        auto wp = written_path(w.name, false);
        if (!wp) return std::nullopt;
        auto repo = target_repo_for(*wp, src.repository(), t);
        if (!repo) return std::nullopt;
        std::string out = t.registry() + "/" + *repo;
        if (!w.tag.empty()) out += ":" + (t.has_tag() ? t.tag() : w.tag);
        if (!w.digest.empty()) out += "@" + w.digest;
        return out;
    }

    ReleaseCtx* context(const bundle::SiteRecord& site, const SiteDesc& d) {
        const bundle::ReleaseRecord* rec = nullptr;
        for (const auto& r : result_.releases)
            if (!site.release.empty() && r.name == site.release) rec = &r;
        if (!site.release.empty() && !rec) {
            warn(d, fmt::format("release {} is not one of the bundle's releases", site.release));
            return nullptr;
        }
        if (rec) return load_context(std::string(k8s_prefix) + rec->chart, rec);
        // Without a release the site names the chart that renders it, maybe a subchart whose
        // values path starts with its key: the top chart is the first one up its path
        // ("k8s/charts/app/charts/db", "k8s/charts/x.tgz:x/charts/common") where the path
        // resolves in that subchart.
        std::vector<std::string> candidates;
        std::string c = site.chart;
        if (auto tgz = c.find(".tgz:"); tgz != std::string::npos) c.resize(tgz + 4); // the archive
        candidates.push_back(c);
        for (auto at = c.rfind("/charts/"); at != std::string::npos && at > 0; at = c.rfind("/charts/")) {
            c.resize(at);
            if (!starts_with(c, k8s_prefix) || c.size() <= k8s_prefix.size()) break;
            candidates.push_back(c);
        }
        for (const auto& cand : candidates) {
            std::error_code ec;
            if (!fs::exists(root_ / cand, ec)) continue;
            ReleaseCtx* ctx = load_context(cand, nullptr);
            std::string rel;
            const Coalesced* n = node_for(ctx->values, site.values_path, rel);
            if (n->chart->display == site.chart && n->values.at_path(rel)) return ctx;
        }
        return candidates.empty() ? nullptr : load_context(candidates.front(), nullptr);
    }

    ReleaseCtx* load_context(const std::string& chart_display, const bundle::ReleaseRecord* rec) {
        std::string key = rec ? "release " + rec->name : "chart " + chart_display;
        auto it = contexts_.find(key);
        if (it != contexts_.end()) return it->second.get();
        auto ctx = std::make_unique<ReleaseCtx>();
        ctx->record = rec;
        ctx->chart = std::make_unique<chart::Chart>(chart::load_chart(root_ / chart_display, chart_display));
        std::vector<Value> user;
        if (rec)
            for (const auto& v : rec->values) {
                std::string disp = std::string(k8s_prefix) + v;
                user.push_back(chart::parse_yaml(text_of(disp), disp));
                ctx->values_files.insert(disp);
            }
        ctx->values = chart::coalesce(*ctx->chart, user);
        ctx->defaults = chart::coalesce(*ctx->chart, {});
        return contexts_.emplace(key, std::move(ctx)).first->second.get();
    }

    void values_site(const ref::Reference& src, const ImageTarget& img, const bundle::SiteRecord& site,
                     const SiteDesc& d) {
        ReleaseCtx* ctx = context(site, d);
        if (!ctx) return;
        const Value* v = lookup(ctx->values, site.values_path);
        const Value* dv = lookup(ctx->defaults, site.values_path);
        if (!v) {
            warn(d, fmt::format("{} is not in the release's values", site.values_path));
            return;
        }
        const ref::Reference& t = img.target;
        std::vector<std::pair<std::string, std::string>> sets; // release-level path -> value
        if (v->is_scalar()) {
            auto value = full_reference(v->text(), src, t);
            if (!value) {
                warn(d, fmt::format("cannot tell how \"{}\" becomes {}; edit it by hand", v->text(), src.str()));
                return;
            }
            sets.emplace_back(site.values_path, *value);
        } else if (v->is_map()) {
            auto has = [&](std::string_view k) { return v->find(k) || (dv && dv->is_map() && dv->find(k)); };
            std::string name_key = has("repository") ? "repository"
                                   : has("image")    ? "image"
                                   : has("name")     ? "name"
                                                     : "";
            const Value* nv = name_key.empty() ? nullptr : v->find(name_key);
            if (!nv || !nv->is_scalar()) {
                warn(d, fmt::format("{} is a map without a repository, image or name string", site.values_path));
                return;
            }
            std::string base = site.values_path + ".";
            if (has("registry")) {
                Written w = split_written(nv->text());
                auto wp = written_path(w.name, true);
                auto repo = wp ? target_repo_for(*wp, src.repository(), t, true) : std::nullopt;
                if (!repo) {
                    warn(d, fmt::format("cannot tell how {}.{} \"{}\" becomes {}; edit it by hand", site.values_path,
                                        name_key, nv->text(), src.str()));
                    return;
                }
                std::string registry = t.registry();
                std::string path = *repo;
                if (name_key != "repository") {
                    // ingress-nginx: the registry carries the prefix, the image stays as written
                    // (flattened targets keep only the last component).
                    std::string keep = *wp;
                    if (!(path == keep || ends_with(path, "/" + keep))) {
                        auto slash = keep.rfind('/');
                        keep = slash == std::string::npos ? keep : keep.substr(slash + 1);
                        if (!(path == keep || ends_with(path, "/" + keep))) {
                            warn(d, fmt::format("cannot split {} into registry and {}", t.str(), name_key));
                            return;
                        }
                    }
                    std::string prefix = path.substr(0, path.size() - keep.size());
                    if (!prefix.empty()) registry += "/" + prefix.substr(0, prefix.size() - 1);
                    path = keep;
                }
                if (const Value* g = lookup(ctx->values, "global.imageRegistry"); g && g->truthy())
                    warn(d, fmt::format("global.imageRegistry is set (\"{}\") and the chart may use it instead of "
                                        "{}registry; check it points at the private registry",
                                        g->text(), base));
                std::string value = path + (w.tag.empty() ? "" : ":" + (t.has_tag() ? t.tag() : w.tag)) +
                                    (w.digest.empty() ? "" : "@" + w.digest);
                sets.emplace_back(base + "registry", registry);
                sets.emplace_back(base + name_key, value);
            } else {
                auto value = full_reference(nv->text(), src, t);
                if (!value) {
                    warn(d, fmt::format("cannot tell how {}.{} \"{}\" becomes {}; edit it by hand", site.values_path,
                                        name_key, nv->text(), src.str()));
                    return;
                }
                sets.emplace_back(base + name_key, *value);
            }
        } else {
            warn(d, fmt::format("{} is a list, not an image", site.values_path));
            return;
        }
        for (const auto& [path, value] : sets) set_value(*ctx, path, value, d);
    }

    // A reference joined from several values (SiteRecord::parts). Its name as rendered, N, and
    // the target's, T, share their last path components (all of them unless the target is
    // flattened); what comes before in N, the registry host (or nothing, for a Docker Hub
    // name), becomes what comes before in T: HOST[:PORT][/PREFIX]. That text must be the
    // start of one value's text (a registry value, or the first repository value when N has
    // no registry), and that value alone is rewritten. Values that serve several images are
    // rewritten once when all of them need the same text (the same registry and prefix).
    void joined_site(const ref::Reference& src, const ImageTarget& img, const bundle::SiteRecord& site,
                     const SiteDesc& d) {
        auto rendered = ref::Reference::try_parse(site.reference);
        if (!rendered || rendered->name() != src.name()) {
            warn(d, fmt::format("the reference as rendered, \"{}\", is not {}; edit it by hand", site.reference,
                                src.str()));
            return;
        }
        const std::string name = split_written(site.reference).name;
        const ref::Reference& t = img.target;
        const std::string target_name = t.registry() + "/" + t.repository();
        if (name == target_name) return;
        // [0, end) of `name` is replaced by `with`.
        auto from = util::split(name, '/');
        auto to = util::split(target_name, '/');
        std::size_t shared = 0;
        while (shared < from.size() && shared < to.size() &&
               from[from.size() - 1 - shared] == to[to.size() - 1 - shared])
            ++shared;
        // The shared components with the slash before each; all of `name`: it goes after `with`.
        std::size_t tail = 0;
        for (std::size_t i = 0; i < shared; ++i) tail += from[from.size() - 1 - i].size() + 1;
        if (shared == from.size()) tail = name.size();
        std::size_t end = name.size() - tail;
        std::string with = target_name.substr(0, target_name.size() - tail);
        std::string changed = name.substr(0, end);
        std::vector<const bundle::PartRecord*> edit;
        for (const auto& p : site.parts)
            if (p.at == 0 && p.written.size() >= end && (p.part == "registry" || p.part == "repository"))
                edit.push_back(&p); // several when one piece of output has several origins with its text
        if (edit.empty()) {
            warn(d, fmt::format("in \"{}\" (joined from {} values), \"{}\" would become \"{}\", and that is not the "
                                "start of one value's text; edit it by hand",
                                site.reference, site.parts.size(), changed, with));
            return;
        }
        ReleaseCtx* ctx = nullptr;
        for (const auto* p : edit) {
            std::string value = with + p->written.substr(end);
            SiteDesc pd{
                fmt::format("{}:{}: {}", p->file, p->line, p->values_path.empty() ? p->file_key : p->values_path),
                d.image};
            if (!p->values_path.empty()) {
                if (!ctx) ctx = context(site, d);
                if (!ctx) return;
                const Value* cur = lookup(ctx->values, p->values_path);
                if (!cur || !cur->is_scalar() || cur->text() != p->written) {
                    warn(pd, fmt::format("does not hold \"{}\" (the {} part of {}) in the release's values; not "
                                         "rewritten",
                                         p->written, p->part, site.reference));
                    continue;
                }
                set_value(*ctx, p->values_path, value, pd);
            } else if (!p->file_key.empty()) {
                // A chart file's value (read through .Files): the file in the shipped k8s folder.
                if (p->file.find(".tgz:") != std::string::npos) {
                    warn(pd, fmt::format("the {} part of {} is written in a file inside a chart archive, which load "
                                         "does not edit; unpack the chart or set \"{}\" there by hand",
                                         p->part, site.reference, value));
                    continue;
                }
                add_in_place(InPlace{p->file, p->line, last_key(p->file_key), p->written, value, p->file_key, pd});
            }
        }
    }

    void set_value(ReleaseCtx& ctx, const std::string& path, const std::string& value, const SiteDesc& d) {
        const Value* cur = lookup(ctx.values, path);
        if (cur && !cur->is_scalar()) {
            warn(d, fmt::format("{} is a {} in the values, not a string", path, cur->is_map() ? "map" : "list"));
            return;
        }
        if (cur && cur->is_string() && cur->text() == value) return; // already right
        if (cur && cur->origin().line > 0) {
            const std::string& file = cur->origin().file;
            bool release_file = ctx.values_files.count(file) > 0;
            if (release_file || (!ctx.record && file.find(".tgz:") == std::string::npos)) {
                add_in_place(InPlace{file, cur->origin().line, last_key(path), cur->text(), value, path, d});
                return;
            }
        }
        if (!ctx.record) {
            warn(d, fmt::format("{} is a default inside a chart archive and there is no release values file to "
                                "set it in; install with --set {}={}",
                                path, path, value));
            return;
        }
        if (path.find('[') != std::string::npos) {
            warn(d, fmt::format("{} is inside a list; set it by hand", path));
            return;
        }
        // Insertions into one file follow the order of the chart defaults they override.
        const Value* anchor = cur;
        if (!anchor || anchor->origin().line == 0) {
            auto dot = path.rfind('.');
            anchor = dot == std::string::npos ? nullptr : lookup(ctx.defaults, path.substr(0, dot));
        }
        add_insert(Insert{values_file_for(*ctx.record), path, value, d, anchor ? anchor->origin().file : "",
                          anchor ? anchor->origin().line : 0});
    }

    std::string values_file_for(const bundle::ReleaseRecord& rec) {
        if (!rec.values.empty()) return std::string(k8s_prefix) + rec.values.back();
        std::string rel = "environments/airgap/" + rec.name + "-values.yaml";
        std::string file = std::string(k8s_prefix) + rel;
        if (!created_.count(file)) {
            std::error_code ec;
            if (fs::exists(fs::symlink_status(root_ / file, ec)))
                throw Error(fmt::format("{} exists but is not a values file of release {}: it is where load puts "
                                        "the release's image values; remove it or add it to the release's values",
                                        file, rec.name));
            created_.insert(file);
            texts_[file] =
                fmt::format("# Image values of release {} for the private registry, written by aas-bundle load.\n"
                            "# The chart's defaults name public registries; these override them.\n",
                            rec.name);
            for (auto& r : result_.releases)
                if (r.name == rec.name) r.values.push_back(rel);
        }
        return file;
    }

    void add_in_place(InPlace e) {
        std::string key = fmt::format("{}\n{}\n{}", e.file, e.line, e.key);
        auto it = in_place_.find(key);
        if (it != in_place_.end()) {
            if (it->second.value != e.value)
                throw Error(fmt::format("{} and {} need different values at {}:{} (\"{}\" and \"{}\"); two images "
                                        "cannot share one value: give them separate values or load them to the same "
                                        "target",
                                        it->second.site.str(), e.site.str(), e.file, e.line, it->second.value,
                                        e.value));
            return;
        }
        order_.push_back(key);
        in_place_.emplace(key, std::move(e));
    }

    void add_insert(Insert e) {
        std::string key = e.file + "\n" + e.path;
        auto it = inserts_.find(key);
        if (it != inserts_.end()) {
            if (it->second.value != e.value)
                throw Error(fmt::format("{} and {} need different values for {} in {} (\"{}\" and \"{}\"); two "
                                        "images cannot share one value",
                                        it->second.site.str(), e.site.str(), e.path, e.file, it->second.value,
                                        e.value));
            return;
        }
        insert_order_.push_back(key);
        inserts_.emplace(key, std::move(e));
    }

    // What finish() does, step by step.

    /// An in-place edit as a replacement of columns [begin, end) of its file.
    struct Span {
        std::size_t begin, end;
        std::string text;
        const InPlace* edit;
    };
    /// The span in-place edit `e` replaces; nullopt (with a warning) when its line does not
    /// hold the value expected there.
    std::optional<Span> span_of(const InPlace& e);
    /// The insertions of every file, in the order of the chart defaults they stand for.
    std::map<std::string, std::vector<const Insert*>> inserts_by_file();
    /// Edits `file` (spans `sp`, then `inserts`) and records the change when there is one.
    void edit_file(const std::string& file, std::vector<Span>& sp, const std::vector<const Insert*>& inserts);
    /// Replaces `sp` in `after` (the text of `file`), from the last one back; throws when two
    /// spans overlap.
    void replace_spans(const std::string& file, std::string& after, std::vector<Span>& sp);
    /// Whether the values paths of `sp` read back as their new values in `after`; warns for
    /// every span and returns false otherwise (the file is then left unchanged).
    bool spans_read_back(const std::string& file, const std::string& after, const std::vector<Span>& sp);
    /// Inserts `ins` into `after` when the result reads back as intended; warns otherwise.
    void insert_into(const std::string& file, std::string& after, const Insert& ins);
    /// Drops created files that received nothing, from the changes and their releases.
    void drop_unused_created();

    const std::string& text_of(const std::string& file) {
        auto it = texts_.find(file);
        if (it != texts_.end()) return it->second;
        return texts_.emplace(file, util::read_file(root_ / file, 64u << 20)).first->second;
    }

    fs::path root_;
    Plan result_;
    std::set<std::string> warned_;
    std::map<std::string, std::unique_ptr<ReleaseCtx>> contexts_;
    std::map<std::string, std::string> texts_; ///< original texts (created files: their header)
    std::set<std::string> created_;
    std::map<std::string, InPlace> in_place_;
    std::vector<std::string> order_;
    std::map<std::string, Insert> inserts_;
    std::vector<std::string> insert_order_;
};

bool is_values_like(const std::string& file) {
    // Values files are parsed again after editing; templates are not YAML until rendered.
    return file.find("/templates/") == std::string::npos;
}

Plan Planner::finish() {
    std::map<std::string, std::vector<Span>> spans;
    for (const auto& key : order_) {
        const InPlace& e = in_place_.at(key);
        if (auto s = span_of(e)) spans[e.file].push_back(std::move(*s));
    }
    auto inserts = inserts_by_file();
    std::vector<std::string> files;
    for (const auto& [f, _] : spans) files.push_back(f);
    for (const auto& [f, _] : inserts)
        if (!spans.count(f)) files.push_back(f);

    for (const auto& file : files) edit_file(file, spans[file], inserts[file]);
    drop_unused_created();
    std::sort(result_.changes.begin(), result_.changes.end(),
              [](const FileChange& a, const FileChange& b) { return a.path < b.path; });
    return std::move(result_);
}

std::optional<Planner::Span> Planner::span_of(const InPlace& e) {
    const std::string& text = text_of(e.file);
    auto lines = split_lines(text);
    if (e.line < 1 || static_cast<std::size_t>(e.line) > lines.size()) {
        warn(e.site, fmt::format("{} has no line {}", e.file, e.line));
        return std::nullopt;
    }
    const LineRef& lr = lines[static_cast<std::size_t>(e.line) - 1];
    std::string_view l = std::string_view(text).substr(lr.begin, lr.end - lr.begin);
    std::optional<Scalar> s;
    if (!e.key.empty()) {
        auto k = read_key(l);
        if (k && k->key == e.key) s = read_scalar(l, k->value_at);
        if (!k || k->key != e.key) {
            warn(e.site, fmt::format("line {} of {} is not \"{}: ...\"; not rewritten", e.line, e.file, e.key));
            return std::nullopt;
        }
    } else {
        std::size_t i = skip_spaces(l, 0);
        if (i < l.size() && l[i] == '-') s = read_scalar(l, skip_spaces(l, i + 1));
    }
    if (!s || s->text != e.expected) {
        warn(e.site, fmt::format("line {} of {} does not hold \"{}\" as a one-line value; not rewritten", e.line,
                                 e.file, e.expected));
        return std::nullopt;
    }
    return Span{lr.begin + s->begin, lr.begin + s->end, quote(e.value, s->style), &e};
}

std::map<std::string, std::vector<const Insert*>> Planner::inserts_by_file() {
    std::map<std::string, std::vector<const Insert*>> inserts;
    for (const auto& key : insert_order_) {
        const Insert& i = inserts_.at(key);
        text_of(i.file);
        inserts[i.file].push_back(&i);
    }
    for (auto& [f, list] : inserts)
        std::stable_sort(list.begin(), list.end(), [](const Insert* a, const Insert* b) {
            return std::tie(a->rank_file, a->rank_line) < std::tie(b->rank_file, b->rank_line);
        });
    return inserts;
}

void Planner::edit_file(const std::string& file, std::vector<Span>& sp, const std::vector<const Insert*>& inserts) {
    const std::string& before = text_of(file);
    std::string after = before;
    replace_spans(file, after, sp);
    if (is_values_like(file) && !sp.empty() && !spans_read_back(file, after, sp)) return;
    for (const Insert* ins : inserts) insert_into(file, after, *ins);
    bool created = created_.count(file) > 0;
    if (created || after != before)
        result_.changes.push_back(FileChange{file, created ? std::string() : before, after, created});
}

void Planner::replace_spans(const std::string& file, std::string& after, std::vector<Span>& sp) {
    std::sort(sp.begin(), sp.end(), [](const Span& a, const Span& b) { return a.begin > b.begin; });
    for (std::size_t i = 0; i < sp.size(); ++i) {
        if (i > 0 && sp[i].end > sp[i - 1].begin)
            throw Error(fmt::format("{} and {} edit overlapping text in {}", sp[i].edit->site.str(),
                                    sp[i - 1].edit->site.str(), file));
        after.replace(sp[i].begin, sp[i].end - sp[i].begin, sp[i].text);
    }
}

bool Planner::spans_read_back(const std::string& file, const std::string& after, const std::vector<Span>& sp) {
    // In-place edits of values files and manifests must read back as intended.
    try {
        auto docs = chart::parse_yaml_documents(after, file);
        for (const auto& s : sp) {
            if (s.edit->values_path.empty() || docs.empty()) continue;
            // A subchart's own values.yaml holds its paths without the subchart's key.
            const Value* got = nullptr;
            for (std::string_view vp = s.edit->values_path; !got || got->text() != s.edit->value;) {
                got = docs.front().at_path(vp);
                auto dot = vp.find('.');
                if (dot == std::string_view::npos) break;
                vp.remove_prefix(dot + 1);
            }
            if (!got || got->text() != s.edit->value)
                throw Error(fmt::format("{} does not read back as \"{}\"", s.edit->values_path, s.edit->value));
        }
    } catch (const Error& e) {
        for (const auto& s : sp) warn(s.edit->site, fmt::format("{} left unchanged: {}", file, e.what()));
        return false;
    }
    return true;
}

void Planner::insert_into(const std::string& file, std::string& after, const Insert& ins) {
    std::string why;
    auto path = util::split(ins.path, '.');
    auto at = plan_insertion(after, path, ins.value, why);
    if (!at) {
        warn(ins.site, fmt::format("cannot insert {} into {}: {}; set it by hand", ins.path, file, why));
        return;
    }
    std::string next = after;
    next.insert(at->offset, at->text);
    try {
        Value doc = chart::parse_yaml(next, file);
        const Value* got = doc.at_path(ins.path);
        if (!got || !got->is_string() || got->text() != ins.value) {
            warn(ins.site, fmt::format("inserting {} into {} would not read back as \"{}\"; set it by hand", ins.path,
                                       file, ins.value));
            return;
        }
    } catch (const Error& e) {
        warn(ins.site,
             fmt::format("inserting {} into {} would make it invalid ({}); set it by hand", ins.path, file, e.what()));
        return;
    }
    after = std::move(next);
}

void Planner::drop_unused_created() {
    // A created file that received nothing is not written, and not added to the release.
    for (const auto& file : created_) {
        bool used = std::any_of(result_.changes.begin(), result_.changes.end(),
                                [&](const FileChange& c) { return c.path == file && c.after != texts_[file]; });
        if (used) continue;
        std::erase_if(result_.changes, [&](const FileChange& c) { return c.path == file; });
        for (auto& r : result_.releases)
            std::erase_if(r.values, [&](const std::string& v) { return std::string(k8s_prefix) + v == file; });
    }
}

} // namespace

Plan plan(const fs::path& root, const std::vector<ImageTarget>& images,
          const std::vector<bundle::ReleaseRecord>& releases) {
    Planner p(root, releases);
    for (const auto& img : images) p.image(img);
    return p.finish();
}

void apply(const fs::path& root, const Plan& p) {
    for (const auto& c : p.changes) {
        if (!starts_with(c.path, k8s_prefix) || c.path.find("..") != std::string::npos)
            throw Error(fmt::format("rewriting {}: not a path inside k8s/", c.path));
        fs::path path = root / c.path;
        std::error_code ec;
        if (c.created) {
            if (fs::exists(fs::symlink_status(path, ec)))
                throw Error(fmt::format("writing {}: it already exists; it was not there when the changes were "
                                        "planned, so plan again",
                                        c.path));
            fs::create_directories(path.parent_path(), ec);
            if (ec) throw Error(fmt::format("creating the folder of {}: {}", c.path, ec.message()));
            util::write_file_atomic(path, c.after);
            continue;
        }
        if (fs::is_symlink(path, ec)) {
            fs::path real = fs::canonical(path, ec);
            fs::path real_root = fs::canonical(root / k8s_prefix.substr(0, 3), ec);
            auto rel = real.lexically_relative(real_root).generic_string();
            if (ec || rel.empty() || starts_with(rel, ".."))
                throw Error(fmt::format("rewriting {}: it is a symlink that leaves k8s/", c.path));
            path = real;
        }
        std::string now = util::read_file(path, 64u << 20);
        if (now != c.before)
            throw Error(
                fmt::format("rewriting {}: the file changed since the changes were planned; plan again", c.path));
        auto perms = fs::status(path, ec).permissions();
        if (ec) throw Error(fmt::format("rewriting {}: {}", c.path, ec.message()));
        util::write_file_atomic(path, c.after, perms);
    }
}

} // namespace aas::rewrite
