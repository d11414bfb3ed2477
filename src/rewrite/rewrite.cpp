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

namespace {

constexpr std::string_view k8s_prefix = "k8s/";

// ---------------------------------------------------------------------------------------------
// Lines and scalars

struct LineRef {
    std::size_t begin = 0; ///< offset of the first character
    std::size_t end = 0;   ///< offset after the last character, before "\r\n" or "\n"
};

std::vector<LineRef> split_lines(std::string_view text) {
    std::vector<LineRef> out;
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto nl = text.find('\n', pos);
        std::size_t stop = nl == std::string_view::npos ? text.size() : nl;
        std::size_t end = stop;
        if (end > pos && text[end - 1] == '\r') --end;
        out.push_back({pos, end});
        pos = nl == std::string_view::npos ? text.size() : nl + 1;
    }
    return out;
}

std::string eol_of(std::string_view text) {
    return text.find("\r\n") != std::string_view::npos ? "\r\n" : "\n";
}

enum class Style { plain, single, dbl };

struct Scalar {
    std::size_t begin = 0; ///< column of the first character (quote included)
    std::size_t end = 0;   ///< column after the last character (quote included)
    Style style = Style::plain;
    std::string text;      ///< the value, unquoted
};

std::size_t skip_spaces(std::string_view s, std::size_t i) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    return i;
}

// Reads a scalar starting at `i`; nullopt for what is not a one-line scalar (block scalars,
// anchors, tags, flow collections, an unterminated quote) or when more than a comment follows.
std::optional<Scalar> read_scalar(std::string_view line, std::size_t i) {
    if (i >= line.size()) return std::nullopt;
    Scalar s;
    s.begin = i;
    char c = line[i];
    if (c == '"') {
        std::size_t j = i + 1;
        for (; j < line.size() && line[j] != '"'; ++j) {
            if (line[j] == '\\') {
                if (++j >= line.size()) return std::nullopt;
                switch (line[j]) {
                case 'n': s.text += '\n'; break;
                case 't': s.text += '\t'; break;
                case '\\': s.text += '\\'; break;
                case '"': s.text += '"'; break;
                case '/': s.text += '/'; break;
                default: return std::nullopt; // not something an image value holds
                }
            } else {
                s.text += line[j];
            }
        }
        if (j >= line.size()) return std::nullopt;
        s.end = j + 1;
        s.style = Style::dbl;
    } else if (c == '\'') {
        std::size_t j = i + 1;
        for (;; ++j) {
            if (j >= line.size()) return std::nullopt;
            if (line[j] == '\'') {
                if (j + 1 < line.size() && line[j + 1] == '\'') {
                    s.text += '\'';
                    ++j;
                    continue;
                }
                break;
            }
            s.text += line[j];
        }
        s.end = j + 1;
        s.style = Style::single;
    } else {
        if (std::string_view("|>&*!{[#%@`,").find(c) != std::string_view::npos) return std::nullopt;
        std::size_t j = i;
        std::size_t last = i;
        while (j < line.size()) {
            if (line[j] == '#' && j > i && (line[j - 1] == ' ' || line[j - 1] == '\t')) break;
            if (line[j] != ' ' && line[j] != '\t') last = j + 1;
            ++j;
        }
        s.end = last;
        s.text = std::string(line.substr(i, last - i));
        s.style = Style::plain;
    }
    std::size_t rest = skip_spaces(line, s.end);
    if (rest < line.size() && !(line[rest] == '#' && rest > s.end)) return std::nullopt;
    return s;
}

struct KeyLine {
    std::size_t indent = 0;   ///< column of the key
    bool list_item = false;   ///< the key follows "- "
    std::string key;
    std::size_t value_at = 0; ///< column where the value (or a comment, or nothing) starts
};

