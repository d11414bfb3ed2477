#include "aas_bundle/discovery/discovery.hpp"

#include "aas_bundle/chart/chart.hpp"
#include "aas_bundle/chart/template.hpp"
#include "aas_bundle/chart/values.hpp"
#include "aas_bundle/util/fs.hpp"
#include "aas_bundle/util/strings.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <tuple>

namespace aas::discovery {
namespace fs = std::filesystem;
using chart::Coalesced;
using chart::Origin;
using chart::Value;

const char* to_string(Class c) {
    switch (c) {
    case Class::required:
        return "required";
    case Class::test:
        return "test";
    case Class::optional:
        return "optional";
    }
    return "?";
}

namespace {

// "<REGISTRY>/a/b:1" -> true (a placeholder of the form <WORD> at the start).
bool is_placeholder(std::string_view s) {
    if (s.size() < 3 || s.front() != '<') return false;
    auto close = s.find('>');
    if (close == std::string_view::npos || close < 2) return false;
    for (std::size_t i = 1; i < close; ++i) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

// The reference text without its tag and digest: "r/a/b:1@sha256:x" -> "r/a/b".
std::string name_part(std::string_view s) {
    s = s.substr(0, s.find('@'));
    auto slash = s.rfind('/');
    auto colon = s.rfind(':');
    if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) s = s.substr(0, colon);
    return std::string(s);
}

// Dotted-component common prefix of values paths ("image.repository", "image.tag" -> "image").
std::string common_prefix(const std::vector<std::string>& paths) {
    if (paths.empty()) return {};
    auto split_path = [](const std::string& p) { return util::split(p, '.'); };
    auto first = split_path(paths.front());
    std::size_t n = first.size();
    for (const auto& p : paths) {
        auto parts = split_path(p);
        std::size_t i = 0;
        while (i < n && i < parts.size() && parts[i] == first[i]) ++i;
        n = i;
    }
    std::string out;
    for (std::size_t i = 0; i < n; ++i) out += (i ? "." : "") + first[i];
    // A full path of a leaf (one source) is its own site.
    return out;
}

// Parses `text` once; on failure `why` gets the reason and hint without the input
// (callers name the value and where it was written themselves).
std::optional<ref::Reference> parse_reference(const std::string& text, std::string& why) {
    try {
        return ref::Reference::parse(text);
    } catch (const ref::ReferenceError& e) {
        why = e.reason() + (e.hint().empty() ? "" : "; " + e.hint());
        return std::nullopt;
    }
}

bool is_helper(const chart::File& f) {
    auto base = fs::path(f.name).filename().string();
    return base.empty() || base[0] == '_' || base == "NOTES.txt";
}

bool is_yaml_name(const std::string& n) {
    return n.size() > 5 && (n.ends_with(".yaml") || n.ends_with(".yml"));
}

class Discoverer {
public:
    Discoverer(fs::path k8s_root, const manifest::Manifest* m) : root_(std::move(k8s_root)), manifest_(m) {
        root_display_ = root_.filename().string();
        if (root_display_.empty()) root_display_ = root_.parent_path().filename().string();
    }

    void kube_version(const std::string& v) {
        if (!v.empty()) kube_version_ = v[0] == 'v' ? v : "v" + v;
    }

    std::string display(const std::string& rel) const {
        return rel.empty() ? root_display_ : root_display_ + "/" + rel;
    }

    void release(const std::string& name, const std::string& chart_rel, const std::string& ns,
                 const std::vector<std::string>& values_rel) {
        fs::path chart_path = chart_rel.empty() ? root_ : root_ / chart_rel;
        std::string chart_display = display(chart_rel);
        chart::Chart ch = chart::load_chart(chart_path, chart_display);
        add_warnings(ch);
        std::vector<Value> user;
        for (const auto& v : values_rel) {
            fs::path p = root_ / v;
            std::string text;
            try {
                text = util::read_file(p, 16u << 20);
            } catch (const Error& e) {
                throw Error(fmt::format("release {}: values file {}: {}", name, display(v), e.what()));
            }
            user.push_back(chart::parse_yaml(text, display(v)));
        }
        Coalesced co = chart::coalesce(ch, user);
        Coalesced defaults = chart::coalesce(ch, {});
        chart::tmpl::TemplateSet ts;
        add_templates(ts, ch);
        for (const auto& d : ts.diagnostics()) result_.warnings.push_back(d);
        Release rel{name, ns, &ts};
        walk(rel, co, &defaults, false);
        cross_check(name, ch);
    }

