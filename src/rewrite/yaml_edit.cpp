// YAML text editing for the rewrite (see rewrite_impl.hpp): lines, one-line scalars and
// keys as written, quoting, and where an insertion goes in a values file's block structure.

#include "rewrite_impl.hpp"

#include "aas_bundle/util/strings.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace aas::rewrite::detail {

namespace {

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

} // namespace

// ---------------------------------------------------------------------------------------------
// Lines and scalars

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
                case 'n':
                    s.text += '\n';
                    break;
                case 't':
                    s.text += '\t';
                    break;
                case '\\':
                    s.text += '\\';
                    break;
                case '"':
                    s.text += '"';
                    break;
                case '/':
                    s.text += '/';
                    break;
                default:
                    return std::nullopt; // not something an image value holds
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

namespace {

// The row where the first document of `rows` ends (a "---" after content), or rows.size().
std::size_t first_document_end(const std::vector<Row>& rows) {
    for (std::size_t n = 0; n < rows.size(); ++n)
        if (rows[n].kind == Row::other_document) return n;
    return rows.size();
}

// Indentation step: the smallest positive indent of a key under another key (2 when none is).
std::size_t indent_step(const std::vector<Row>& rows, std::size_t limit) {
    std::size_t step = 0;
    std::vector<std::size_t> stack;
    for (std::size_t n = 0; n < limit; ++n) {
        if (rows[n].kind != Row::content || !rows[n].key || rows[n].key->list_item) continue;
        std::size_t ind = rows[n].indent;
        while (!stack.empty() && stack.back() >= ind) stack.pop_back();
        if (!stack.empty() && (step == 0 || ind - stack.back() < step)) step = ind - stack.back();
        stack.push_back(ind);
    }
    if (step == 0) step = 2;
    return step;
}

// How much of a path a values file already holds: the block [b, e) of rows under the key of
// path[depth - 1] (at `parent_row`, indented `parent_indent`; -1 for the top level).
struct Descent {
    std::size_t b = 0, e = 0;
    long parent_indent = -1;
    std::size_t parent_row = 0;
    std::size_t depth = 0;
};

// Walk down the path: block [b, e) whose keys sit deeper than `parent_indent`; nullopt with
// `why` when a key on the way holds something other than a block map.
std::optional<Descent> descend(std::string_view text, const std::vector<LineRef>& lines, const std::vector<Row>& rows,
                               std::size_t limit, const std::vector<std::string>& path, std::string& why) {
    Descent d;
    d.e = limit;
    std::size_t& b = d.b;
    std::size_t& e = d.e;
    std::size_t& depth = d.depth;
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
            if (r.kind == Row::content &&
                (r.indent < fr.indent || (r.indent == fr.indent && !(r.key && r.key->list_item))))
                break;
            if (r.kind == Row::content && r.indent == fr.indent) {
                why = fmt::format("line {}: {} holds a list, not a map", n + 1,
                                  fmt::join(path.begin(), path.begin() + static_cast<long>(depth) + 1, "."));
                return std::nullopt;
            }
            end = n + 1;
        }
        d.parent_indent = static_cast<long>(fr.indent);
        d.parent_row = *found;
        b = *found + 1;
        e = end;
    }
    return d;
}

// Where the missing keys go: an offset into the text, their indent, and a line end to write
// first (when the text's last line has none).
struct InsertAt {
    std::size_t offset = 0;
    std::size_t indent = 0;
    std::string prefix;
};

// Insert path[depth..] under the block found.
InsertAt insertion_point(std::string_view text, const std::vector<LineRef>& lines, const std::vector<Row>& rows,
                         std::size_t limit, const Descent& d, std::size_t step, const std::string& eol) {
    InsertAt at;
    if (d.parent_indent < 0) {
        // Top level: at the end of the first document.
        std::optional<std::size_t> top;
        for (std::size_t n = 0; n < limit; ++n)
            if (rows[n].kind == Row::content) {
                top = rows[n].indent;
                break;
            }
        at.indent = top.value_or(0);
        if (limit < rows.size()) {
            at.offset = lines[limit].begin;
        } else {
            at.offset = text.size();
            if (!text.empty() && text.back() != '\n') at.prefix = eol;
        }
    } else {
        std::optional<std::size_t> last;
        std::optional<std::size_t> child_indent;
        for (std::size_t n = d.b; n < d.e; ++n) {
            if (rows[n].kind == Row::content && !child_indent) child_indent = rows[n].indent;
            if (rows[n].kind == Row::content || rows[n].kind == Row::scalar_body) last = n;
        }
        at.indent = child_indent.value_or(static_cast<std::size_t>(d.parent_indent) + step);
        std::size_t after_row = last.value_or(d.parent_row);
        // A block scalar's trailing blank lines belong to it; insert after its last text line.
        while (after_row > d.parent_row && rows[after_row].kind == Row::scalar_body &&
               lines[after_row].end == lines[after_row].begin)
            --after_row;
        if (after_row + 1 < lines.size()) {
            at.offset = lines[after_row + 1].begin;
        } else {
            at.offset = text.size();
            if (!text.empty() && text.back() != '\n') at.prefix = eol;
        }
    }
    return at;
}

// The lines of keys path[depth..], the first at `indent` and each next one `step` deeper, the
// last holding `value`.
std::string nested_keys(const std::vector<std::string>& path, std::size_t depth, std::size_t indent, std::size_t step,
                        const std::string& value, const std::string& eol) {
    std::string out;
    for (std::size_t d = depth; d < path.size(); ++d) {
        out += std::string(indent + (d - depth) * step, ' ');
        out += plain_safe(path[d]) ? path[d] : quote(path[d], Style::dbl);
        out += ':';
        if (d + 1 == path.size()) out += ' ' + quote(value, Style::plain);
        out += eol;
    }
    return out;
}

} // namespace

// Where and what to insert so that `path` (dotted, no list indices) holds `value` in
// `text`; nullopt with `why` when the file's structure is not a block map along the way.
std::optional<Insertion> plan_insertion(std::string_view text, const std::vector<std::string>& path,
                                        const std::string& value, std::string& why) {
    auto lines = split_lines(text);
    auto rows = classify(text, lines);
    std::string eol = eol_of(text);
    std::size_t limit = first_document_end(rows);
    std::size_t step = indent_step(rows, limit);
    auto d = descend(text, lines, rows, limit, path, why);
    if (!d) return std::nullopt;
    InsertAt at = insertion_point(text, lines, rows, limit, *d, step, eol);
    return Insertion{at.offset, at.prefix + nested_keys(path, d->depth, at.indent, step, value, eol)};
}

} // namespace aas::rewrite::detail
