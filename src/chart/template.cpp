// TemplateSet and the evaluator: executes parsed templates over the coalesced values, rendering the
// branches the values do not take as "alternatives" (shadow output), and tracking provenance.
//
// Every output segment records how many not-taken branches enclose the code that produced
// it (its "alt" depth; 0 is the path the values take). After rendering, on every output line
// the segments that have no line break and a deeper alt than the line's shallowest content
// are dropped: they are inline alternatives of a value (the `-chroot` suffix that is off, the
// `@digest` that is not set), which cannot be shown beside the value that is used. Blocks of
// whole lines from not-taken branches stay, as shadow pieces.

#include "template_impl.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <set>

namespace aas::chart::tmpl::detail {
namespace {

constexpr int max_depth = 256;                      // nested template/include/tpl calls (recursive merge helpers)
constexpr std::size_t max_output = 8u << 20;        // bytes of one rendered file
constexpr std::size_t max_total_output = 64u << 20; // bytes emitted, captures included
constexpr std::size_t max_string = 8u << 20;        // bytes of one string value
constexpr std::size_t max_iterations = 10000;       // per range
constexpr std::uint64_t max_steps =
    5'000'000; // commands evaluated per render (real charts: < 100,000; recursive merges more)
constexpr std::chrono::milliseconds max_time{3000}; // wall time of one render
constexpr std::size_t max_diagnostics = 200;

/// Stops a render (output or step budget exhausted); the diagnostic is already recorded.
struct Abort {};

enum class Flow { normal, brk, cont };

} // namespace
} // namespace aas::chart::tmpl::detail

namespace aas::chart::tmpl {

using namespace detail;

namespace {

/// The parsed files and defines of a TemplateSet.
struct SetData {
    struct FileEntry {
        std::string display;
        std::string name;
        std::shared_ptr<Tree> main;
        std::vector<std::string> errors;
    };
    std::vector<FileEntry> files;
    std::map<std::string, std::shared_ptr<Tree>> defines;
    std::vector<std::string> diagnostics;

    const FileEntry* file(const std::string& display) const {
        for (const auto& f : files)
            if (f.display == display) return &f;
        return nullptr;
    }

    /// A template by name: a define, or a file (helm names every file as a template; charts
    /// include files by `$.Template.BasePath`-relative names).
    std::shared_ptr<Tree> lookup(const std::string& name) const {
        if (auto it = defines.find(name); it != defines.end()) return it->second;
        if (name.empty()) return nullptr;
        for (const auto& f : files)
            if (f.main && f.display == name) return f.main;
        auto ends_with = [](const std::string& s, const std::string& suffix) {
            return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
        };
        for (const auto& f : files) {
            if (!f.main) continue;
            if (ends_with(f.display, "/" + name) || ends_with(f.display, ":" + name) ||
                ends_with(name, "/" + f.display))
                return f.main;
        }
        for (const auto& f : files)
            if (f.main && !f.name.empty() && ends_with(name, "/" + f.name)) return f.main;
        return nullptr;
    }
};

class Renderer final : public Exec {
public:
    Renderer(const SetData& set, const Context& ctx) : set_(set), ctx_(ctx) {}

    Rendered run(const SetData::FileEntry& f) {
        Rendered r;
        r.file = f.display;
        r.diagnostics = f.errors;
        if (!f.main) return r;
        cur_file_ = &f.display;
        Val root = make_root(f);
        std::vector<Seg> out;
        sink_ = &out;
        top_ = &out;
        vars_.push_back({"$", root});
        started_ = std::chrono::steady_clock::now();
        try {
            exec_list(f.main->nodes, root);
        } catch (const Abort&) {
            // Diagnostic already recorded; keep what was rendered.
        }
        r.incomplete = incomplete_;
        finish(out, r);
        for (auto& d : diags_) r.diagnostics.push_back(std::move(d));
        return r;
    }

    // ---- Exec interface ----------------------------------------------------------------------

    int alt() const override { return alt_; }
    bool live() const override { return alt_ == 0 && !ctx_.shadow; }

    void diag(const std::string& msg) override {
        std::string d = fmt::format("{}:{}: {}", cur_file_ ? *cur_file_ : std::string("?"), cur_line_, msg);
        if (diag_seen_.count(d) || diags_.size() >= max_diagnostics) return;
        diag_seen_.insert(d);
        diags_.push_back(std::move(d));
    }

    Val include(const std::string& name, const Val& data) override {
        auto tree = set_.lookup(name);
        if (!tree) {
            auto it = tpl_defines_.find(name);
            if (it != tpl_defines_.end()) tree = it->second;
        }
        if (!tree) throw EvalError(fmt::format("no template \"{}\" associated with template", name), true);
        if (too_deep(name))
            return make_unknown(fmt::format("template \"{}\" not evaluated: calls nested too deep", name));
        return capture([&] { call(*tree, data, {}); });
    }

