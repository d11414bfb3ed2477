#include "aas_bundle/chart/values.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>

namespace aas::chart {

// ---------------------------------------------------------------------------------------------
// Value

Value::Value(Kind k, std::string text, Origin o) : kind_(k), text_(std::move(text)), origin_(std::move(o)) {}

Value Value::make_null(Origin o) {
    return Value(Kind::null, {}, std::move(o));
}

Value Value::make_bool(bool b, Origin o) {
    return Value(Kind::boolean, b ? "true" : "false", std::move(o));
}

Value Value::make_number(std::string text, Origin o) {
    return Value(Kind::number, std::move(text), std::move(o));
}

Value Value::make_string(std::string s, Origin o) {
    return Value(Kind::string, std::move(s), std::move(o));
}

Value Value::make_map(Origin o) {
    return Value(Kind::map, {}, std::move(o));
}

Value Value::make_list(Origin o) {
    return Value(Kind::list, {}, std::move(o));
}

namespace {

// Whether a number's text is zero. Handles what parse_yaml accepts as numbers: decimal and
// Go-style prefixed integers (0x, 0o, 0b, leading-zero octal), floats, ".inf"/".nan".
bool number_is_zero(const std::string& text) {
    std::string s;
    s.reserve(text.size());
    for (char c : text)
        if (c != '_') s.push_back(c);
    std::size_t i = 0;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (i + 1 < s.size() && s[i] == '0' &&
        (s[i + 1] == 'x' || s[i + 1] == 'X' || s[i + 1] == 'o' || s[i + 1] == 'O' || s[i + 1] == 'b' ||
         s[i + 1] == 'B')) {
        std::string_view digits(s.data() + i + 2, s.size() - i - 2);
        return !digits.empty() && std::all_of(digits.begin(), digits.end(), [](char c) { return c == '0'; });
    }
    std::string_view rest(s.data() + i, s.size() - i);
    if (rest.empty()) return false;
    if (rest.front() == '.' && rest.size() > 1 && std::string_view("iInN").find(rest[1]) != std::string_view::npos)
        return false; // .inf / .nan
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    return end != s.c_str() && d == 0.0;
}

} // namespace

bool Value::truthy() const {
    switch (kind_) {
    case Kind::null:
        return false;
    case Kind::boolean:
        return text_ == "true";
    case Kind::number:
        return !number_is_zero(text_);
    case Kind::string:
        return !text_.empty();
    case Kind::map:
        return !entries_.empty();
    case Kind::list:
        return !items_.empty();
    }
    return false;
}

const Value* Value::find(std::string_view key) const {
    for (const auto& [k, v] : entries_)
        if (k == key) return &v;
    return nullptr;
}

Value* Value::find(std::string_view key) {
    for (auto& [k, v] : entries_)
        if (k == key) return &v;
    return nullptr;
}

// On a value that is not a map, set() first turns it into an empty map (keeping its origin).
Value& Value::set(std::string key, Value v) {
    if (kind_ != Kind::map) {
        kind_ = Kind::map;
        text_.clear();
        items_.clear();
    }
    for (auto& [k, existing] : entries_) {
        if (k == key) {
            existing = std::move(v);
            return existing;
        }
    }
    entries_.emplace_back(std::move(key), std::move(v));
    return entries_.back().second;
}

bool Value::erase(std::string_view key) {
    auto it = std::find_if(entries_.begin(), entries_.end(), [&](const auto& e) { return e.first == key; });
    if (it == entries_.end()) return false;
    entries_.erase(it);
    return true;
}

const Value* Value::at_path(std::string_view dotted) const {
    const Value* cur = this;
    std::size_t i = 0;
    const std::size_t n = dotted.size();
    if (n == 0) return cur;
    while (i < n) {
        if (dotted[i] == '[') {
            auto close = dotted.find(']', i);
            if (close == std::string_view::npos) return nullptr;
            std::string_view digits = dotted.substr(i + 1, close - i - 1);
            auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
            if (digits.empty() || !std::all_of(digits.begin(), digits.end(), is_digit)) return nullptr;
            if (!cur->is_list()) return nullptr;
            std::size_t idx = 0;
            for (char c : digits) {
                idx = idx * 10 + static_cast<std::size_t>(c - '0');
                if (idx > cur->items_.size()) return nullptr;
            }
            if (idx >= cur->items_.size()) return nullptr;
            cur = &cur->items_[idx];
            i = close + 1;
            if (i < n && dotted[i] == '.') ++i;
            continue;
        }
        std::size_t end = i;
        while (end < n && dotted[end] != '.' && dotted[end] != '[') ++end;
        std::string_view key = dotted.substr(i, end - i);
        if (!cur->is_map()) return nullptr;
        cur = cur->find(key);
        if (!cur) return nullptr;
        i = end;
        if (i < n && dotted[i] == '.') ++i;
    }
    return cur;
}

void Value::prefix_paths(std::string_view prefix) {
    if (prefix.empty()) return;
    std::string& p = origin_.values_path;
    if (p.empty())
        p = std::string(prefix);
    else if (p.front() == '[')
        p = std::string(prefix) + p;
    else
        p = std::string(prefix) + "." + p;
    for (auto& e : entries_) e.second.prefix_paths(prefix);
    for (auto& item : items_) item.prefix_paths(prefix);
}

// ---------------------------------------------------------------------------------------------
// YAML parsing

namespace {

constexpr int max_depth = 512;
// Aliases are expanded into copies; a cap keeps "billion laughs" documents from exhausting memory.
constexpr std::size_t max_nodes = 2'000'000;
// Bytes of text (scalars, keys and values paths) after expanding aliases: an alias bomb
// of a few KB multiplies a string by each level, which a node count alone does not bound.
constexpr std::size_t max_expanded_bytes = 64u << 20;

bool is_one_of(std::string_view s, std::initializer_list<std::string_view> list) {
    return std::find(list.begin(), list.end(), s) != list.end();
}

// Go's strconv.ParseInt/ParseUint with base 0, after go-yaml v2 removed underscores.
bool is_go_int(std::string_view s) {
    if (!s.empty() && (s.front() == '+' || s.front() == '-')) s.remove_prefix(1);
    if (s.empty()) return false;
    auto all = [](std::string_view d, auto pred) { return !d.empty() && std::all_of(d.begin(), d.end(), pred); };
    if (s.size() > 1 && s[0] == '0') {
        char p = s[1];
        std::string_view d = s.substr(2);
        if (p == 'x' || p == 'X')
            return all(
                d, [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); });
        if (p == 'o' || p == 'O') return all(d, [](char c) { return c >= '0' && c <= '7'; });
        if (p == 'b' || p == 'B') return all(d, [](char c) { return c == '0' || c == '1'; });
        return all(s.substr(1), [](char c) { return c >= '0' && c <= '7'; });
    }
    return all(s, [](char c) { return c >= '0' && c <= '9'; });
}

// go-yaml v2's float pattern: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool is_yaml_float(std::string_view s) {
    auto digits = [&](std::size_t& i) {
        std::size_t start = i;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
        return i > start;
    };
    std::size_t i = 0;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (i < s.size() && s[i] == '.') {
        ++i;
        if (!digits(i)) return false;
    } else {
        if (!digits(i)) return false;
        if (i < s.size() && s[i] == '.') {
            ++i;
            digits(i);
        }
    }
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
        ++i;
        if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
        if (!digits(i)) return false;
    }
    return i == s.size();
}