    void plain_manifest(const std::string& rel) {
        std::string disp = display(rel);
        std::string text = util::read_file(root_ / rel, 64u << 20);
        std::vector<Value> docs;
        try {
            docs = chart::parse_yaml_documents(text, disp);
        } catch (const Error& e) {
            result_.warnings.push_back(fmt::format("{} (skipped: not valid YAML)", e.what()));
            return;
        }
        for (const auto& doc : docs) {
            if (!doc.is_map() || !doc.find("kind") || !doc.find("apiVersion")) continue;
            scan_document(doc, "", disp);
        }
    }

    void extra_image(const manifest::Image& img) {
        Site s;
        s.file = img.where.file;
        s.line = img.where.line;
        s.values_path = "images";
        s.written = img.ref.str();
        add(img.ref, Class::required, s, img.from);
    }

    Result finish() {
        // Manifest images that name the source of a placeholder resolve it.
        std::vector<Unresolved> still;
        for (auto& u : result_.unresolved) {
            const manifest::Image* match = match_manifest_image(u.target);
            if (!match) {
                still.push_back(u);
                continue;
            }
            Site s{u.release, u.chart, u.file, u.line, u.values_path, u.target, "", 0, Class::required};
            add(match->ref, Class::required, s, match->from);
        }
        result_.unresolved = std::move(still);
        // An untagged reference only a branch the values do not take builds, beside the same
        // repository with a tag or digest: the fallback `{{ else }}repo{{ end }}` of a tag the
        // defaults set, which nothing installs.
        std::set<std::string> pinned;
        for (const auto& [key, img] : images_)
            if (!untagged_optional_.count(key)) pinned.insert(img.ref.name());
        for (auto it = images_.begin(); it != images_.end();) {
            if (it->second.cls == Class::optional && untagged_optional_.count(it->first) &&
                pinned.count(it->second.ref.name()))
                it = images_.erase(it);
            else
                ++it;
        }
        // A possible value that discovery found as an image (by its values) is not "possible".
        std::erase_if(result_.possible, [&](const Possible& p) {
            auto r = ref::Reference::try_parse(p.value);
            return r && images_.count(r->str());
        });
        for (auto& [key, img] : images_) result_.images.push_back(std::move(img));
        // The same warning from many renders (a helper used by every template) once, counted.
        std::map<std::string, std::size_t> count;
        std::vector<std::string> order;
        for (auto& w : result_.warnings)
            if (count[w]++ == 0) order.push_back(w);
        result_.warnings.clear();
        for (auto& w : order) result_.warnings.push_back(count[w] > 1 ? fmt::format("{} ({} times)", w, count[w]) : w);
        return std::move(result_);
    }

private:
    struct Release {
        std::string name;
        std::string ns;
        const chart::tmpl::TemplateSet* templates;
    };

    void add_warnings(const chart::Chart& ch) {
        for (const auto& w : ch.warnings) result_.warnings.push_back(w);
        for (const auto& sub : ch.subcharts) add_warnings(sub);
    }

    static void add_templates(chart::tmpl::TemplateSet& ts, const chart::Chart& ch) {
        for (const auto& f : ch.templates) ts.add(f);
        for (const auto& sub : ch.subcharts) add_templates(ts, sub);
    }

    static const Coalesced* find_node(const Coalesced* n, const std::string& prefix) {
        if (!n) return nullptr;
        if (n->values_prefix == prefix) return n;
        for (const auto& s : n->subcharts)
            if (auto* f = find_node(&s, prefix)) return f;
        return nullptr;
    }

    // The value at a release-level path inside `node` (whose values are relative to it).
    static const Value* lookup(const Coalesced& node, const std::string& release_path) {
        std::string rel = release_path;
        if (!node.values_prefix.empty()) {
            if (rel.rfind(node.values_prefix + ".", 0) != 0) return nullptr;
            rel = rel.substr(node.values_prefix.size() + 1);
        }
        return node.values.at_path(rel);
    }

    void walk(const Release& rel, const Coalesced& node, const Coalesced* defaults_root, bool shadow) {
        bool here_shadow = shadow || !node.enabled;
        const Coalesced* defaults = find_node(defaults_root, node.values_prefix);
        for (const auto& f : node.chart->templates) {
            if (is_helper(f)) continue;
            chart::tmpl::Context ctx;
            ctx.chart = &node;
            ctx.release_name = rel.name.empty() ? node.chart->name : rel.name;
            ctx.release_namespace = rel.ns;
            ctx.shadow = here_shadow;
            ctx.kube_version = kube_version_;
            auto r = rel.templates->render(f.display, ctx);
            for (const auto& d : r.diagnostics) result_.warnings.push_back(d);
            if (!r.incomplete.empty()) {
                std::string what = fmt::format("{}: {}: {}", node.chart->display, f.display, r.incomplete);
                result_.incomplete.push_back(what);
                result_.warnings.push_back(fmt::format("{}: {}: incomplete, images past that point are not "
                                                       "discovered ({})",
                                                       node.chart->display, f.display, r.incomplete));
            }
            bool test_file = f.name.rfind("templates/tests/", 0) == 0;
            auto found = chart::tmpl::scan_images(r);
            for (const auto& img : found) template_image(rel, node, defaults, img, test_file);
            for (const auto& img : found)
                if (img.live) switch_variants(rel, node, defaults, f, ctx, img, test_file);
            possible_in_rendered(node, f, r);
        }
        for (const auto& sub : node.subcharts) walk(rel, sub, defaults_root, here_shadow);
    }