    Val tpl(const Val& text, const Val& data) override {
        std::string src = primary(text);
        Srcs srcs = srcs_of(text);
        std::string why = why_of(text);
        if (!why.empty() && src.empty()) return make_unknown(why, srcs);
        auto it = tpl_cache_.find(src);
        if (it == tpl_cache_.end()) {
            ParseResult pr = parse(src, "tpl");
            if (pr.main) pr.main->file = cur_file_ ? *cur_file_ : std::string("?");
            for (auto& d : pr.defines) {
                d->file = pr.main ? pr.main->file : d->file;
                tpl_defines_[d->name] = d;
            }
            it = tpl_cache_.emplace(src, std::move(pr)).first;
        }
        const ParseResult& pr = it->second;
        if (!pr.main) {
            std::string msg = pr.errors.empty() ? std::string("tpl: parse error") : pr.errors.front();
            if (!srcs.empty() && !srcs.front()->values_path.empty())
                msg += fmt::format(" (template text from {})", srcs.front()->values_path);
            throw EvalError(msg);
        }
        if (too_deep("tpl")) return make_unknown("tpl not evaluated: calls nested too deep");
        return capture([&] { call(*pr.main, data, srcs); });
    }

    const Origin* own(Origin o) override {
        owned_.push_back(std::move(o));
        return &owned_.back();
    }

private:
    // ---- data ----------------------------------------------------------------------------------

    Val make_root(const SetData::FileEntry& f) {
        Val root = make_dict(0);
        auto& m = root.dict->m;
        const Coalesced* c = ctx_.chart;
        m["Values"] = c ? from_value(c->values, 0) : make_dict(0);

        Val rel = make_dict(0);
        rel.dict->m["Name"] = make_str(ctx_.release_name);
        rel.dict->m["Namespace"] = make_str(ctx_.release_namespace);
        rel.dict->m["Service"] = make_str("Helm");
        rel.dict->m["IsInstall"] = make_bool(true);
        rel.dict->m["IsUpgrade"] = make_bool(false);
        rel.dict->m["Revision"] = make_int(1);
        m["Release"] = rel;

        Val chart = make_dict(0);
        if (c && c->chart) {
            const Chart& ch = *c->chart;
            std::string yaml = ch.display.empty() ? std::string("Chart.yaml") : ch.display + "/Chart.yaml";
            const Origin* chart_yaml = own(Origin{yaml, 0, std::string()});
            auto chart_field = [&](const std::string& value) { return make_str(value, Srcs{chart_yaml}); };
            auto& cm = chart.dict->m;
            cm["Name"] = chart_field(ch.name);
            cm["Version"] = chart_field(ch.version);
            cm["AppVersion"] = chart_field(ch.app_version);
            cm["APIVersion"] = chart_field(ch.api_version);
            cm["ApiVersion"] = cm["APIVersion"];
            cm["Type"] = chart_field(ch.type.empty() ? std::string("application") : ch.type);
            Val ann = make_dict(0);
            for (const auto& [k, v] : ch.annotations) ann.dict->m[k] = make_str(v);
            cm["Annotations"] = ann;
        }
        m["Chart"] = chart;

        Val caps = make_dict(0);
        Val kube = make_dict(0);
        std::string kv = ctx_.kube_version;
        std::string bare = !kv.empty() && kv[0] == 'v' ? kv.substr(1) : kv;
        std::string major = bare.substr(0, bare.find('.'));
        std::string minor;
        if (auto dot = bare.find('.'); dot != std::string::npos) {
            minor = bare.substr(dot + 1);
            minor = minor.substr(0, minor.find('.'));
        }
        const Origin* kube_src = own(Origin{std::string(kube_version_origin), 0, std::string()});
        kube.dict->m["Version"] = make_str(kv, Srcs{kube_src});
        kube.dict->m["GitVersion"] = make_str(kv, Srcs{kube_src});
        kube.dict->m["Major"] = make_str(major, Srcs{kube_src});
        kube.dict->m["Minor"] = make_str(minor, Srcs{kube_src});
        caps.dict->m["KubeVersion"] = kube;
        caps.dict->m["APIVersions"] = make_object("APIVersions");
        Val helm = make_dict(0);
        helm.dict->m["Version"] = make_str("v3.14.0");
        helm.dict->m["GoVersion"] = make_str("go1.21");
        caps.dict->m["HelmVersion"] = helm;
        m["Capabilities"] = caps;

        Val tmpl = make_dict(0);
        tmpl.dict->m["Name"] = make_str(f.display);
        std::string base = f.display;
        if (auto p = base.rfind("templates/"); p != std::string::npos)
            base = base.substr(0, p + 9);
        else if (auto q = base.rfind('/'); q != std::string::npos)
            base = base.substr(0, q);
        tmpl.dict->m["BasePath"] = make_str(base);
        m["Template"] = tmpl;
        m["Files"] = make_object("Files");
        return root;
    }

    // ---- output ------------------------------------------------------------------------------