// "KEY: ...", "- KEY: ...", "'KEY': ...", '"KEY": ...' at the start of a line.
std::optional<KeyLine> read_key(std::string_view line) {
    KeyLine k;
    std::size_t i = skip_spaces(line, 0);
    while (i + 1 <= line.size() && i < line.size() && line[i] == '-' &&
           (i + 1 == line.size() || line[i + 1] == ' ' || line[i + 1] == '\t')) {
        k.list_item = true;
        i = skip_spaces(line, i + 1);
    }
    if (i >= line.size() || line[i] == '#') return std::nullopt;
    k.indent = i;
    std::size_t after = 0;
    if (line[i] == '"' || line[i] == '\'') {
        auto close = line.find(line[i], i + 1);
        if (close == std::string_view::npos) return std::nullopt;
        k.key = std::string(line.substr(i + 1, close - i - 1));
        after = close + 1;
    } else {
        std::size_t j = i;
        while (j < line.size()) {
            if (line[j] == ':' && (j + 1 == line.size() || line[j + 1] == ' ' || line[j + 1] == '\t')) break;
            if (line[j] == '#' && j > i && (line[j - 1] == ' ' || line[j - 1] == '\t')) return std::nullopt;
            ++j;
        }
        if (j >= line.size()) return std::nullopt;
        k.key = std::string(util::trim(line.substr(i, j - i)));
        after = j;
        if (k.key.empty() || std::string_view("{[&*!|>%@`").find(k.key[0]) != std::string_view::npos)
            return std::nullopt;
    }
    after = skip_spaces(line, after);
    if (after >= line.size() || line[after] != ':') return std::nullopt;
    if (after + 1 < line.size() && line[after + 1] != ' ' && line[after + 1] != '\t') return std::nullopt;
    k.value_at = skip_spaces(line, after + 1);
    return k;
}