// The resolution go-yaml v2 (used by helm through sigs.k8s.io/yaml) applies to a plain scalar.
Value resolve_plain(const std::string& s, Origin o) {
    if (is_one_of(s, {"", "~", "null", "Null", "NULL"})) return Value::make_null(std::move(o));
    if (is_one_of(s, {"true", "True", "TRUE", "yes", "Yes", "YES", "y", "Y", "on", "On", "ON"}))
        return Value::make_bool(true, std::move(o));
    if (is_one_of(s, {"false", "False", "FALSE", "no", "No", "NO", "n", "N", "off", "Off", "OFF"}))
        return Value::make_bool(false, std::move(o));
    if (is_one_of(
            s, {".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF"}))
        return Value::make_number(s, std::move(o));
    char c = s.front();
    if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.') {
        std::string plain;
        plain.reserve(s.size());
        for (char ch : s)
            if (ch != '_') plain.push_back(ch);
        if (is_go_int(plain) || is_yaml_float(plain)) return Value::make_number(s, std::move(o));
    }
    return Value::make_string(s, std::move(o));
}

constexpr std::string_view core_tag = "tag:yaml.org,2002:";

struct Converter {
    const std::string& file;
    std::size_t nodes = 0;
    std::size_t bytes = 0;

    [[noreturn]] void fail(int line, const std::string& msg) const {
        if (line > 0) throw Error(fmt::format("{}:{}: {}", file, line, msg));
        throw Error(fmt::format("{}: {}", file, msg));
    }