    // Images an image map's own switches would select: for every boolean beside the image's
    // values (ingress-nginx's `controller.image.chroot`), the template is rendered again with
    // the switch flipped; a different reference at the same `image:` line is an optional
    // variant (controller-chroot). Inline alternatives cannot be shown otherwise: the rendered
    // line holds only the branch the values take.
    void switch_variants(const Release& rel, const Coalesced& node, const Coalesced* defaults, const chart::File& f,
                         const chart::tmpl::Context& ctx, const chart::tmpl::TemplateImage& img, bool test_file) {
        std::vector<std::string> paths;
        for (const auto& o : img.sources)
            if (!o.values_path.empty() && o.values_path.rfind("global.", 0) != 0) paths.push_back(o.values_path);
        if (paths.size() < 2) return;
        std::string map_path = common_prefix(paths);
        const Value* map = map_path.empty() ? nullptr : lookup(node, map_path);
        if (!map || !map->is_map()) return;
        for (const auto& [key, v] : map->entries()) {
            if (v.kind() != Value::Kind::boolean) continue;
            if (!flipped_.insert(f.display + "\n" + map_path + "." + key).second) continue;
            Coalesced copy = node;
            std::string rel_path = map_path;
            if (!node.values_prefix.empty()) rel_path = rel_path.substr(node.values_prefix.size() + 1);
            Value* target = &copy.values;
            for (const auto& part : util::split(rel_path, '.')) {
                target = target ? target->find(part) : nullptr;
            }
            if (!target || !target->is_map()) continue;
            target->set(key, Value::make_bool(!v.as_bool(), v.origin()));
            chart::tmpl::Context flipped = ctx;
            flipped.chart = &copy;
            auto r = rel.templates->render(f.display, flipped);
            for (auto other : chart::tmpl::scan_images(r)) {
                if (other.line != img.line || other.value == img.value || !other.live) continue;
                other.live = false; // behind a switch that is off
                template_image(rel, node, defaults, other, test_file);
            }
        }
    }

    // An untagged reference outside image: fields is the whole of one image value; when that
    // value sits beside a tag, version or digest it is only the name part (IMAGE_NAME:
    // {{ .Values.image.name }} next to image.tag), not a reference.
    static bool only_a_name(const Coalesced& node, const chart::tmpl::TemplateImage& img, const std::string& value) {
        if (img.found_in.empty() || value.find('@') != std::string::npos ||
            !(value.rfind(':') == std::string::npos || value.rfind(':') < value.rfind('/')))
            return false;
        for (const auto& o : img.sources) {
            auto dot = o.values_path.rfind('.');
            if (o.values_path.empty() || dot == std::string::npos) continue;
            const Value* parent = lookup(node, o.values_path.substr(0, dot));
            if (!parent || !parent->is_map()) continue;
            for (const auto& [k, v] : parent->entries()) {
                std::string lk = util::to_lower(k);
                if (lk.ends_with("tag") || lk.ends_with("version") || lk.ends_with("digest")) return true;
            }
        }
        return false;
    }

    // The values a rendered reference is built from, and the one that wrote its name.
    struct Sources {
        std::vector<std::string> paths; ///< the values paths, global.* left out
        const Origin* name_src = nullptr;
        const Origin* placeholder_src = nullptr; ///< a "<REGISTRY>/..." value in the reference
        std::string placeholder_text;
    };

