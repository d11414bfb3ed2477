// Runtime values of the template engine: construction, Go-like formatting, truth, and the
// YAML/JSON conversions helm's toYaml/toJson/fromYaml perform.

#include "template_impl.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

namespace aas::chart::tmpl::detail {

void add_srcs(Srcs& to, const Srcs& from) {
    if (from.empty()) return;
    if (to.empty()) {
        to = from;
        return;
    }
    Srcs out;
    out.reserve(to.size() + from.size());
    std::set_union(to.begin(), to.end(), from.begin(), from.end(), std::back_inserter(out));
    to = std::move(out);
}

namespace {

bool same_attrs(const Seg& a, const Seg& b) {
    return a.srcs == b.srcs && a.why.empty() && b.why.empty() && a.rel == b.rel && a.line == b.line;
}

} // namespace

void append_seg(std::vector<Seg>& to, Seg s) {
    if (s.text.empty() && s.why.empty() && s.srcs.empty()) return;
    if (!to.empty() && same_attrs(to.back(), s) && !s.text.empty()) {
        to.back().text += s.text;
        return;
    }
    to.push_back(std::move(s));
}

void append_segs(std::vector<Seg>& to, const std::vector<Seg>& from) {
    for (const auto& s : from) append_seg(to, s);
}

Val make_nil(Srcs s) {
    Val v;
    v.srcs = std::move(s);
    return v;
}

Val make_bool(bool b, Srcs s) {
    Val v;
    v.k = Val::K::boolean;
    v.b = b;
    v.srcs = std::move(s);
    return v;
}

Val make_int(std::int64_t i, Srcs s) {
    Val v;
    v.k = Val::K::integer;
    v.i = i;
    v.srcs = std::move(s);
    return v;
}

Val make_float(double f, Srcs s) {
    Val v;
    v.k = Val::K::floating;
    v.f = f;
    v.srcs = std::move(s);
    return v;
}

Val make_str(std::string text, Srcs s) {
    Val v;
    v.k = Val::K::string;
    Seg seg;
    seg.text = std::move(text);
    seg.srcs = std::move(s);
    v.segs.push_back(std::move(seg));
    return v;
}

Val make_segs(std::vector<Seg> segs) {
    Val v;
    v.k = Val::K::string;
    v.segs = std::move(segs);
    return v;
}

Val make_unknown(std::string why, Srcs s) {
    Val v;
    v.k = Val::K::unknown;
    v.why = std::move(why);
    v.srcs = std::move(s);
    return v;
}

Val make_list(int made_alt, Srcs s) {
    Val v;
    v.k = Val::K::list;
    v.list = std::make_shared<List>();
    v.list->made_alt = made_alt;
    v.srcs = std::move(s);
    return v;
}

Val make_dict(int made_alt, Srcs s) {
    Val v;
    v.k = Val::K::dict;
    v.dict = std::make_shared<Dict>();
    v.dict->made_alt = made_alt;
    v.srcs = std::move(s);
    return v;
}

Val make_object(std::string name) {
    Val v;
    v.k = Val::K::object;
    v.name = std::move(name);
    return v;
}

namespace {

/// A YAML number as helm reads it: float64 (values go through JSON), prefixed integers too.
double number_value(const std::string& text) {
    NumberText n = split_number(text);
    std::string low;
    for (char c : n.body) low.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    if (low == ".inf") return n.neg ? -HUGE_VAL : HUGE_VAL;
    if (low == ".nan") return std::nan("");
    if (n.base != 10) {
        std::uint64_t v = 0;
        std::string_view digits = n.digits();
        std::from_chars(digits.data(), digits.data() + digits.size(), v, n.base);
        return n.neg ? -static_cast<double>(v) : static_cast<double>(v);
    }
    double d = std::strtod(n.body.c_str(), nullptr);
    return n.neg ? -d : d;
}

bool origin_known(const Origin& o) {
    return !o.file.empty() || !o.values_path.empty() || o.line != 0;
}

Val convert(const Value& v, const Srcs* fixed, int made_alt) {
    Srcs s;
    if (fixed)
        s = *fixed;
    else if (origin_known(v.origin()))
        s.push_back(&v.origin());
    switch (v.kind()) {
    case Value::Kind::null:
        return make_nil(std::move(s));
    case Value::Kind::boolean:
        return make_bool(v.as_bool(), std::move(s));
    case Value::Kind::number:
        return make_float(number_value(v.text()), std::move(s));
    case Value::Kind::string:
        return make_str(v.text(), std::move(s));
    case Value::Kind::list: {
        Val l = make_list(made_alt, std::move(s));
        l.list->items.reserve(v.items().size());
        for (const auto& it : v.items()) l.list->items.push_back(convert(it, fixed, made_alt));
        return l;
    }
    case Value::Kind::map: {
        Val d = make_dict(made_alt, std::move(s));
        for (const auto& [k, e] : v.entries()) d.dict->m[k] = convert(e, fixed, made_alt);
        return d;
    }
    }
    return make_nil();
}

} // namespace

Val from_value(const Value& v, int made_alt) {
    return convert(v, nullptr, made_alt);
}

Val from_yaml_text(const std::string& text, const Srcs& srcs, int made_alt) {
    Value parsed = parse_yaml(text, "fromYaml");
    return convert(parsed, &srcs, made_alt);
}

namespace {

/// Origins by line of a string's primary text (index 0 unused: lines are 1-based).
std::vector<Srcs> srcs_by_line(const Val& text) {
    std::vector<Srcs> lines(2);
    std::size_t line = 1;
    for (const auto& seg : text.segs) {
        if (seg.rel != 0) continue;
        std::size_t last = line + static_cast<std::size_t>(std::count(seg.text.begin(), seg.text.end(), '\n'));
        // A segment that ends with its newline does not reach the next line.
        std::size_t reach = !seg.text.empty() && seg.text.back() == '\n' ? last - 1 : last;
        if (lines.size() <= last) lines.resize(last + 1);
        if (!seg.srcs.empty())
            for (std::size_t l = line; l <= std::max(line, reach); ++l) add_srcs(lines[l], seg.srcs);
        line = last;
    }
    return lines;
}

struct LineConverter {
    Exec& ex;
    const std::vector<Srcs>& lines;
    const Origin* file = nullptr; ///< the chart file the whole text is, if it is one
    int made_alt = 0;