    void emit(Seg s, bool text_node) {
        if (text_node) add_srcs(s.srcs, text_srcs_);
        s.rel += alt_;
        s.line = top_line_;
        total_bytes_ += s.text.size();
        if (sink_ == top_) {
            top_bytes_ += s.text.size();
            if (top_bytes_ > max_output) {
                s.text.resize(s.text.size() - (top_bytes_ - max_output));
                append_seg(*sink_, std::move(s));
                stop(fmt::format("rendering stopped: more than {} MiB of output", max_output >> 20));
            }
        }
        append_seg(*sink_, std::move(s));
        if (total_bytes_ > max_total_output) {
            stop(fmt::format("rendering stopped: more than {} MiB of output", max_total_output >> 20));
        }
    }

    void print(const Val& v) {
        for (auto& s : print_segs(v)) emit(std::move(s), false);
    }

    template <typename F> Val capture(F&& body) {
        std::vector<Seg> buf;
        std::vector<Seg>* saved = sink_;
        sink_ = &buf;
        int base = alt_;
        try {
            body();
        } catch (...) {
            sink_ = saved;
            throw;
        }
        sink_ = saved;
        std::size_t size = 0;
        for (auto& s : buf) {
            s.rel = std::max(0, s.rel - base);
            s.line = 0;
            size += s.text.size();
        }
        if (size > max_string) throw EvalError(fmt::format("template output over {} MiB", max_string >> 20));
        return make_segs(std::move(buf));
    }

    /// Drops inline alternatives (see the file comment) and converts segments to pieces.
    void finish(std::vector<Seg>& segs, Rendered& r) {
        std::vector<int> line_min;
        auto note = [&](std::size_t ln, int alt) {
            if (line_min.size() <= ln) line_min.resize(ln + 1, -1);
            if (line_min[ln] < 0 || alt < line_min[ln]) line_min[ln] = alt;
        };
        std::size_t ln = 0;
        for (const auto& s : segs) {
            if (s.text.empty() && !s.why.empty()) note(ln, s.rel);
            for (char c : s.text) {
                if (c == '\n')
                    ++ln;
                else if (c != ' ' && c != '\t' && c != '\r')
                    note(ln, s.rel);
            }
        }
        ln = 0;
        std::size_t total = 0;
        for (auto& s : segs) {
            std::size_t nl = static_cast<std::size_t>(std::count(s.text.begin(), s.text.end(), '\n'));
            bool drop = false;
            if (nl == 0 && ln < line_min.size() && line_min[ln] >= 0 && s.rel > line_min[ln]) drop = true;
            if (s.text.empty() && s.why.empty()) drop = true;
            ln += nl;
            if (drop) continue;
            total += s.text.size();
            if (total > max_output) {
                r.diagnostics.push_back(fmt::format("{}: output truncated at {} MiB", r.file, max_output >> 20));
                break;
            }
            Piece p;
            p.text = std::move(s.text);
            p.live = s.rel == 0 && !ctx_.shadow;
            p.line = s.line;
            p.unevaluated = std::move(s.why);
            p.sources.reserve(s.srcs.size());
            for (const Origin* o : s.srcs) p.sources.push_back(*o);
            if (!r.pieces.empty()) {
                Piece& last = r.pieces.back();
                if (last.live == p.live && last.line == p.line && last.unevaluated.empty() && p.unevaluated.empty() &&
                    same_sources(last.sources, p.sources)) {
                    last.text += p.text;
                    continue;
                }
            }
            r.pieces.push_back(std::move(p));
        }
    }

    static bool same_sources(const std::vector<Origin>& a, const std::vector<Origin>& b) {
        if (a.size() != b.size()) return false;
        for (std::size_t i = 0; i < a.size(); ++i)
            if (a[i].file != b[i].file || a[i].line != b[i].line || a[i].values_path != b[i].values_path) return false;
        return true;
    }

    // ---- execution ---------------------------------------------------------------------------

    void step() {
        if (++steps_ > max_steps) {
            stop(fmt::format("rendering stopped: more than {} evaluation steps", max_steps));
        }
        if ((steps_ & 1023) == 0 && std::chrono::steady_clock::now() - started_ > max_time) {
            stop(fmt::format("rendering stopped: more than {} s", max_time.count() / 1000.0));
        }
    }

    Flow exec_list(const std::vector<Node>& nodes, const Val& dot) {
        for (const auto& n : nodes) {
            Flow f = exec(n, dot);
            if (f != Flow::normal) return f;
        }
        return Flow::normal;
    }

    /// Runs a not-taken branch: one level deeper, and without changing variables outside it.
    void alternative(const std::vector<Node>& nodes, const Val& dot) {
        if (nodes.empty()) return;
        auto saved = vars_;
        ++alt_;
        try {
            exec_list(nodes, dot);
        } catch (...) {
            --alt_;
            vars_ = std::move(saved);
            throw;
        }
        --alt_;
        vars_ = std::move(saved);
    }