    // The name is written by a placeholder value first, else by a value named repository,
    // image or name, else by the first value outside global.
    static Sources reference_sources(const Coalesced& node, const chart::tmpl::TemplateImage& img,
                                     const std::string& value) {
        Sources s;
        for (const auto& o : img.sources) {
            if (o.values_path.empty()) continue;
            const Value* v = lookup(node, o.values_path);
            std::string text = v && v->is_scalar() ? v->text() : std::string();
            if (!s.placeholder_src && is_placeholder(text) &&
                value.find(text.substr(0, text.find('>') + 1)) != std::string::npos) {
                s.placeholder_src = &o;
                s.placeholder_text = text;
            }
            if (o.values_path.rfind("global.", 0) != 0) s.paths.push_back(o.values_path);
            auto last = o.values_path.substr(o.values_path.rfind('.') + 1);
            if (!s.name_src && (last == "repository" || last == "image" || last == "name")) s.name_src = &o;
        }
        if (!s.name_src) {
            for (const auto& o : img.sources)
                if (!o.values_path.empty() && o.values_path.rfind("global.", 0) != 0) {
                    s.name_src = &o;
                    break;
                }
        }
        if (s.placeholder_src) s.name_src = s.placeholder_src;
        return s;
    }

    // The site of a rendered reference: the value that wrote its name, or the template line.
    static Site template_site(const Release& rel, const Coalesced& node, const chart::tmpl::TemplateImage& img,
                              Class cls, const std::string& value, const Sources& src) {
        Site site;
        site.release = rel.name;
        site.chart = node.chart->display;
        site.template_file = img.file;
        site.template_line = img.line;
        site.cls = cls;
        if (src.name_src) {
            site.file = src.name_src->file;
            site.line = src.name_src->line;
            site.values_path = src.paths.size() > 1 ? common_prefix(src.paths) : src.name_src->values_path;
            if (site.values_path.empty()) site.values_path = src.name_src->values_path;
            const Value* w = lookup(node, src.name_src->values_path);
            site.written = w && w->is_scalar() ? w->text() : value;
        } else {
            site.file = img.file;
            site.line = img.line;
            site.written = value;
        }
        return site;
    }

    // `value` with its placeholder name replaced by the chart's upstream default for that
    // values path; nullopt, recorded as unresolved, when there is no such default.
    std::optional<std::string> resolve_placeholder(const Release& rel, const Coalesced& node, const Coalesced* defaults,
                                                   const std::string& value, const Sources& src, const Site& site) {
        std::string s_name = name_part(src.placeholder_text);
        std::string s_path =
            s_name.substr(s_name.find('/') == std::string::npos ? s_name.size() : s_name.find('/') + 1);
        const Value* d = defaults ? lookup(*defaults, src.placeholder_src->values_path) : nullptr;
        std::optional<ref::Reference> d_ref;
        std::string d_name;
        if (d && d->is_scalar() && !d->text().empty() && !is_placeholder(d->text())) {
            d_name = name_part(d->text());
            d_ref = ref::Reference::try_parse(d_name);
        }
        if (!d_ref || d_ref->repository() != s_path) {
            // No upstream default for this path: the manifest must name the source.
            std::string target = value;
            result_.unresolved.push_back(Unresolved{
                rel.name, node.chart->display, site.file, site.line, src.placeholder_src->values_path, target,
                fmt::format("{} has no upstream default at {} in chart {}; name its source in the bundle "
                            "manifest (images: - ref: {}, from: docker-archive:PATH | oci:PATH | "
                            "REFERENCE)",
                            target, src.placeholder_src->values_path, node.chart->display,
                            target.substr(target.find('/') + 1))});
            return std::nullopt;
        }
        std::string resolved = value;
        auto pos = resolved.find(s_name);
        resolved.replace(pos, s_name.size(), d_ref->name());
        return resolved;
    }

    // A value that is not a reference, reported as written, where it was written: an error,
    // or a warning when only a branch the values do not take builds it.
    void invalid_reference(const chart::tmpl::TemplateImage& img, const Site& site, const Sources& src,
                           const std::string& value, const std::string& why) {
        std::string shown = src.placeholder_src ? src.placeholder_text : value;
        const std::string& path = src.placeholder_src ? src.placeholder_src->values_path : site.values_path;
        if (!img.live) {
            // Only a branch the values do not take builds it: not what the install uses.
            warn(fmt::format("{}:{}: {}: \"{}\" is not a valid image reference: {} (only in a branch "
                             "the values do not take, {}:{})",
                             site.file, site.line, path, shown, why, img.file, img.line));
            return;
        }
        error(site.file, site.line, path, fmt::format("\"{}\" is not a valid image reference: {}", shown, why));
    }