bool plain_safe(std::string_view v) {
    if (v.empty() || v.front() == ' ' || v.back() == ' ') return false;
    if (std::string_view("-?:,[]{}#&*!|>'\"%@`").find(v.front()) != std::string_view::npos) return false;
    if (v.find(": ") != std::string_view::npos || v.find(" #") != std::string_view::npos || v.back() == ':')
        return false;
    for (char c : v)
        if (static_cast<unsigned char>(c) < 0x20) return false;
    static const std::set<std::string> special = {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"};
    if (special.count(util::to_lower(v))) return false;
    bool numeric = std::all_of(v.begin(), v.end(), [](char c) {
        return (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E' || c == '_';
    });
    return !numeric;
}

std::string quote(std::string_view v, Style style) {
    if (style == Style::plain && plain_safe(v)) return std::string(v);
    if (style == Style::single) {
        std::string out = "'";
        for (char c : v) out += c == '\'' ? std::string("''") : std::string(1, c);
        return out + "'";
    }
    std::string out = "\"";
    for (char c : v) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

// ---------------------------------------------------------------------------------------------
// Block structure of a values file, for insertions

struct Row {
    enum Kind { blank, comment, content, scalar_body, other_document } kind = blank;
    std::size_t indent = 0;
    std::optional<KeyLine> key;
};

std::vector<Row> classify(std::string_view text, const std::vector<LineRef>& lines) {
    std::vector<Row> rows(lines.size());
    bool seen_content = false;
    bool in_block_scalar = false;
    std::size_t block_indent = 0;
    for (std::size_t n = 0; n < lines.size(); ++n) {
        std::string_view l = text.substr(lines[n].begin, lines[n].end - lines[n].begin);
        Row& r = rows[n];
        std::size_t ind = skip_spaces(l, 0);
        bool blank = ind >= l.size();
        if (in_block_scalar) {
            if (blank || ind > block_indent) {
                r.kind = Row::scalar_body;
                r.indent = ind;
                continue;
            }
            in_block_scalar = false;
        }
        if (l.rfind("---", 0) == 0 && (l.size() == 3 || l[3] == ' ' || l[3] == '\t')) {
            if (seen_content) {
                for (std::size_t m = n; m < rows.size(); ++m) rows[m].kind = Row::other_document;
                break;
            }
            r.kind = Row::comment; // a leading document marker
            continue;
        }
        if (blank) continue;
        r.indent = ind;
        if (l[ind] == '#') {
            r.kind = Row::comment;
            continue;
        }
        seen_content = true;
        r.kind = Row::content;
        r.key = read_key(l);
        std::string_view value = r.key ? l.substr(r.key->value_at) : l.substr(ind);
        if (!r.key) {
            // "- |" list items of block scalars
            std::size_t i = ind;
            while (i < l.size() && l[i] == '-' && (i + 1 == l.size() || l[i + 1] == ' ')) i = skip_spaces(l, i + 1);
            value = l.substr(std::min(i, l.size()));
        }
        if (!value.empty() && (value[0] == '|' || value[0] == '>')) {
            in_block_scalar = true;
            block_indent = ind;
        }
    }
    return rows;
}

struct Insertion {
    std::size_t offset = 0; ///< where the text goes
    std::string text;
};

// Where and what to insert so that `path` (dotted, no list indices) holds `value` in
// `text`; nullopt with `why` when the file's structure is not a block map along the way.
std::optional<Insertion> plan_insertion(std::string_view text, const std::vector<std::string>& path,
                                        const std::string& value, std::string& why) {
    auto lines = split_lines(text);
    auto rows = classify(text, lines);
    std::string eol = eol_of(text);
    std::size_t limit = rows.size();
    for (std::size_t n = 0; n < rows.size(); ++n)
        if (rows[n].kind == Row::other_document) {
            limit = n;
            break;
        }
    // Indentation step: the smallest positive indent of a key under another key.
    std::size_t step = 0;
    {
        std::vector<std::size_t> stack;
        for (std::size_t n = 0; n < limit; ++n) {
            if (rows[n].kind != Row::content || !rows[n].key || rows[n].key->list_item) continue;
            std::size_t ind = rows[n].indent;
            while (!stack.empty() && stack.back() >= ind) stack.pop_back();
            if (!stack.empty() && (step == 0 || ind - stack.back() < step)) step = ind - stack.back();
            stack.push_back(ind);
        }
        if (step == 0) step = 2;
    }

    // Walk down the path: block [b, e) whose keys sit deeper than `parent_indent`.
    std::size_t b = 0, e = limit;
    long parent_indent = -1;
    std::size_t parent_row = 0;
    std::size_t depth = 0;
    for (; depth < path.size(); ++depth) {
        std::optional<std::size_t> child_indent;
        for (std::size_t n = b; n < e; ++n)
            if (rows[n].kind == Row::content) {
                child_indent = rows[n].indent;
                if (rows[n].key && rows[n].key->list_item) {
                    why = fmt::format("line {} starts a list where a map with key {} is expected", n + 1, path[depth]);
                    return std::nullopt;
                }
                break;
            }
        if (!child_indent) break;
        std::optional<std::size_t> found;
        for (std::size_t n = b; n < e; ++n) {
            const Row& r = rows[n];
            if (r.kind != Row::content || r.indent != *child_indent) continue;
            if (!r.key || r.key->list_item) {
                why = fmt::format("line {} is not a map key", n + 1);
                return std::nullopt;
            }
            if (r.key->key == path[depth]) found = n;
        }
        if (!found) break;
        const Row& fr = rows[*found];
        std::string_view fl = text.substr(lines[*found].begin, lines[*found].end - lines[*found].begin);
        std::string_view after = util::trim(fl.substr(fr.key->value_at));
        if (!after.empty() && after[0] != '#') {
            why = fmt::format("line {}: {} holds a value on its line ({}), not a block map", *found + 1,
                              fmt::join(path.begin(), path.begin() + static_cast<long>(depth) + 1, "."),
                              std::string(after));
            return std::nullopt;
        }
        if (depth + 1 == path.size()) {
            why = fmt::format("line {}: {} exists but holds no value", *found + 1, fmt::join(path, "."));
            return std::nullopt;
        }
        std::size_t end = *found + 1;
        for (std::size_t n = *found + 1; n < e; ++n) {
            const Row& r = rows[n];
            if (r.kind == Row::content && (r.indent < fr.indent || (r.indent == fr.indent && !(r.key && r.key->list_item))))
                break;
            if (r.kind == Row::content && r.indent == fr.indent) {
                why = fmt::format("line {}: {} holds a list, not a map", n + 1,
                                  fmt::join(path.begin(), path.begin() + static_cast<long>(depth) + 1, "."));
                return std::nullopt;
            }
            end = n + 1;
        }
        parent_indent = static_cast<long>(fr.indent);
        parent_row = *found;
        b = *found + 1;
        e = end;
    }

    // Insert path[depth..] under the block found.
    std::size_t indent = 0;
    std::size_t offset = 0;
    std::string prefix;
    if (parent_indent < 0) {
        // Top level: at the end of the first document.
        std::optional<std::size_t> top;
        for (std::size_t n = 0; n < limit; ++n)
            if (rows[n].kind == Row::content) {
                top = rows[n].indent;
                break;
            }
        indent = top.value_or(0);
        if (limit < rows.size()) {
            offset = lines[limit].begin;
        } else {
            offset = text.size();
            if (!text.empty() && text.back() != '\n') prefix = eol;
        }
    } else {
        std::optional<std::size_t> last;
        std::optional<std::size_t> child_indent;
        for (std::size_t n = b; n < e; ++n) {
            if (rows[n].kind == Row::content && !child_indent) child_indent = rows[n].indent;
            if (rows[n].kind == Row::content || rows[n].kind == Row::scalar_body) last = n;
        }
        indent = child_indent.value_or(static_cast<std::size_t>(parent_indent) + step);
        std::size_t after_row = last.value_or(parent_row);
        // A block scalar's trailing blank lines belong to it; insert after its last text line.
        while (after_row > parent_row && rows[after_row].kind == Row::scalar_body &&
               lines[after_row].end == lines[after_row].begin)
            --after_row;
        if (after_row + 1 < lines.size()) {
            offset = lines[after_row + 1].begin;
        } else {
            offset = text.size();
            if (!text.empty() && text.back() != '\n') prefix = eol;
        }
    }
    std::string out = prefix;
    for (std::size_t d = depth; d < path.size(); ++d) {
        out += std::string(indent + (d - depth) * step, ' ');
        out += plain_safe(path[d]) ? path[d] : quote(path[d], Style::dbl);
        out += ':';
        if (d + 1 == path.size()) out += ' ' + quote(value, Style::plain);
        out += eol;
    }
    return Insertion{offset, out};
}

// ---------------------------------------------------------------------------------------------
// References as written

struct Written {
    std::string name;   ///< without tag and digest
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

bool is_placeholder(std::string_view s) { return s.size() > 2 && s[0] == '<' && s.find('>') != std::string_view::npos; }

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

bool ends_with(std::string_view s, std::string_view suffix) { return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix; }
bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

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
    std::string key;       ///< "" for a list item
    std::string expected;  ///< the value there now
    std::string value;     ///< the value to write
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
            SiteDesc d{fmt::format("{}:{}: {}", site.file, site.line, site.values_path.empty() ? "image" : site.values_path),
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
            std::string name_key = has("repository") ? "repository" : has("image") ? "image" : has("name") ? "name" : "";
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
            SiteDesc pd{fmt::format("{}:{}: {}", p->file, p->line, p->values_path.empty() ? p->file_key : p->values_path),
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
            texts_[file] = fmt::format(
                "# Image values of release {} for the private registry, written by aas-bundle load.\n"
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
                                        it->second.site.str(), e.site.str(), e.file, e.line, it->second.value, e.value));
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
                                        it->second.site.str(), e.site.str(), e.path, e.file, it->second.value, e.value));
            return;
        }
        insert_order_.push_back(key);
        inserts_.emplace(key, std::move(e));
    }

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
    struct Span {
        std::size_t begin, end;
        std::string text;
        const InPlace* edit;
    };
    std::map<std::string, std::vector<Span>> spans;
    std::map<std::string, std::vector<const Insert*>> inserts;
    std::vector<std::string> files;
    for (const auto& key : order_) {
        const InPlace& e = in_place_.at(key);
        const std::string& text = text_of(e.file);
        auto lines = split_lines(text);
        if (e.line < 1 || static_cast<std::size_t>(e.line) > lines.size()) {
            warn(e.site, fmt::format("{} has no line {}", e.file, e.line));
            continue;
        }
        const LineRef& lr = lines[static_cast<std::size_t>(e.line) - 1];
        std::string_view l = std::string_view(text).substr(lr.begin, lr.end - lr.begin);
        std::optional<Scalar> s;
        if (!e.key.empty()) {
            auto k = read_key(l);
            if (k && k->key == e.key) s = read_scalar(l, k->value_at);
            if (!k || k->key != e.key) {
                warn(e.site, fmt::format("line {} of {} is not \"{}: ...\"; not rewritten", e.line, e.file, e.key));
                continue;
            }
        } else {
            std::size_t i = skip_spaces(l, 0);
            if (i < l.size() && l[i] == '-') s = read_scalar(l, skip_spaces(l, i + 1));
        }
        if (!s || s->text != e.expected) {
            warn(e.site, fmt::format("line {} of {} does not hold \"{}\" as a one-line value; not rewritten", e.line,
                                     e.file, e.expected));
            continue;
        }
        spans[e.file].push_back(Span{lr.begin + s->begin, lr.begin + s->end, quote(e.value, s->style), &e});
    }
    for (const auto& key : insert_order_) {
        const Insert& i = inserts_.at(key);
        text_of(i.file);
        inserts[i.file].push_back(&i);
    }
    for (auto& [f, list] : inserts)
        std::stable_sort(list.begin(), list.end(), [](const Insert* a, const Insert* b) {
            return std::tie(a->rank_file, a->rank_line) < std::tie(b->rank_file, b->rank_line);
        });
    for (const auto& [f, _] : spans) files.push_back(f);
    for (const auto& [f, _] : inserts)
        if (!spans.count(f)) files.push_back(f);

    for (const auto& file : files) {
        const std::string& before = text_of(file);
        std::string after = before;
        auto& sp = spans[file];
        std::sort(sp.begin(), sp.end(), [](const Span& a, const Span& b) { return a.begin > b.begin; });
        for (std::size_t i = 0; i < sp.size(); ++i) {
            if (i > 0 && sp[i].end > sp[i - 1].begin)
                throw Error(fmt::format("{} and {} edit overlapping text in {}", sp[i].edit->site.str(),
                                        sp[i - 1].edit->site.str(), file));
            after.replace(sp[i].begin, sp[i].end - sp[i].begin, sp[i].text);
        }
        bool values_like = is_values_like(file);
        if (values_like && !sp.empty()) {
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
                continue;
            }
        }
        for (const Insert* ins : inserts[file]) {
            std::string why;
            auto path = util::split(ins->path, '.');
            auto at = plan_insertion(after, path, ins->value, why);
            if (!at) {
                warn(ins->site, fmt::format("cannot insert {} into {}: {}; set it by hand", ins->path, file, why));
                continue;
            }
            std::string next = after;
            next.insert(at->offset, at->text);
            try {
                Value doc = chart::parse_yaml(next, file);
                const Value* got = doc.at_path(ins->path);
                if (!got || !got->is_string() || got->text() != ins->value) {
                    warn(ins->site, fmt::format("inserting {} into {} would not read back as \"{}\"; set it by hand",
                                                ins->path, file, ins->value));
                    continue;
                }
            } catch (const Error& e) {
                warn(ins->site, fmt::format("inserting {} into {} would make it invalid ({}); set it by hand",
                                            ins->path, file, e.what()));
                continue;
            }
            after = std::move(next);
        }
        bool created = created_.count(file) > 0;
        if (created || after != before)
            result_.changes.push_back(FileChange{file, created ? std::string() : before, after, created});
    }
    // A created file that received nothing is not written, and not added to the release.
    for (const auto& file : created_) {
        bool used = std::any_of(result_.changes.begin(), result_.changes.end(), [&](const FileChange& c) {
            return c.path == file && c.after != texts_[file];
        });
        if (used) continue;
        std::erase_if(result_.changes, [&](const FileChange& c) { return c.path == file; });
        for (auto& r : result_.releases)
            std::erase_if(r.values, [&](const std::string& v) { return std::string(k8s_prefix) + v == file; });
    }
    std::sort(result_.changes.begin(), result_.changes.end(),
              [](const FileChange& a, const FileChange& b) { return a.path < b.path; });
    return std::move(result_);
}