    int line_offset = 0; // lines before the document this node is in
    int line_of(const YAML::Node& n) const { return n.Mark().line >= 0 ? n.Mark().line + 1 + line_offset : 0; }

    // `line` is where the value is written: its key's line for map values (more useful to a
    // user than the line of a nested map's first key, and defined for empty values).
    Value convert(const YAML::Node& n, const std::string& path, int line, int depth) {
        if (depth > max_depth) fail(line, "YAML nested too deeply");
        if (++nodes > max_nodes) fail(line, "YAML too large (too many nodes after expanding aliases)");
        bytes += path.size() + (n.Type() == YAML::NodeType::Scalar ? n.Scalar().size() : 0);
        if (bytes > max_expanded_bytes)
            fail(line, fmt::format("YAML too large (more than {} MiB of text after expanding aliases)",
                                   max_expanded_bytes >> 20));
        Origin o{file, line, path};
        const std::string& tag = n.Tag();
        switch (n.Type()) {
        case YAML::NodeType::Undefined:
        case YAML::NodeType::Null:
            if (tag == std::string(core_tag) + "str" || tag == "!") return Value::make_string("", std::move(o));
            return Value::make_null(std::move(o));
        case YAML::NodeType::Scalar:
            return scalar(n, std::move(o));
        case YAML::NodeType::Sequence: {
            Value list = Value::make_list(std::move(o));
            std::size_t i = 0;
            for (const auto& item : n) {
                int item_line = line_of(item);
                list.push_back(convert(item, fmt::format("{}[{}]", path, i), item_line ? item_line : line, depth + 1));
                ++i;
            }
            return list;
        }
        case YAML::NodeType::Map:
            return mapping(n, std::move(o), depth);
        }
        return Value::make_null(std::move(o));
    }

    Value scalar(const YAML::Node& n, Origin o) const {
        const std::string& tag = n.Tag();
        const std::string& s = n.Scalar();
        if (tag == "!") return Value::make_string(s, std::move(o)); // quoted or block scalar
        if (tag.empty() || tag == "?") return resolve_plain(s, std::move(o));
        if (tag.compare(0, core_tag.size(), core_tag) == 0) {
            std::string_view t = std::string_view(tag).substr(core_tag.size());
            if (t == "int" || t == "float") return Value::make_number(s, std::move(o));
            if (t == "null") return Value::make_null(std::move(o));
            if (t == "bool") {
                Value v = resolve_plain(s, o);
                if (v.kind() == Value::Kind::boolean) return v;
                fail(o.line, fmt::format("cannot use \"{}\" as a bool", s));
            }
        }
        return Value::make_string(s, std::move(o));
    }

    static std::string join(const std::string& path, const std::string& key) {
        return path.empty() ? key : path + "." + key;
    }

    Value mapping(const YAML::Node& n, Origin o, int depth) {
        const std::string path = o.values_path;
        Value map = Value::make_map(std::move(o));
        // Keys written explicitly win over keys from a "<<" merge, wherever the merge is placed.
        std::vector<std::string> explicit_keys;
        for (auto it = n.begin(); it != n.end(); ++it) {
            // Copies: it-> yields a temporary pair, so references into it would dangle.
            const YAML::Node k = it->first;
            const YAML::Node val = it->second;
            int key_line = line_of(k);
            if (!k.IsScalar() && !k.IsNull()) fail(key_line, "a map key must be a scalar");
            std::string key = k.IsScalar() ? k.Scalar() : std::string("null");
            if (key == "<<" && (k.Tag() == "?" || k.Tag().empty())) {
                merge_into(map, val, path, key_line, depth, explicit_keys);
                continue;
            }
            map.set(key, convert(val, join(path, key), key_line, depth + 1));
            explicit_keys.push_back(std::move(key));
        }
        return map;
    }