    Flow exec(const Node& n, const Val& dot) {
        step();
        if (depth_ == 0) top_line_ = n.line;
        cur_line_ = n.line;
        switch (n.kind) {
        case Node::Kind::text: {
            if (depth_ > 0) {
                emit(Seg{n.text, {}, "", 0, 0}, true);
                return Flow::normal;
            }
            // One piece per template line, so that every line of output knows its line.
            std::size_t start = 0;
            int line = n.line;
            while (start < n.text.size()) {
                std::size_t nl = n.text.find('\n', start);
                std::size_t end = nl == std::string::npos ? n.text.size() : nl + 1;
                top_line_ = line;
                emit(Seg{n.text.substr(start, end - start), {}, "", 0, 0}, true);
                start = end;
                ++line;
            }
            return Flow::normal;
        }
        case Node::Kind::action: {
            Val v = eval_top(*n.pipe, dot);
            if (!n.pipe->decl && !n.pipe->assign) print(v);
            return Flow::normal;
        }
        case Node::Kind::if_:
        case Node::Kind::with:
            return exec_if(n, dot);
        case Node::Kind::range:
            return exec_range(n, dot);
        case Node::Kind::call: {
            Val data = n.pipe ? eval_top(*n.pipe, dot) : make_nil();
            cur_line_ = n.line;
            try {
                auto tree = set_.lookup(n.text);
                if (!tree) {
                    auto it = tpl_defines_.find(n.text);
                    if (it != tpl_defines_.end()) tree = it->second;
                }
                if (!tree) throw EvalError(fmt::format("no template \"{}\" associated with template", n.text), true);
                if (too_deep(n.text))
                    print(make_unknown(fmt::format("template \"{}\" not evaluated: calls nested too deep", n.text)));
                else
                    call(*tree, data, {});
            } catch (const EvalError& e) {
                if (e.always || live()) diag(e.what());
                print(make_unknown(e.what()));
            }
            return Flow::normal;
        }
        case Node::Kind::break_:
            return Flow::brk;
        case Node::Kind::continue_:
            return Flow::cont;
        }
        return Flow::normal;
    }

    /// Whether a condition's value cannot be decided.
    static bool undecided(const Val& v) {
        if (v.is_unknown()) return true;
        return v.is_str() && !truth(v) && !why_of(v).empty();
    }

    Flow exec_if(const Node& n, const Val& dot) {
        std::size_t mark = vars_.size();
        Val c = eval_top(*n.pipe, dot);
        bool with = n.kind == Node::Kind::with;
        Flow f = Flow::normal;
        if (undecided(c)) {
            alternative(n.body, with ? c : dot);
            alternative(n.alt, dot);
        } else if (truth(c)) {
            f = exec_list(n.body, with ? c : dot);
            if (f == Flow::normal) alternative(n.alt, dot);
        } else {
            alternative(n.body, with ? c : dot);
            f = exec_list(n.alt, dot);
        }
        vars_.resize(mark);
        return f;
    }

    Flow exec_range(const Node& n, const Val& dot) {
        std::size_t mark = vars_.size();
        const Pipe& p = *n.pipe;
        Val coll = eval_top(p, dot, /*declare=*/false);
        for (const auto& v : p.vars) vars_.push_back({v, coll});
        auto set_vars = [&](const Val& key, const Val& elem) {
            if (p.vars.size() == 1) {
                vars_[mark].second = elem;
            } else if (p.vars.size() == 2) {
                vars_[mark].second = key;
                vars_[mark + 1].second = elem;
            }
        };
        std::vector<std::pair<Val, Val>> elems;
        bool unknown = false;
        switch (coll.k) {
        case Val::K::list:
            for (std::size_t i = 0; i < coll.list->items.size(); ++i)
                elems.push_back({make_int(static_cast<std::int64_t>(i)), coll.list->items[i]});
            break;
        case Val::K::dict:
            for (const auto& [k, v] : coll.dict->m) elems.push_back({make_str(k), v});
            break;
        case Val::K::integer:
            for (std::int64_t i = 0; i < coll.i && static_cast<std::size_t>(i) <= max_iterations; ++i)
                elems.push_back({make_int(i), make_int(i)});
            break;
        case Val::K::nil:
            break;
        case Val::K::unknown:
            unknown = true;
            break;
        default:
            if (live()) diag(fmt::format("range can't iterate over {}", format_v(coll)));
            break;
        }
        Flow result = Flow::normal;
        if (elems.empty()) {
            // Nothing to iterate: the body is still rendered once, as an alternative, with the
            // element unknown, so that what it would produce (an image) is seen.
            std::string why = unknown && !coll.why.empty()
                                  ? coll.why
                                  : fmt::format("inside {{{{{}}}}} over an empty collection", p.src);
            Val elem = make_unknown(why, srcs_of(coll));
            set_vars(elem, elem);
            alternative(n.body, elem);
            if (!unknown)
                result = exec_list(n.alt, dot);
            else
                alternative(n.alt, dot);
        } else {
            std::size_t count = 0;
            for (const auto& [k, v] : elems) {
                if (++count > max_iterations) {
                    diag(fmt::format("range stopped after {} iterations", max_iterations));
                    break;
                }
                set_vars(k, v);
                std::size_t inner = vars_.size();
                Flow f = exec_list(n.body, v);
                vars_.resize(inner);
                if (f == Flow::brk) break;
            }
            alternative(n.alt, dot);
        }
        vars_.resize(mark);
        return result;
    }