// ---------------------------------------------------------------------------------------------
// Unified diff (Myers)

std::vector<std::string_view> diff_lines(std::string_view text) {
    std::vector<std::string_view> out;
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto nl = text.find('\n', pos);
        std::size_t end = nl == std::string_view::npos ? text.size() : nl + 1;
        out.push_back(text.substr(pos, end - pos));
        pos = end;
    }
    return out;
}

enum class Op { equal, del, ins };

std::vector<Op> myers(const std::vector<std::string_view>& a, const std::vector<std::string_view>& b) {
    const long n = static_cast<long>(a.size()), m = static_cast<long>(b.size());
    std::vector<std::vector<long>> trace; // trace[d][k + d]: furthest x on diagonal k after d edits
    auto get = [&](long d, long k) { return trace[static_cast<std::size_t>(d)][static_cast<std::size_t>(k + d)]; };
    long found_d = -1;
    for (long d = 0; d <= n + m && found_d < 0; ++d) {
        std::vector<long> v(static_cast<std::size_t>(2 * d + 1));
        for (long k = -d; k <= d; k += 2) {
            long x;
            if (d == 0)
                x = 0;
            else if (k == -d || (k != d && get(d - 1, k - 1) < get(d - 1, k + 1)))
                x = get(d - 1, k + 1);
            else
                x = get(d - 1, k - 1) + 1;
            long y = x - k;
            while (x < n && y < m && a[static_cast<std::size_t>(x)] == b[static_cast<std::size_t>(y)]) ++x, ++y;
            v[static_cast<std::size_t>(k + d)] = x;
            if (x >= n && y >= m) found_d = d;
        }
        trace.push_back(std::move(v));
    }
    std::vector<Op> ops;
    long x = n, y = m;
    for (long d = found_d; d > 0; --d) {
        long k = x - y;
        bool down = k == -d || (k != d && get(d - 1, k - 1) < get(d - 1, k + 1));
        long pk = down ? k + 1 : k - 1;
        long px = get(d - 1, pk), py = px - pk;
        long mx = down ? px : px + 1, my = down ? py + 1 : py;
        while (x > mx && y > my) {
            ops.push_back(Op::equal);
            --x, --y;
        }
        ops.push_back(down ? Op::ins : Op::del);
        x = px, y = py;
    }
    while (x > 0 && y > 0) {
        ops.push_back(Op::equal);
        --x, --y;
    }
    std::reverse(ops.begin(), ops.end());
    return ops;
}