    Srcs scalar_srcs(const Value& v) const {
        if (file) return Srcs{ex.own(Origin{file->file, v.origin().line, std::string(), true, v.origin().values_path})};
        Srcs s;
        std::size_t first = static_cast<std::size_t>(std::max(1, v.origin().line));
        std::size_t last = first + static_cast<std::size_t>(std::count(v.text().begin(), v.text().end(), '\n'));
        for (std::size_t l = first; l <= last && l < lines.size(); ++l) add_srcs(s, lines[l]);
        return s;
    }

    Val operator()(const Value& v) const {
        switch (v.kind()) {
        case Value::Kind::null:
            return make_nil(scalar_srcs(v));
        case Value::Kind::boolean:
            return make_bool(v.as_bool(), scalar_srcs(v));
        case Value::Kind::number:
            return make_float(number_value(v.text()), scalar_srcs(v));
        case Value::Kind::string:
            return make_str(v.text(), scalar_srcs(v));
        case Value::Kind::list: {
            Val l = make_list(made_alt);
            l.list->items.reserve(v.items().size());
            for (const auto& it : v.items()) {
                l.list->items.push_back((*this)(it));
                if (!file) add_srcs(l.srcs, srcs_of(l.list->items.back()));
            }
            l.srcs = file ? scalar_srcs(v) : l.list->items.empty() ? scalar_srcs(v) : l.srcs;
            return l;
        }
        case Value::Kind::map: {
            Val d = make_dict(made_alt);
            for (const auto& [k, e] : v.entries()) {
                Val c = (*this)(e);
                if (!file) add_srcs(d.srcs, srcs_of(c));
                d.dict->m[k] = std::move(c);
            }
            d.srcs = file ? scalar_srcs(v) : v.entries().empty() ? scalar_srcs(v) : d.srcs;
            return d;
        }
        }
        return make_nil();
    }
};

} // namespace

Val from_yaml_val(Exec& ex, const Val& text) {
    std::string s = str_arg(text);
    if (!text.is_str()) return from_yaml_text(s, srcs_of(text), ex.alt());
    Value parsed = parse_yaml(s, "fromYaml");
    // The whole text one chart file's (`.Files.Get "x" | fromYaml`): lines and keys are its own.
    const Origin* file = nullptr;
    std::size_t primary_segs = 0;
    for (const auto& seg : text.segs)
        if (seg.rel == 0 && !seg.text.empty()) {
            ++primary_segs;
            if (seg.srcs.size() == 1 && seg.srcs[0]->chart_file && seg.srcs[0]->file_key.empty() &&
                seg.srcs[0]->line == 1)
                file = seg.srcs[0];
        }
    if (primary_segs != 1) file = nullptr;
    std::vector<Srcs> lines = srcs_by_line(text);
    return LineConverter{ex, lines, file, ex.alt()}(parsed);
}

std::string primary(const Val& v) {
    if (v.k != Val::K::string) return {};
    std::string out;
    for (const auto& s : v.segs)
        if (s.rel == 0) out += s.text;
    return out;
}

std::string str_arg(const Val& v) {
    switch (v.k) {
    case Val::K::string:
        return primary(v);
    case Val::K::nil:
    case Val::K::unknown:
        return {};
    default:
        return format_v(v);
    }
}

std::string go_float(double f) {
    if (std::isnan(f)) return "NaN";
    if (std::isinf(f)) return f > 0 ? "+Inf" : "-Inf";
    if (f == 0) return std::signbit(f) ? "-0" : "0";
    // Shortest round-trip digits and the decimal exponent.
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, f, std::chars_format::scientific);
    std::string sci(buf, r.ptr);
    bool neg = sci[0] == '-';
    if (neg) sci.erase(0, 1);
    std::size_t e = sci.find('e');
    std::string mant = sci.substr(0, e);
    int exp = std::atoi(sci.c_str() + e + 1);
    std::string digits;
    for (char c : mant)
        if (c != '.') digits.push_back(c);
    std::string out = neg ? "-" : "";
    // %v is %g with the shortest precision, and strconv then decides on the exponent form as
    // for precision 6: 1e+06, 1.5e-05, 123456.
    if (exp < -4 || exp >= 6) {
        out += digits.substr(0, 1);
        if (digits.size() > 1) out += "." + digits.substr(1);
        out += exp < 0 ? "e-" : "e+";
        int a = exp < 0 ? -exp : exp;
        if (a < 10) out += "0";
        out += std::to_string(a);
        return out;
    }
    if (exp < 0) {
        out += "0." + std::string(static_cast<std::size_t>(-exp - 1), '0') + digits;
    } else if (static_cast<int>(digits.size()) <= exp + 1) {
        out += digits + std::string(static_cast<std::size_t>(exp + 1) - digits.size(), '0');
    } else {
        out += digits.substr(0, static_cast<std::size_t>(exp + 1)) + "." +
               digits.substr(static_cast<std::size_t>(exp + 1));
    }
    return out;
}