    /// Stops the render: what was rendered so far is kept, and marked incomplete.
    [[noreturn]] void stop(const std::string& why) {
        diag(why);
        if (incomplete_.empty()) incomplete_ = why;
        throw Abort{};
    }

    /// Whether a template call would nest too deep (reported once per render).
    bool too_deep(const std::string& name) {
        if (depth_ < max_depth) return false;
        if (!depth_reported_) {
            depth_reported_ = true;
            std::string why = fmt::format("template \"{}\": calls nested more than {} levels deep", name, max_depth);
            diag(why);
            if (incomplete_.empty()) incomplete_ = why;
        }
        return true;
    }

    /// Executes a template body with `data` as `.` and `$` (the caller checked too_deep).
    /// A template that calls itself inside a branch the values do not take is not entered
    /// again: its shadow side would render both sides of every level (exponential), with
    /// data the values never give it (a recursive merge helper ranging over a string).
    void call(const Tree& t, const Val& data, const Srcs& text_srcs) {
        if (alt_ > 0 && std::find(calls_.begin(), calls_.end(), &t) != calls_.end()) return;
        calls_.push_back(&t);
        struct Pop {
            std::vector<const Tree*>& v;
            ~Pop() { v.pop_back(); }
        } pop{calls_};
        std::size_t base = var_base_;
        const std::string* file = cur_file_;
        int line = cur_line_;
        Srcs saved_srcs = std::move(text_srcs_);
        var_base_ = vars_.size();
        vars_.push_back({"$", data});
        cur_file_ = &t.file;
        text_srcs_ = text_srcs;
        ++depth_;
        auto restore = [&] {
            --depth_;
            vars_.resize(var_base_);
            var_base_ = base;
            cur_file_ = file;
            cur_line_ = line;
            text_srcs_ = std::move(saved_srcs);
        };
        try {
            exec_list(t.nodes, data);
        } catch (...) {
            restore();
            throw;
        }
        restore();
    }

    // ---- pipelines ---------------------------------------------------------------------------

    /// Evaluates an action's pipeline; errors become a diagnostic and an unknown value.
    Val eval_top(const Pipe& p, const Val& dot, bool declare = true) {
        cur_line_ = p.line;
        Val v;
        try {
            v = eval_cmds(p, dot);
        } catch (const EvalError& e) {
            cur_line_ = p.line;
            if (e.always || live()) diag(e.what());
            v = make_unknown(e.what());
        }
        if (declare && p.decl && !p.vars.empty()) {
            vars_.push_back({p.vars[0], v});
        } else if (declare && p.assign && !p.vars.empty()) {
            assign(p.vars[0], v);
        }
        return v;
    }

    void assign(const std::string& name, const Val& v) {
        for (std::size_t i = vars_.size(); i > var_base_; --i) {
            if (vars_[i - 1].first == name) {
                vars_[i - 1].second = v;
                return;
            }
        }
        diag(fmt::format("undefined variable: {}", name));
    }

    Val eval_cmds(const Pipe& p, const Val& dot) {
        Val v;
        bool has = false;
        for (const auto& c : p.cmds) {
            v = eval_cmd(c, dot, has ? &v : nullptr);
            has = true;
        }
        return v;
    }

    Val eval_cmd(const Cmd& c, const Val& dot, const Val* final) {
        step();
        const Arg& first = c.args.front();
        if (first.kind == Arg::Kind::ident && first.fields.empty()) return call_function(first.text, c, dot, final);
        Val v = eval_arg(first, dot);
        bool has_args = c.args.size() > 1 || final;
        if (v.k == Val::K::method) {
            std::vector<Val> args;
            for (std::size_t i = 1; i < c.args.size(); ++i) args.push_back(eval_arg(c.args[i], dot));
            if (final) args.push_back(*final);
            return call_method(v, args);
        }
        if (has_args) {
            if (v.is_unknown()) return v;
            throw EvalError(fmt::format("can't give argument to non-function {}", describe(first)));
        }
        return v;
    }

    static std::string describe(const Arg& a) {
        std::string s;
        switch (a.kind) {
        case Arg::Kind::dot:
            s = a.fields.empty() ? "." : "";
            break;
        case Arg::Kind::variable:
        case Arg::Kind::ident:
            s = a.text;
            break;
        case Arg::Kind::string:
            s = go_quote(a.text);
            break;
        case Arg::Kind::integer:
            s = std::to_string(a.i);
            break;
        case Arg::Kind::floating:
            s = go_float(a.f);
            break;
        case Arg::Kind::boolean:
            s = a.b ? "true" : "false";
            break;
        case Arg::Kind::nil:
            s = "nil";
            break;
        case Arg::Kind::pipe:
            s = "(...)";
            break;
        }
        for (const auto& f : a.fields) s += "." + f;
        return s;
    }