    void template_image(const Release& rel, const Coalesced& node, const Coalesced* defaults,
                        const chart::tmpl::TemplateImage& img, bool test_file) {
        Class cls = (img.test_hook || test_file) ? Class::test : img.live ? Class::required : Class::optional;
        if (!img.unevaluated.empty()) {
            result_.warnings.push_back(fmt::format("{}:{}: image expression beyond what is evaluated ({}); "
                                                   "name the image in the manifest's images if it is needed",
                                                   img.file, img.line, img.unevaluated));
            return;
        }
        std::string value = std::string(util::trim(img.value));
        if (value.empty() || only_a_name(node, img, value)) return;
        const Sources src = reference_sources(node, img, value);
        Site site = template_site(rel, node, img, cls, value, src);
        std::string resolved = value;
        if (src.placeholder_src) {
            auto r = resolve_placeholder(rel, node, defaults, value, src, site);
            if (!r) return;
            resolved = std::move(*r);
        }

        std::string why;
        auto parsed = parse_reference(resolved, why);
        if (!parsed) {
            invalid_reference(img, site, src, value, why);
            return;
        }
        if (cls == Class::optional && !parsed->has_digest() &&
            (resolved.rfind(':') == std::string::npos ||
             (resolved.rfind('/') != std::string::npos && resolved.rfind(':') < resolved.rfind('/'))))
            untagged_optional_.insert(parsed->str());
        if (!src.placeholder_src) {
            site.parts = joined_parts(node, img, value, site.values_path);
            if (!site.parts.empty()) site.reference = value;
        }
        bool from_kube = std::any_of(img.sources.begin(), img.sources.end(),
                                     [](const Origin& o) { return o.file == chart::tmpl::kube_version_origin; });
        add(*parsed, cls, site, "");
        if (auto it = images_.find(parsed->str()); from_kube && it != images_.end()) {
            it->second.kube_version_dependent = true;
            warn(fmt::format("{}:{}: {} takes part of its reference from .Capabilities.KubeVersion ({}; "
                             "set the cluster's with --kube-version)",
                             img.file, img.line, parsed->str(), kube_version_));
        }
    }

    // The values a reference's name is joined from, when they are not one value or the
    // fields of one map (which the site's values path names): every piece of the reference
    // that is a value's text as written (as rendered, not changed by a function), with the
    // part of the reference it starts in. Empty when the site's values path says it all.
    std::vector<Part> joined_parts(const Coalesced& node, const chart::tmpl::TemplateImage& img,
                                   const std::string& value, const std::string& site_path) const {
        if (img.spans.empty() || img.value != value) return {};
        // registry [0, host_end), repository [.., name_end), tag [.., digest_at), digest.
        std::size_t digest_at = std::min(value.find('@'), value.size());
        std::string_view name(value.data(), digest_at);
        std::size_t slash = name.rfind('/'), colon = name.rfind(':');
        std::size_t name_end =
            colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash) ? colon : digest_at;
        std::size_t host_end = 0;
        if (auto first = value.find('/'); first < name_end) {
            std::string_view host(value.data(), first);
            if (host.find('.') != std::string_view::npos || host.find(':') != std::string_view::npos ||
                host == "localhost")
                host_end = first;
        }
        std::vector<Part> parts;
        bool joined = false;
        for (const auto& sp : img.spans) {
            const Origin& o = sp.origin;
            std::string text = value.substr(sp.begin, sp.end - sp.begin);
            if (text.empty()) continue;
            Part p;
            p.part = sp.begin < host_end    ? "registry"
                     : sp.begin < name_end  ? "repository"
                     : sp.begin < digest_at ? "tag"
                                            : "digest";
            p.file = o.file;
            p.line = o.line;
            p.written = text;
            p.at = sp.begin;
            if (!o.values_path.empty()) {
                const Value* v = lookup(node, o.values_path);
                if (!v || !v->is_scalar() || v->text() != text) continue; // not its text as written
                p.values_path = o.values_path;
            } else if (o.chart_file && !o.file_key.empty() && o.line > 0) {
                p.file_key = o.file_key;
            } else {
                continue; // the appVersion, the Kubernetes version, a whole chart file
            }
            bool name_part = p.part == "registry" || p.part == "repository";
            if (name_part && p.values_path.rfind("global.", 0) != 0) {
                // One value, or fields of the map the site names, is what the values path says.
                auto dot = p.values_path.rfind('.');
                std::string parent = dot == std::string::npos ? std::string() : p.values_path.substr(0, dot);
                if (!p.file_key.empty() || (p.values_path != site_path && parent != site_path)) joined = true;
            }
            parts.push_back(std::move(p));
        }
        if (!joined) return {};
        return parts;
    }