NumberText split_number(std::string_view text) {
    std::string s;
    for (char c : text)
        if (c != '_') s.push_back(c);
    NumberText n;
    std::size_t i = 0;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
        n.neg = s[i] == '-';
        ++i;
    }
    n.body = s.substr(i);
    if (n.body.size() > 2 && n.body[0] == '0') {
        char p = n.body[1];
        if (p == 'x' || p == 'X')
            n.base = 16;
        else if (p == 'o' || p == 'O')
            n.base = 8;
        else if (p == 'b' || p == 'B')
            n.base = 2;
    }
    return n;
}

std::string go_quote(std::string_view s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\a':
            out += "\\a";
            break;
        case '\b':
            out += "\\b";
            break;
        case '\f':
            out += "\\f";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\r':
            out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        case '\v':
            out += "\\v";
            break;
        default:
            if (c < 0x20 || c == 0x7f)
                out += fmt::format("\\x{:02x}", c);
            else
                out.push_back(static_cast<char>(c));
        }
    }
    out += "\"";
    return out;
}

void js_escape(std::string& out, std::string_view s, JsEscape flavour) {
    const bool json = flavour == JsEscape::json;
    const char* hex = json ? "0123456789abcdef" : "0123456789ABCDEF";
    auto u00 = [&](unsigned char c) {
        out += "\\u00";
        out += hex[c >> 4];
        out += hex[c & 15];
    };
    for (std::size_t i = 0; i < s.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        switch (c) {
        case '"':
            out += "\\\"";
            continue;
        case '\\':
            out += "\\\\";
            continue;
        case '\n':
            out += "\\n";
            continue;
        case '\r':
            out += "\\r";
            continue;
        case '\t':
            out += "\\t";
            continue;
        case '<':
        case '>':
        case '&':
            u00(c);
            continue;
        case '\'':
        case '=':
            if (json) break;
            if (c == '\'')
                out += "\\'";
            else
                u00(c);
            continue;
        default:
            break;
        }
        if (c < 0x20) {
            u00(c);
        } else if (json && c == 0xE2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
                   (static_cast<unsigned char>(s[i + 2]) == 0xA8 || static_cast<unsigned char>(s[i + 2]) == 0xA9)) {
            out += static_cast<unsigned char>(s[i + 2]) == 0xA8 ? "\\u2028" : "\\u2029";
            i += 2;
        } else {
            out.push_back(static_cast<char>(c));
        }
    }
}