    void merge_into(Value& map, const YAML::Node& src, const std::string& path, int line, int depth,
                    const std::vector<std::string>& explicit_keys) {
        auto merge_one = [&](const YAML::Node& m) {
            if (!m.IsMap()) fail(line, "a \"<<\" merge needs a map or a list of maps");
            Value merged = mapping(m, Origin{file, line, path}, depth + 1);
            for (const auto& [k, v] : merged.entries()) {
                if (std::find(explicit_keys.begin(), explicit_keys.end(), k) != explicit_keys.end()) continue;
                if (map.find(k)) continue; // an earlier merge source wins over a later one
                map.set(k, v);
            }
        };
        if (src.IsSequence()) {
            for (const auto& m : src) merge_one(m);
        } else {
            merge_one(src);
        }
    }
};

} // namespace

namespace {

[[noreturn]] void rethrow_yaml(const YAML::Exception& e, const std::string& file, int line_offset = 0) {
    if (e.mark.line >= 0) throw Error(fmt::format("{}:{}: {}", file, e.mark.line + 1 + line_offset, e.msg));
    throw Error(fmt::format("{}: {}", file, e.msg));
}

Value document_value(const YAML::Node& doc, const std::string& file, int line_offset = 0) {
    Converter c{file};
    c.line_offset = line_offset;
    int line = doc.Mark().line >= 0 ? doc.Mark().line + 1 + line_offset : 1 + line_offset;
    return c.convert(doc, "", line, 0);
}

// A line that starts a new document: "---" alone or followed by a space or tab.
bool document_marker(std::string_view line) {
    if (line.rfind("---", 0) != 0) return false;
    return line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r';
}

} // namespace

Value parse_yaml(std::string_view text, const std::string& file) {
    try {
        YAML::Node doc = YAML::Load(std::string(text));
        return document_value(doc, file);
    } catch (const YAML::Exception& e) {
        rethrow_yaml(e, file);
    }
}

// Documents are split at "---" lines and each is loaded on its own: yaml-cpp 0.7's LoadAll
// can loop forever on some malformed input (found by fuzzing: "  \n,\x02 "), a single Load
// cannot. Line numbers stay those of the whole file.
std::vector<Value> parse_yaml_documents(std::string_view text, const std::string& file) {
    std::vector<Value> out;
    std::size_t pos = 0;
    int line = 0;     // 0-based line of `pos`
    int doc_line = 0; // first line of the current document
    std::size_t doc_start = 0;
    auto flush = [&](std::size_t end) {
        std::string chunk(text.substr(doc_start, end - doc_start));
        try {
            YAML::Node doc = YAML::Load(chunk);
            if (doc.IsNull() || !doc.IsDefined()) return;
            out.push_back(document_value(doc, file, doc_line));
        } catch (const YAML::Exception& e) {
            rethrow_yaml(e, file, doc_line);
        }
    };
    while (pos <= text.size()) {
        std::size_t eol = text.find('\n', pos);
        std::size_t end = eol == std::string_view::npos ? text.size() : eol;
        std::string_view l = text.substr(pos, end - pos);
        if (document_marker(l)) {
            flush(pos);
            // The marker line may carry content ("--- a: 1"); keep it, minus the marker.
            doc_start = pos + 3;
            doc_line = line;
        }
        if (eol == std::string_view::npos) break;
        pos = eol + 1;
        ++line;
    }
    flush(text.size());
    return out;
}

// ---------------------------------------------------------------------------------------------
// Merging

// helm's chartutil.coalesceTablesFullKey with `top` as the destination: top wins; two maps
// merge recursively; a null in top removes the key when base has it (a null with nothing to
// remove stays, as in helm, where `hasKey` still sees it).
Value merge_values(const Value& base, const Value& top) {
    if (!top.is_map() || !base.is_map()) return top;
    // Keys keep base's order (a chart's defaults keep their file order), top's own keys follow.
    Value out = Value::make_map(top.origin());
    for (const auto& [key, bv] : base.entries()) {
        const Value* tv = top.find(key);
        if (!tv)
            out.set(key, bv);
        else if (tv->is_null())
            continue;
        else if (tv->is_map() && bv.is_map())
            out.set(key, merge_values(bv, *tv));
        else
            out.set(key, *tv);
    }
    for (const auto& [key, tv] : top.entries())
        if (!base.find(key)) out.set(key, tv);
    return out;
}

} // namespace aas::chart