    // CustomResourceDefinition documents blanked out, line for line: they hold no container
    // args, env or ConfigMap data, and parsing their schemas (MBs from .Files) is most of the time.
    static std::string without_crds(const std::string& text) {
        if (text.find("kind: CustomResourceDefinition") == std::string::npos) return text;
        std::string out;
        out.reserve(text.size());
        std::size_t doc = 0; // start of the current document in `text`
        auto flush = [&](std::size_t end) {
            std::string_view d(text.data() + doc, end - doc);
            bool crd = d.rfind("kind: CustomResourceDefinition", 0) == 0 ||
                       d.find("\nkind: CustomResourceDefinition") != std::string_view::npos;
            if (crd)
                out.append(static_cast<std::size_t>(std::count(d.begin(), d.end(), '\n')), '\n');
            else
                out.append(d);
        };
        for (std::size_t ls = 0; ls < text.size();) {
            std::size_t le = text.find('\n', ls);
            std::size_t next = le == std::string::npos ? text.size() : le + 1;
            if (text.compare(ls, 3, "---") == 0 && ls > doc) {
                flush(ls);
                doc = ls;
            }
            ls = next;
        }
        flush(text.size());
        return out;
    }

    // Container args/env and ConfigMap data that look like images, in rendered output.
    void possible_in_rendered(const Coalesced& node, const chart::File& f, const chart::tmpl::Rendered& r) {
        std::string text = without_crds(r.text());
        if (text.find("kind:") == std::string::npos) return;
        std::vector<Value> docs;
        try {
            docs = chart::parse_yaml_documents(text, f.display);
        } catch (const Error&) {
            // Both sides of a condition need not make YAML together (a column-0 toYaml block in
            // a branch not taken): what helm would print, the live output, is read instead.
            std::string live;
            for (const auto& p : r.pieces)
                if (p.live) live += p.text;
            live = without_crds(live);
            try {
                docs = chart::parse_yaml_documents(live, f.display);
            } catch (const Error&) {
                return; // not YAML either way: nothing to report
            }
        }
        for (const auto& doc : docs)
            if (doc.is_map()) possible_in(doc, node.chart->display, f.display, true);
    }

    // `relaxed` (container args and env): a tag or digest is enough, without a registry.
    static bool looks_like_image(std::string_view s, bool relaxed = false) {
        if (s.size() < 5 || s.size() > 512 || s.find(' ') != std::string_view::npos) return false;
        if (is_placeholder(s)) { // "<REGISTRY>/path:tag": judge the rest under a stand-in registry
            std::string stand_in = "placeholder.invalid" + std::string(s.substr(s.find('>') + 1));
            return looks_like_image(stand_in, relaxed);
        }
        if (s.find('/') == std::string_view::npos) return false;
        auto first = s.substr(0, s.find('/'));
        if (!relaxed && first.find('.') == std::string_view::npos && first.find(':') == std::string_view::npos &&
            first != "localhost")
            return false;
        if (s.find("://") != std::string_view::npos) return false;
        auto r = ref::Reference::try_parse(s);
        return r &&
               (s.find('@') != std::string_view::npos || s.substr(s.rfind('/')).find(':') != std::string_view::npos);
    }

    void possible_in(const Value& doc, const std::string& chart, const std::string& file, bool from_template) {
        const Value* kind = doc.find("kind");
        std::string k = kind && kind->is_scalar() ? kind->text() : "";
        auto report = [&](const Value& v, const std::string& why) {
            if (!v.is_scalar()) return;
            bool container = why.rfind("container", 0) == 0;
            std::string text = v.text();
            // A flag of a container's args or command: `--sidecar-image=REF`.
            if (container && text.rfind("-", 0) == 0)
                if (auto eq = text.find('='); eq != std::string::npos) text = text.substr(eq + 1);
            if (!looks_like_image(text, container)) return;
            if (from_template && v.origin().line == 0) return;
            result_.possible.push_back(Possible{text, chart, file, v.origin().line, why});
        };
        if (k == "ConfigMap") {
            if (const Value* data = doc.find("data"); data && data->is_map())
                for (const auto& [key, v] : data->entries()) report(v, fmt::format("ConfigMap data \"{}\"", key));
            return;
        }
        // Containers anywhere in the document: args, command and env values.
        std::vector<const Value*> stack{&doc};
        while (!stack.empty()) {
            const Value* v = stack.back();
            stack.pop_back();
            if (v->is_map()) {
                for (const auto& [key, child] : v->entries()) {
                    if ((key == "args" || key == "command") && child.is_list()) {
                        for (const auto& a : child.items()) report(a, fmt::format("container {}", key));
                    } else if (key == "env" && child.is_list()) {
                        for (const auto& e : child.items())
                            if (const Value* val = e.is_map() ? e.find("value") : nullptr)
                                report(*val, "container env");
                    } else {
                        stack.push_back(&child);
                    }
                }
            } else if (v->is_list()) {
                for (const auto& child : v->items()) stack.push_back(&child);
            }
        }
    }