std::string format_v(const Val& v) {
    switch (v.k) {
    case Val::K::nil:
        return "<nil>";
    case Val::K::boolean:
        return v.b ? "true" : "false";
    case Val::K::integer:
        return std::to_string(v.i);
    case Val::K::floating:
        return go_float(v.f);
    case Val::K::string:
        return primary(v);
    case Val::K::list: {
        std::string out = "[";
        bool first = true;
        for (const auto& it : v.list->items) {
            if (!first) out += " ";
            first = false;
            out += format_v(it);
        }
        return out + "]";
    }
    case Val::K::dict: {
        std::string out = "map[";
        bool first = true;
        for (const auto& [k, it] : v.dict->m) {
            if (!first) out += " ";
            first = false;
            out += k + ":" + format_v(it);
        }
        return out + "]";
    }
    case Val::K::unknown:
        return {};
    case Val::K::object:
    case Val::K::method:
        return "{}";
    }
    return {};
}

std::string type_name(const Val& v) {
    switch (v.k) {
    case Val::K::nil:
        return "<nil>";
    case Val::K::boolean:
        return "bool";
    case Val::K::integer:
        return "int";
    case Val::K::floating:
        return "float64";
    case Val::K::string:
        return "string";
    case Val::K::list:
        return "[]interface {}";
    case Val::K::dict:
        return "map[string]interface {}";
    case Val::K::unknown:
        return "<unknown>";
    case Val::K::object:
        return "*chartutil." + v.name;
    case Val::K::method:
        return "func";
    }
    return {};
}