    Val eval_arg(const Arg& a, const Val& dot) {
        Val v;
        switch (a.kind) {
        case Arg::Kind::dot:
            v = dot;
            break;
        case Arg::Kind::nil:
            v = make_nil();
            break;
        case Arg::Kind::boolean:
            v = make_bool(a.b);
            break;
        case Arg::Kind::integer:
            v = make_int(a.i);
            break;
        case Arg::Kind::floating:
            v = make_float(a.f);
            break;
        case Arg::Kind::string:
            v = make_str(a.text);
            break;
        case Arg::Kind::variable:
            v = variable(a.text);
            break;
        case Arg::Kind::ident: {
            Cmd c;
            c.args.push_back(a);
            c.args.back().fields.clear();
            v = call_function(a.text, c, dot, nullptr);
            break;
        }
        case Arg::Kind::pipe:
            v = eval_cmds(*a.pipe, dot);
            break;
        }
        for (const auto& f : a.fields) v = field(v, f);
        return v;
    }

    Val variable(const std::string& name) {
        if (name == "$") return vars_[var_base_].second;
        for (std::size_t i = vars_.size(); i > var_base_; --i)
            if (vars_[i - 1].first == name) return vars_[i - 1].second;
        throw EvalError(fmt::format("undefined variable \"{}\"", name));
    }

    Val field(const Val& v, const std::string& name) {
        switch (v.k) {
        case Val::K::dict: {
            auto it = v.dict->m.find(name);
            if (it == v.dict->m.end()) {
                if (v.dict->files && (name == "AsConfig" || name == "AsSecrets"))
                    return files_as(v, name == "AsSecrets");
                return make_nil();
            }
            return it->second;
        }
        case Val::K::nil:
            return make_nil();
        case Val::K::unknown:
            return v;
        case Val::K::object: {
            Val m;
            m.k = Val::K::method;
            m.name = v.name + "." + name;
            return m;
        }
        default:
            throw EvalError(fmt::format("can't evaluate field {} in type {}", name, type_name(v)));
        }
    }

    Val call_method(const Val& m, std::vector<Val>& args) {
        if (m.name == "APIVersions.Has") return make_bool(true);
        if (m.name.rfind("Files.", 0) == 0) return files_method(m.name.substr(6), args);
        return make_unknown(fmt::format(".{} is not evaluated", m.name));
    }

    // ---- .Files ----------------------------------------------------------------------------

    const std::vector<File>* chart_files() const {
        return ctx_.chart && ctx_.chart->chart ? &ctx_.chart->chart->files : nullptr;
    }

    /// The text of a chart file with its origin (the file, no values path).
    Val file_text(const File& f) {
        const Origin* o = own(Origin{f.display, 1, std::string(), true, std::string()});
        return make_str(f.text, Srcs{o});
    }

    /// helm's Files: Get, GetBytes, Lines, Glob (a map of name -> content; AsConfig and
    /// AsSecrets on it are fields, see field()), AsConfig, AsSecrets of all files.
    Val files_method(const std::string& name, std::vector<Val>& args) {
        const auto* files = chart_files();
        static const std::vector<File> none;
        if (!files) files = &none;
        auto arg = [&](std::size_t i) { return i < args.size() ? str_arg(args[i]) : std::string(); };
        if (name == "Get" || name == "GetBytes" || name == "Lines") {
            std::string path = arg(0);
            for (const auto& f : *files) {
                if (f.name != path) continue;
                if (name != "Lines") return file_text(f);
                Val l = make_list(alt_);
                const Origin* o = own(Origin{f.display, 1, std::string(), true, std::string()});
                std::size_t b = 0;
                while (b <= f.text.size()) {
                    std::size_t e = f.text.find('\n', b);
                    if (e == std::string::npos) {
                        if (b < f.text.size()) l.list->items.push_back(make_str(f.text.substr(b), Srcs{o}));
                        break;
                    }
                    l.list->items.push_back(make_str(f.text.substr(b, e - b), Srcs{o}));
                    b = e + 1;
                }
                return l;
            }
            return name == "Lines" ? make_list(alt_) : make_str("");
        }
        if (name == "Glob") {
            Val d = make_dict(alt_);
            d.dict->files = true;
            for (const auto& f : *files)
                if (glob_match(arg(0), f.name)) d.dict->m[f.name] = file_text(f);
            return d;
        }
        if (name == "AsConfig" || name == "AsSecrets") {
            Val d = make_dict(alt_);
            d.dict->files = true;
            for (const auto& f : *files) d.dict->m[f.name] = file_text(f);
            return files_as(d, name == "AsSecrets");
        }
        return make_unknown(fmt::format(".Files.{} is not evaluated", name));
    }

    /// AsConfig / AsSecrets of a Glob result: YAML of base name -> content (base64 for secrets).
    Val files_as(const Val& d, bool secret) {
        Val m = make_dict(alt_);
        for (const auto& [k, v] : d.dict->m) {
            std::string base = k.substr(k.rfind('/') == std::string::npos ? 0 : k.rfind('/') + 1);
            if (secret) {
                std::vector<Val> a{v};
                std::string not_evaluated;
                const FnInfo* b64 = find_function("b64enc", &not_evaluated);
                m.dict->m[base] = b64 ? b64->fn(*this, a) : v;
            } else {
                m.dict->m[base] = v;
            }
        }
        return make_segs(to_yaml(m));
    }