    // `image:` fields of a plain manifest document.
    void scan_document(const Value& doc, const std::string& chart, const std::string& file) {
        std::vector<std::pair<const Value*, std::string>> stack{{&doc, ""}};
        while (!stack.empty()) {
            auto [v, path] = stack.back();
            stack.pop_back();
            if (v->is_map()) {
                for (auto it = v->entries().rbegin(); it != v->entries().rend(); ++it) {
                    const auto& [key, child] = *it;
                    std::string p = path.empty() ? key : path + "." + key;
                    if (key == "image" && child.is_scalar() && !child.text().empty()) {
                        plain_image(child, chart, file, p);
                    } else {
                        stack.push_back({&child, p});
                    }
                }
            } else if (v->is_list()) {
                for (std::size_t i = v->items().size(); i-- > 0;)
                    stack.push_back({&v->items()[i], fmt::format("{}[{}]", path, i)});
            }
        }
        possible_in(doc, chart, file, false);
    }

    void plain_image(const Value& v, const std::string& chart, const std::string& file, const std::string& path) {
        Site s;
        s.chart = chart;
        s.file = file;
        s.line = v.origin().line;
        s.values_path = path;
        s.written = v.text();
        std::string why;
        auto parsed = parse_reference(v.text(), why);
        if (!parsed) {
            error(file, s.line, path, fmt::format("\"{}\" is not a valid image reference: {}", v.text(), why));
            return;
        }
        add(*parsed, Class::required, s, "");
    }

    // Each chart's own annotation against the images of that chart and its subcharts.
    void cross_check(const std::string& release, const chart::Chart& ch) {
        for (const auto& sub : ch.subcharts) cross_check(release, sub);
        // The charts an annotation speaks for: its own, and subcharts without one of their own.
        std::set<std::string> covered;
        auto cover = [&](auto&& self, const chart::Chart& c) -> void {
            covered.insert(c.display);
            for (const auto& s : c.subcharts) {
                bool own = false;
                for (const char* k : {"artifacthub.io/images", "helm.sh/images", "images"})
                    own = own || s.annotations.count(k);
                if (!own) self(self, s);
            }
        };
        cover(cover, ch);
        auto in_chart = [&](const std::string& site_chart) {
            if (site_chart.rfind(ch.display, 0) != 0) return false;
            if (site_chart.size() == ch.display.size()) return true;
            char c = site_chart[ch.display.size()];
            return c == '/' || c == ':';
        };
        for (const char* key : {"artifacthub.io/images", "helm.sh/images", "images"}) {
            auto it = ch.annotations.find(key);
            if (it == ch.annotations.end()) continue;
            std::vector<Value> docs;
            try {
                docs = chart::parse_yaml_documents(it->second, ch.display + "/Chart.yaml annotation " + key);
            } catch (const Error& e) {
                result_.warnings.push_back(e.what());
                continue;
            }
            // A digest names the image whatever tag is written beside it (repo:tag@d = repo@d).
            auto key_of = [](const ref::Reference& r) {
                return r.has_digest() ? r.name() + "@" + r.digest() : r.str();
            };
            std::set<std::string> named;
            for (const auto& doc : docs) {
                if (!doc.is_list()) continue;
                for (const auto& item : doc.items()) {
                    const Value* img = item.is_map() ? item.find("image") : nullptr;
                    if (!img || !img->is_scalar()) continue;
                    if (auto r = ref::Reference::try_parse(img->text())) named.insert(key_of(*r));
                }
            }
            std::set<std::string> found, anywhere;
            for (const auto& [k, img] : images_)
                for (const auto& s : img.sites) {
                    if (s.release != release || !in_chart(s.chart)) continue;
                    anywhere.insert(key_of(img.ref));
                    if (covered.count(s.chart) && s.cls != Class::test) found.insert(key_of(img.ref));
                }
            for (const auto& n : named)
                if (!anywhere.count(n))
                    result_.warnings.push_back(fmt::format("{}: annotation {} names {}, which discovery did not find "
                                                           "in the chart's templates",
                                                           ch.display, key, n));
            for (const auto& f : found)
                if (!named.count(f))
                    result_.warnings.push_back(
                        fmt::format("{}: discovery found {}, which annotation {} does not name", ch.display, f, key));
        }
    }