std::string kind_name(const Val& v) {
    switch (v.k) {
    case Val::K::nil:
        return "invalid";
    case Val::K::boolean:
        return "bool";
    case Val::K::integer:
        return "int";
    case Val::K::floating:
        return "float64";
    case Val::K::string:
        return "string";
    case Val::K::list:
        return "slice";
    case Val::K::dict:
        return "map";
    case Val::K::unknown:
        return "unknown";
    case Val::K::object:
        return "ptr";
    case Val::K::method:
        return "func";
    }
    return {};
}

Srcs srcs_of(const Val& v) {
    Srcs out = v.srcs;
    for (const auto& s : v.segs) add_srcs(out, s.srcs);
    return out;
}

std::string why_of(const Val& v) {
    if (v.k == Val::K::unknown) return v.why;
    for (const auto& s : v.segs)
        if (!s.why.empty()) return s.why;
    return {};
}

bool truth(const Val& v) {
    switch (v.k) {
    case Val::K::nil:
        return false;
    case Val::K::boolean:
        return v.b;
    case Val::K::integer:
        return v.i != 0;
    case Val::K::floating:
        return v.f != 0;
    case Val::K::string:
        for (const auto& s : v.segs)
            if (s.rel == 0 && !s.text.empty()) return true;
        return false;
    case Val::K::list:
        return !v.list->items.empty();
    case Val::K::dict:
        return !v.dict->m.empty();
    case Val::K::unknown:
        return false;
    case Val::K::object:
    case Val::K::method:
        return true;
    }
    return false;
}

void add_val_srcs(Val& v, const Srcs& s) {
    if (s.empty()) return;
    if (v.k == Val::K::string) {
        if (v.segs.empty()) v.segs.push_back(Seg{});
        for (auto& seg : v.segs) add_srcs(seg.srcs, s);
    } else {
        add_srcs(v.srcs, s);
    }
}

std::vector<Seg> print_segs(const Val& v) {
    switch (v.k) {
    case Val::K::string:
        return v.segs;
    case Val::K::nil:
        return {Seg{"", v.srcs, "", 0, 0}};
    case Val::K::unknown:
        return {Seg{"", v.srcs, v.why.empty() ? "not evaluated" : v.why, 0, 0}};
    default:
        return {Seg{format_v(v), srcs_of(v), "", 0, 0}};
    }
}

Val deep_copy(const Val& v, int made_alt) {
    if (v.k == Val::K::list) {
        Val out = make_list(made_alt, v.srcs);
        for (const auto& it : v.list->items) out.list->items.push_back(deep_copy(it, made_alt));
        return out;
    }
    if (v.k == Val::K::dict) {
        Val out = make_dict(made_alt, v.srcs);
        for (const auto& [k, it] : v.dict->m) out.dict->m[k] = deep_copy(it, made_alt);
        return out;
    }
    return v;
}

// ---------------------------------------------------------------------------------------------
// toYaml