    /// gobwas/glob with '/' as separator, as helm's Files.Glob: `*` and `?` stop at '/',
    /// `**` crosses it, `[...]` classes, `{a,b}` alternatives.
    static bool glob_match(std::string_view pat, std::string_view s) {
        std::size_t calls = 0;
        return glob_rec(pat, s, calls);
    }

    /// glob_match's backtracking, at most 100,000 steps (a pattern of many `*` over a long
    /// name would otherwise take exponential time): past that, no match.
    static bool glob_rec(std::string_view pat, std::string_view s, std::size_t& calls) {
        if (++calls > 100000) return false;
        if (auto open = pat.find('{'); open != std::string_view::npos) {
            auto close = pat.find('}', open);
            if (close != std::string_view::npos) {
                std::string_view alts = pat.substr(open + 1, close - open - 1);
                std::size_t b = 0;
                while (b <= alts.size()) {
                    std::size_t e = alts.find(',', b);
                    if (e == std::string_view::npos) e = alts.size();
                    std::string p = std::string(pat.substr(0, open)) + std::string(alts.substr(b, e - b)) +
                                    std::string(pat.substr(close + 1));
                    if (glob_rec(p, s, calls)) return true;
                    b = e + 1;
                }
                return false;
            }
        }
        if (pat.empty()) return s.empty();
        if (pat.substr(0, 2) == "**") {
            for (std::size_t i = 0; i <= s.size(); ++i)
                if (glob_rec(pat.substr(2), s.substr(i), calls)) return true;
            return false;
        }
        if (pat[0] == '*') {
            for (std::size_t i = 0; i <= s.size(); ++i) {
                if (glob_rec(pat.substr(1), s.substr(i), calls)) return true;
                if (i < s.size() && s[i] == '/') break;
            }
            return false;
        }
        if (s.empty()) return false;
        if (pat[0] == '?') return s[0] != '/' && glob_rec(pat.substr(1), s.substr(1), calls);
        if (pat[0] == '[') {
            auto close = pat.find(']', 1);
            if (close != std::string_view::npos) {
                std::string_view cls = pat.substr(1, close - 1);
                bool neg = !cls.empty() && (cls[0] == '!' || cls[0] == '^');
                if (neg) cls.remove_prefix(1);
                bool in = false;
                for (std::size_t i = 0; i < cls.size(); ++i) {
                    if (i + 2 < cls.size() && cls[i + 1] == '-') {
                        in = in || (s[0] >= cls[i] && s[0] <= cls[i + 2]);
                        i += 2;
                    } else {
                        in = in || s[0] == cls[i];
                    }
                }
                return in != neg && s[0] != '/' && glob_rec(pat.substr(close + 1), s.substr(1), calls);
            }
        }
        if (pat[0] == '\\' && pat.size() > 1) return s[0] == pat[1] && glob_rec(pat.substr(2), s.substr(1), calls);
        return s[0] == pat[0] && glob_rec(pat.substr(1), s.substr(1), calls);
    }

    Val call_function(const std::string& name, const Cmd& c, const Val& dot, const Val* final) {
        if (name == "and" || name == "or") return and_or(name == "and", c, dot, final);
        std::string not_evaluated;
        const FnInfo* info = find_function(name, &not_evaluated);
        std::vector<Val> args;
        args.reserve(c.args.size());
        if (!info) {
            Srcs srcs;
            try {
                for (std::size_t i = 1; i < c.args.size(); ++i) add_srcs(srcs, srcs_of(eval_arg(c.args[i], dot)));
            } catch (const EvalError&) {
                // The arguments only contribute origins here.
            }
            if (final) add_srcs(srcs, srcs_of(*final));
            if (!not_evaluated.empty()) return make_unknown(not_evaluated, srcs);
            diag(fmt::format("function \"{}\" is not supported; its result is not evaluated", name));
            return make_unknown(fmt::format("function \"{}\" is not evaluated", name), srcs);
        }
        for (std::size_t i = 1; i < c.args.size(); ++i) args.push_back(eval_arg(c.args[i], dot));
        if (final) args.push_back(*final);
        int n = static_cast<int>(args.size());
        if (n < info->min_args || (info->max_args >= 0 && n > info->max_args)) {
            std::string want = info->max_args == info->min_args ? std::to_string(info->min_args)
                               : info->max_args < 0             ? fmt::format("at least {}", info->min_args)
                                                    : fmt::format("{} to {}", info->min_args, info->max_args);
            throw EvalError(fmt::format("wrong number of args for {}: want {} got {}", name, want, n));
        }
        if (!info->takes_unknown) {
            for (const auto& a : args) {
                if (a.is_unknown()) {
                    Srcs srcs;
                    for (const auto& b : args) add_srcs(srcs, srcs_of(b));
                    return make_unknown(a.why, srcs);
                }
            }
        }
        Val r;
        try {
            r = info->fn(*this, args);
        } catch (const EvalError& e) {
            std::string msg = e.what();
            if (e.always || msg.rfind("error calling", 0) == 0) throw;
            throw EvalError(fmt::format("error calling {}: {}", name, msg));
        }
        if (r.is_str()) {
            std::size_t size = 0;
            for (const auto& s : r.segs) size += s.text.size();
            if (size > max_string)
                throw EvalError(fmt::format("error calling {}: result over {} MiB", name, max_string >> 20));
        }
        return r;
    }