    const manifest::Image* match_manifest_image(const std::string& target) const {
        if (!manifest_) return nullptr;
        // target "<REGISTRY>/ai-appstore/aas-frontend:1.2.2": path and tag must match.
        std::string rest = target.substr(target.find('/') == std::string::npos ? 0 : target.find('/') + 1);
        auto parsed = ref::Reference::try_parse("placeholder.invalid/" + rest);
        if (!parsed) return nullptr;
        for (const auto& img : manifest_->images) {
            if (img.ref.repository() != parsed->repository()) continue;
            if (parsed->has_tag() && img.ref.has_tag() && img.ref.tag() != parsed->tag()) continue;
            if (parsed->has_digest() && img.ref.digest() != parsed->digest()) continue;
            return &img;
        }
        return nullptr;
    }

    void warn(std::string w) { result_.warnings.push_back(std::move(w)); }

    void error(const std::string& file, int line, const std::string& path, const std::string& message) {
        if (!errors_seen_.insert({file, line, path}).second) return;
        result_.errors.push_back(Problem{file, line, path, message});
    }

    void add(const ref::Reference& r, Class cls, const Site& site, const std::string& source) {
        if (manifest_ && manifest_->excluded(r)) return;
        auto [it, inserted] = images_.try_emplace(r.str());
        Image& img = it->second;
        if (inserted) {
            img.ref = r;
            img.cls = cls;
        } else if (static_cast<int>(cls) < static_cast<int>(img.cls)) {
            img.cls = cls;
        }
        if (!source.empty()) img.source = source;
        for (const auto& s : img.sites)
            if (s.file == site.file && s.line == site.line && s.values_path == site.values_path &&
                s.template_file == site.template_file && s.template_line == site.template_line)
                return;
        img.sites.push_back(site);
    }

    fs::path root_;
    std::string root_display_;
    const manifest::Manifest* manifest_;
    Result result_;
    std::map<std::string, Image> images_;
    std::set<std::tuple<std::string, int, std::string>> errors_seen_;
    std::set<std::string> flipped_; // template + switch already rendered flipped
    std::set<std::string> untagged_optional_;
    std::string kube_version_ =
        std::string(chart::tmpl::default_kube_version); // images added from untagged shadow references
};

} // namespace

Result discover(const manifest::Manifest& m, const fs::path& k8s_override, const std::string& kube_version) {
    fs::path root = k8s_override.empty() ? m.k8s : fs::absolute(k8s_override).lexically_normal();
    if (!m.releases.empty() || !m.plain_manifests.empty()) {
        std::error_code ec;
        if (root.empty() || !fs::is_directory(root, ec))
            throw UsageError(
                fmt::format("{}: the k8s folder {} does not exist (set \"k8s\" in the manifest or pass --k8s DIR)",
                            m.file.string(), root.string()));
    }
    Discoverer d(root, &m);
    d.kube_version(kube_version);
    for (const auto& r : m.releases) {
        std::error_code ec;
        if (!fs::exists(root / r.chart, ec))
            throw UsageError(fmt::format("{}:{}: release \"{}\": chart {} not found in {}", r.where.file, r.where.line,
                                         r.name, r.chart, root.string()));
        d.release(r.name, r.chart, r.namespace_, r.values);
    }
    for (const auto& p : m.plain_manifests) d.plain_manifest(p);
    for (const auto& img : m.images) d.extra_image(img);
    return d.finish();
}

Result discover_path(const fs::path& path, const std::string& kube_version) {
    fs::path abs = fs::absolute(path).lexically_normal();
    std::error_code ec;
    if (!fs::exists(abs, ec)) throw UsageError(fmt::format("{}: no such file or folder", path.string()));
    bool single = abs.extension() == ".tgz" || fs::exists(abs / "Chart.yaml", ec);
    if (single) {
        Discoverer d(abs.parent_path(), nullptr);
        d.kube_version(kube_version);
        d.release("", abs.filename().string(), "default", {});
        return d.finish();
    }
    Discoverer d(abs, nullptr);
    d.kube_version(kube_version);
    std::vector<std::string> charts, manifests;
    for (auto it = fs::recursive_directory_iterator(abs, fs::directory_options::skip_permission_denied, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (ec) break;
        const auto& p = it->path();
        std::string rel = p.lexically_relative(abs).generic_string();
        if (it->is_directory() && fs::exists(p / "Chart.yaml")) {
            charts.push_back(rel);
            it.disable_recursion_pending(); // its subcharts belong to it
            continue;
        }
        if (it->is_regular_file() && p.extension() == ".tgz")
            charts.push_back(rel);
        else if (it->is_regular_file() && is_yaml_name(p.filename().string()))
            manifests.push_back(rel);
    }
    std::sort(charts.begin(), charts.end());
    std::sort(manifests.begin(), manifests.end());
    for (const auto& c : charts) d.release("", c, "default", {});
    for (const auto& m : manifests) d.plain_manifest(m);
    return d.finish();
}

} // namespace aas::discovery