namespace {

bool is_one_of(std::string_view s, std::initializer_list<std::string_view> l) {
    return std::find(l.begin(), l.end(), s) != l.end();
}

/// Whether go-yaml v2 would read the plain scalar `s` as something other than a string.
bool resolves_non_string(const std::string& s) {
    if (s.empty()) return true;
    if (is_one_of(s, {"y",     "Y",     "yes",   "Yes",   "YES",   "n",     "N",    "no",   "No",   "NO",
                      "true",  "True",  "TRUE",  "false", "False", "FALSE", "on",   "On",   "ON",   "off",
                      "Off",   "OFF",   "~",     "null",  "Null",  "NULL",  ".inf", ".Inf", ".INF", "+.inf",
                      "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",  ".NaN", ".NAN", "<<"}))
        return true;
    std::string t;
    for (char c : s)
        if (c != '_') t.push_back(c);
    std::size_t i = 0;
    if (!t.empty() && (t[0] == '+' || t[0] == '-')) i = 1;
    if (i >= t.size()) return false;
    std::string_view b(t.data() + i, t.size() - i);
    auto all = [](std::string_view x, auto pred) { return !x.empty() && std::all_of(x.begin(), x.end(), pred); };
    if (b.size() > 2 && b[0] == '0' && (b[1] == 'x' || b[1] == 'b' || b[1] == 'o'))
        return all(b.substr(2), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
    // Integers, floats ("1.5", ".5", "1e3", "1.") and base 60 numbers ("1:20").
    bool digit = false, dot = false, exp = false, colon = false;
    for (std::size_t k = 0; k < b.size(); ++k) {
        char c = b[k];
        if (c >= '0' && c <= '9') {
            digit = true;
        } else if (c == '.' && !dot && !exp) {
            dot = true;
        } else if ((c == 'e' || c == 'E') && digit && !exp) {
            exp = true;
            if (k + 1 < b.size() && (b[k + 1] == '+' || b[k + 1] == '-')) ++k;
            if (k + 1 >= b.size()) return false;
        } else if (c == ':' && digit && !dot && !exp) {
            colon = true;
        } else {
            break;
        }
        if (k + 1 == b.size()) return digit || colon;
    }
    // Timestamps ("2001-12-14").
    if (s.size() >= 10 && std::isdigit(static_cast<unsigned char>(s[0])) && s[4] == '-' && s[7] == '-' &&
        all(std::string_view(s).substr(0, 4), [](char c) { return c >= '0' && c <= '9'; }))
        return true;
    return false;
}

/// Whether the emitter allows `s` as a plain scalar (no indicators, ": ", " #", edges).
bool plain_allowed(const std::string& s) {
    if (s.empty()) return false;
    if (s.rfind("---", 0) == 0 || s.rfind("...", 0) == 0) return false;
    char c0 = s[0];
    if (std::string_view(",[]{}#&*!|>'\"%@`").find(c0) != std::string_view::npos) return false;
    if ((c0 == '-' || c0 == '?' || c0 == ':') && (s.size() == 1 || s[1] == ' ' || s[1] == '\t')) return false;
    if (s.front() == ' ' || s.back() == ' ' || s.front() == '\t' || s.back() == '\t') return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 && c != '\t') return false;
        if (c == ':' && (i + 1 == s.size() || s[i + 1] == ' ' || s[i + 1] == '\t')) return false;
        if (c == '#' && i > 0 && (s[i - 1] == ' ' || s[i - 1] == '\t')) return false;
    }
    return true;
}

std::string double_quoted(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\t':
            out += "\\t";
            break;
        case '\r':
            out += "\\r";
            break;
        default:
            if (c < 0x20 || c == 0x7f)
                out += fmt::format("\\x{:02X}", c);
            else
                out.push_back(static_cast<char>(c));
        }
    }
    return out + "\"";
}

/// A scalar string as go-yaml v2 writes it in block context.
std::string yaml_scalar(const std::string& s) {
    if (resolves_non_string(s)) return double_quoted(s);
    if (plain_allowed(s)) return s;
    bool printable = std::all_of(s.begin(), s.end(), [](char c) {
        unsigned char u = static_cast<unsigned char>(c);
        return u >= 0x20 || c == '\t';
    });
    if (!printable) return double_quoted(s);
    std::string out = "'";
    for (char c : s) {
        if (c == '\'')
            out += "''";
        else
            out.push_back(c);
    }
    return out + "'";
}

std::string yaml_number(const Val& v) {
    if (v.k == Val::K::integer) return std::to_string(v.i);
    double f = v.f;
    if (std::isnan(f)) return ".nan";
    if (std::isinf(f)) return f > 0 ? ".inf" : "-.inf";
    if (std::floor(f) == f && std::fabs(f) < 9.2e18) return std::to_string(static_cast<std::int64_t>(f));
    return go_float(f);
}

class YamlWriter {
public:
    std::vector<Seg> out;