    /// Go's short-circuit and/or: the first falsy (and) or truthy (or) argument, else the last.
    Val and_or(bool is_and, const Cmd& c, const Val& dot, const Val* final) {
        std::size_t n = c.args.size() - 1 + (final ? 1 : 0);
        if (n < 1)
            throw EvalError(fmt::format("wrong number of args for {}: want at least 1 got 0", is_and ? "and" : "or"));
        bool unknown = false;
        Srcs srcs;
        Val last;
        for (std::size_t i = 0; i < n; ++i) {
            last = i + 1 < c.args.size() ? eval_arg(c.args[i + 1], dot) : *final;
            add_srcs(srcs, srcs_of(last));
            if (undecided(last)) {
                unknown = true;
                continue;
            }
            if (truth(last) != is_and) return last;
        }
        if (unknown) return make_unknown("condition not evaluated", srcs);
        return last;
    }

    const SetData& set_;
    const Context& ctx_;
    std::vector<std::string> diags_;
    std::set<std::string> diag_seen_;
    std::deque<Origin> owned_;
    std::vector<std::pair<std::string, Val>> vars_;
    std::size_t var_base_ = 0;
    std::vector<Seg>* sink_ = nullptr;
    std::vector<Seg>* top_ = nullptr;
    std::size_t total_bytes_ = 0;
    std::size_t top_bytes_ = 0;
    bool depth_reported_ = false;
    std::vector<const Tree*> calls_; // templates being executed, outermost first
    std::string incomplete_;
    std::chrono::steady_clock::time_point started_;
    int alt_ = 0;
    int depth_ = 0;
    int top_line_ = 0;
    int cur_line_ = 0;
    const std::string* cur_file_ = nullptr;
    Srcs text_srcs_;
    std::uint64_t steps_ = 0;
    std::map<std::string, ParseResult> tpl_cache_;
    std::map<std::string, std::shared_ptr<Tree>> tpl_defines_;
};

} // namespace

struct TemplateSet::Impl : SetData {};

namespace {

/// Whether helm parses the file shown as `a` after the one shown as `b` (see add()).
bool parsed_after(const std::string& a, const std::string& b) {
    auto depth = [](const std::string& s) {
        return std::count_if(s.begin(), s.end(), [](char c) { return c == '/' || c == ':'; });
    };
    auto da = depth(a), db = depth(b);
    if (da != db) return da < db;
    return a < b;
}

} // namespace

std::string Rendered::text() const {
    std::string out;
    for (const auto& p : pieces) out += p.text;
    return out;
}

TemplateSet::TemplateSet() : impl_(std::make_unique<Impl>()) {}
TemplateSet::~TemplateSet() = default;
TemplateSet::TemplateSet(TemplateSet&&) noexcept = default;
TemplateSet& TemplateSet::operator=(TemplateSet&&) noexcept = default;

void TemplateSet::add(const File& file) {
    ParseResult pr = parse(file.text, file.display);
    SetData::FileEntry e;
    e.display = file.display;
    e.name = file.name;
    e.errors = pr.errors;
    for (const auto& err : pr.errors) impl_->diagnostics.push_back(err);
    if (pr.main) {
        e.main = pr.main;
        // Which definition of a name wins does not depend on the order of add(): helm parses
        // the deepest files first (subcharts before their parent), files of one depth in
        // reverse name order, and a later definition replaces an earlier one unless it is
        // empty (Go's rule). So the parent's definition wins over a subchart's.
        for (auto& d : pr.defines) {
            auto it = impl_->defines.find(d->name);
            if (it != impl_->defines.end()) {
                const Tree& old = *it->second;
                bool later = d->file == old.file || parsed_after(d->file, old.file);
                if (d->empty() != old.empty() ? d->empty() : !later) continue;
            }
            impl_->defines[d->name] = d;
        }
    }
    // Re-adding a file replaces it.
    for (auto& f : impl_->files) {
        if (f.display == e.display) {
            f = std::move(e);
            return;
        }
    }
    impl_->files.push_back(std::move(e));
}

Rendered TemplateSet::render(const std::string& display, const Context& ctx) const {
    const SetData::FileEntry* f = impl_->file(display);
    if (!f) {
        Rendered r;
        r.file = display;
        r.diagnostics.push_back(fmt::format("{}: no such template file in the set", display));
        return r;
    }
    Renderer renderer(*impl_, ctx);
    return renderer.run(*f);
}

const std::vector<std::string>& TemplateSet::diagnostics() const {
    return impl_->diagnostics;
}

} // namespace aas::chart::tmpl