std::string range(std::size_t start, std::size_t count) {
    if (count == 1) return std::to_string(start);
    return fmt::format("{},{}", count == 0 ? (start == 0 ? 0 : start - 1) : start, count);
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
            throw Error(fmt::format("rewriting {}: the file changed since the changes were planned; plan again",
                                    c.path));
        auto perms = fs::status(path, ec).permissions();
        if (ec) throw Error(fmt::format("rewriting {}: {}", c.path, ec.message()));
        util::write_file_atomic(path, c.after, perms);
    }
}

std::string unified_diff(const FileChange& change) {
    if (!change.created && change.before == change.after) return {};
    auto a = diff_lines(change.before);
    auto b = diff_lines(change.after);
    auto ops = myers(a, b);
    constexpr std::size_t context = 3;
    std::string out = change.created ? "--- /dev/null\n" : "--- a/" + change.path + "\n";
    out += "+++ b/" + change.path + "\n";

    // Positions in a and b before each op.
    std::vector<std::size_t> ai(ops.size() + 1), bi(ops.size() + 1);
    for (std::size_t i = 0; i < ops.size(); ++i) {
        ai[i + 1] = ai[i] + (ops[i] != Op::ins);
        bi[i + 1] = bi[i] + (ops[i] != Op::del);
    }
    auto emit = [&](char mark, std::string_view line) {
        out += mark;
        out.append(line);
        if (line.empty() || line.back() != '\n') out += "\n\\ No newline at end of file\n";
    };
    std::size_t i = 0;
    while (i < ops.size()) {
        while (i < ops.size() && ops[i] == Op::equal) ++i;
        if (i == ops.size()) break;
        std::size_t start = i >= context ? i - context : 0;
        // Extend over changes separated by at most 2 * context equal lines.
        std::size_t end = i;
        for (;;) {
            while (end < ops.size() && ops[end] != Op::equal) ++end;
            std::size_t gap = end;
            while (gap < ops.size() && ops[gap] == Op::equal) ++gap;
            if (gap < ops.size() && gap - end <= 2 * context) {
                end = gap;
                continue;
            }
            end = std::min(ops.size(), end + context);
            break;
        }
        std::size_t ac = ai[end] - ai[start], bc = bi[end] - bi[start];
        out += fmt::format("@@ -{} +{} @@\n", range(ai[start] + 1, ac), range(bi[start] + 1, bc));
        for (std::size_t j = start; j < end; ++j) {
            if (ops[j] == Op::equal)
                emit(' ', a[ai[j]]);
            else if (ops[j] == Op::del)
                emit('-', a[ai[j]]);
            else
                emit('+', b[bi[j]]);
        }
        i = end;
    }
    return out;
}

} // namespace aas::rewrite