    void text(const std::string& t) { append_seg(out, Seg{t, {}, "", 0, 0}); }
    void pad(int n) { text(std::string(static_cast<std::size_t>(n), ' ')); }

    /// Writes a scalar or an empty container after "key: " or "- " (no newline).
    bool inline_value(const Val& v, int indent) {
        switch (v.k) {
        case Val::K::nil:
            append_seg(out, Seg{"null", v.srcs, "", 0, 0});
            return true;
        case Val::K::boolean:
            append_seg(out, Seg{v.b ? "true" : "false", v.srcs, "", 0, 0});
            return true;
        case Val::K::integer:
        case Val::K::floating:
            append_seg(out, Seg{yaml_number(v), v.srcs, "", 0, 0});
            return true;
        case Val::K::unknown:
            append_seg(out, Seg{"", v.srcs, v.why, 0, 0});
            return true;
        case Val::K::object:
        case Val::K::method:
            text("{}");
            return true;
        case Val::K::string: {
            std::string s = primary(v);
            std::string why = why_of(v);
            Srcs srcs = srcs_of(v);
            if (!why.empty() && s.empty()) {
                append_seg(out, Seg{"", srcs, why, 0, 0});
                return true;
            }
            if (s.find('\n') != std::string::npos) {
                literal(s, srcs, indent);
                return true;
            }
            append_seg(out, Seg{yaml_scalar(s), srcs, "", 0, 0});
            return true;
        }
        case Val::K::list:
            if (v.list->items.empty()) {
                append_seg(out, Seg{"[]", v.srcs, "", 0, 0});
                return true;
            }
            return false;
        case Val::K::dict:
            if (v.dict->m.empty()) {
                append_seg(out, Seg{"{}", v.srcs, "", 0, 0});
                return true;
            }
            return false;
        }
        return true;
    }

    /// A multi-line string in literal style; `indent` is the indentation of its key.
    void literal(const std::string& s, const Srcs& srcs, int indent) {
        std::string head = "|";
        std::size_t trailing = 0;
        while (trailing < s.size() && s[s.size() - 1 - trailing] == '\n') ++trailing;
        if (trailing == 0)
            head += "-";
        else if (trailing > 1)
            head += "+";
        if (!s.empty() && s[0] == ' ') head += "2";
        std::string body;
        std::string ind(static_cast<std::size_t>(indent + 2), ' ');
        std::size_t start = 0;
        std::string content = trailing ? s.substr(0, s.size() - trailing) : s;
        while (start <= content.size()) {
            std::size_t nl = content.find('\n', start);
            std::string line = content.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
            body += "\n" + (line.empty() ? "" : ind + line);
            if (nl == std::string::npos) break;
            start = nl + 1;
        }
        for (std::size_t k = 1; k < trailing; ++k) body += "\n";
        append_seg(out, Seg{head + body, srcs, "", 0, 0});
    }

    void node(const Val& v, int indent) {
        if (v.k == Val::K::dict && !v.dict->m.empty()) {
            bool first = true;
            for (const auto& [k, e] : v.dict->m) {
                if (!first) pad(indent);
                first = false;
                entry(k, e, indent);
            }
            return;
        }
        if (v.k == Val::K::list && !v.list->items.empty()) {
            bool first = true;
            for (const auto& e : v.list->items) {
                if (!first) pad(indent);
                first = false;
                text("- ");
                if (inline_value(e, indent)) {
                    text("\n");
                } else {
                    node(e, indent + 2);
                }
            }
            return;
        }
        inline_value(v, indent);
        text("\n");
    }

    void entry(const std::string& k, const Val& e, int indent) {
        text(yaml_scalar(k) + ":");
        bool scalar = !((e.k == Val::K::dict && !e.dict->m.empty()) || (e.k == Val::K::list && !e.list->items.empty()));
        if (scalar) {
            text(" ");
            inline_value(e, indent);
            text("\n");
            return;
        }
        text("\n");
        // go-yaml v2 does not indent a sequence under a mapping key.
        int child = e.k == Val::K::list ? indent : indent + 2;
        pad(child);
        node(e, child);
    }
};

void json_string(std::string& out, const std::string& s) {
    out += '"';
    js_escape(out, s, JsEscape::json);
    out += '"';
}

std::string json_number(double f) {
    if (std::floor(f) == f && std::fabs(f) < 1e21) return fmt::format("{:.0f}", f);
    double a = std::fabs(f);
    char buf[64];
    if (a >= 1e-6 && a < 1e21) {
        auto r = std::to_chars(buf, buf + sizeof buf, f, std::chars_format::fixed);
        return std::string(buf, r.ptr);
    }
    auto r = std::to_chars(buf, buf + sizeof buf, f, std::chars_format::scientific);
    std::string s(buf, r.ptr);
    // Go writes e-07 as e-7.
    auto e = s.find('e');
    if (e != std::string::npos && e + 2 < s.size() && s[e + 2] == '0') s.erase(e + 2, 1);
    return s;
}

/// JSON text as segments: each string scalar keeps its own origins (so that a reference
/// inside a toJson result is attributed to its value, not to the whole map).
struct JsonWriter {
    std::vector<Seg> out;
    bool pretty = false;

    void text(const std::string& t, Srcs srcs = {}) { append_seg(out, Seg{t, std::move(srcs), "", 0, 0}); }
    void nl(int n) {
        if (pretty) text("\n" + std::string(static_cast<std::size_t>(n) * 2, ' '));
    }
    void node(const Val& v, int indent) {
        switch (v.k) {
        case Val::K::nil:
        case Val::K::unknown:
        case Val::K::object:
        case Val::K::method:
            text("null");
            return;
        case Val::K::boolean:
            text(v.b ? "true" : "false", v.srcs);
            return;
        case Val::K::integer:
            text(std::to_string(v.i), v.srcs);
            return;
        case Val::K::floating:
            text(json_number(v.f), v.srcs);
            return;
        case Val::K::string: {
            std::string s;
            json_string(s, primary(v));
            text(s, srcs_of(v));
            return;
        }
        case Val::K::list: {
            if (v.list->items.empty()) {
                text("[]");
                return;
            }
            text("[");
            bool first = true;
            for (const auto& e : v.list->items) {
                if (!first) text(",");
                first = false;
                nl(indent + 1);
                node(e, indent + 1);
            }
            nl(indent);
            text("]");
            return;
        }
        case Val::K::dict: {
            if (v.dict->m.empty()) {
                text("{}");
                return;
            }
            text("{");
            bool first = true;
            for (const auto& [k, e] : v.dict->m) {
                if (!first) text(",");
                first = false;
                nl(indent + 1);
                std::string key;
                json_string(key, k);
                text(key + (pretty ? ": " : ":"));
                node(e, indent + 1);
            }
            nl(indent);
            text("}");
            return;
        }
        }
    }
};

} // namespace

std::vector<Seg> to_yaml(const Val& v) {
    YamlWriter w;
    w.node(v, 0);
    // helm's toYaml trims the final newline.
    while (!w.out.empty()) {
        auto& last = w.out.back();
        if (!last.text.empty() && last.text.back() == '\n') {
            last.text.pop_back();
            break;
        }
        if (last.text.empty() && last.why.empty()) {
            w.out.pop_back();
            continue;
        }
        break;
    }
    return w.out;
}

std::vector<Seg> to_json_segs(const Val& v, bool pretty) {
    JsonWriter w;
    w.pretty = pretty;
    w.node(v, 0);
    return w.out;
}

std::string to_json(const Val& v, bool pretty) {
    std::string out;
    for (const auto& s : to_json_segs(v, pretty)) out += s.text;
    return out;
}

} // namespace aas::chart::tmpl::detail
