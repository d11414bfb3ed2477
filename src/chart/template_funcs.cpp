// The function library: Go's template builtins and the sprig/helm functions charts use.
//
// Results carry the origins of their arguments. Functions that build strings by joining
// (printf, print, quote, indent, nindent, trim, toYaml) keep their inputs' segments, so output
// stays attributed to the value it came from; functions that compute on text work on the
// text of the path the values take and return one segment.

#include "template_impl.hpp"

#include "aas_bundle/oci/digest.hpp"
#include "aas_bundle/util/strings.hpp"

#include <fmt/format.h>
#include <re2/re2.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstring>
#include <functional>
#include <unordered_map>

namespace aas::chart::tmpl::detail {
namespace {

using Args = std::vector<Val>;

constexpr std::int64_t max_list = 100000;

// ---- helpers ---------------------------------------------------------------------------------

Srcs all_srcs(const Args& a) {
    Srcs s;
    for (const auto& v : a) add_srcs(s, srcs_of(v));
    return s;
}

/// Origins of the segments on the path the values take.
Srcs primary_srcs(const Val& v) {
    if (!v.is_str()) return srcs_of(v);
    Srcs s;
    for (const auto& seg : v.segs)
        if (seg.rel == 0) add_srcs(s, seg.srcs);
    return s;
}

/// A one-segment string with the origins of `from`.
Val str_from(std::string text, const Args& from) {
    return make_str(std::move(text), all_srcs(from));
}

/// sprig's strval: strings as they are, everything else with %v (nil: "<nil>").
std::string strval(const Val& v) {
    return v.is_str() ? primary(v) : format_v(v);
}

std::int64_t to_int(const Val& v) {
    switch (v.k) {
    case Val::K::integer:
        return v.i;
    case Val::K::floating:
        if (std::isnan(v.f)) return 0;
        return static_cast<std::int64_t>(v.f);
    case Val::K::boolean:
        return v.b ? 1 : 0;
    case Val::K::string: {
        std::string s = primary(v);
        s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
        if (s.empty()) return 0;
        char* end = nullptr;
        long long i = std::strtoll(s.c_str(), &end, 0);
        if (end == s.c_str() + s.size()) return i;
        double d = std::strtod(s.c_str(), &end);
        if (end == s.c_str() + s.size()) return static_cast<std::int64_t>(d);
        return 0;
    }
    default:
        return 0;
    }
}

double to_float(const Val& v) {
    switch (v.k) {
    case Val::K::integer:
        return static_cast<double>(v.i);
    case Val::K::floating:
        return v.f;
    case Val::K::boolean:
        return v.b ? 1 : 0;
    case Val::K::string: {
        std::string s = primary(v);
        char* end = nullptr;
        double d = std::strtod(s.c_str(), &end);
        return end == s.c_str() + s.size() ? d : 0;
    }
    default:
        return 0;
    }
}

bool empty(const Val& v) {
    return !truth(v);
}

[[noreturn]] void fail(const std::string& msg) {
    throw EvalError(msg);
}

const Val& need_dict(const Val& v, const char* what) {
    if (v.k != Val::K::dict) fail(fmt::format("{} needs a map, got {}", what, type_name(v)));
    return v;
}

/// A list's items; nil is an empty list, a single non-list value a list of one.
std::vector<Val> items_of(const Val& v, const char* what) {
    if (v.k == Val::K::list) return v.list->items;
    if (v.is_nil()) return {};
    fail(fmt::format("{} needs a list, got {}", what, type_name(v)));
}

/// Segment-wise text map (each segment's text transformed, attributes kept).
template <typename F> Val map_segs(const Val& v, F&& f) {
    Val out = v;
    for (auto& s : out.segs) s.text = f(s.text);
    return out;
}

/// Segments of a value printed as %v/%s (strings keep theirs).
std::vector<Seg> v_segs(const Val& v) {
    if (v.is_str()) return v.segs;
    if (v.is_unknown()) return {Seg{"", v.srcs, v.why.empty() ? "not evaluated" : v.why, 0, 0}};
    return {Seg{format_v(v), srcs_of(v), "", 0, 0}};
}

bool deep_equal(const Val& a, const Val& b) {
    if (a.is_num() && b.is_num()) return to_float(a) == to_float(b);
    if (a.k != b.k) return false;
    switch (a.k) {
    case Val::K::nil:
        return true;
    case Val::K::boolean:
        return a.b == b.b;
    case Val::K::string:
        return primary(a) == primary(b);
    case Val::K::list:
        if (a.list->items.size() != b.list->items.size()) return false;
        for (std::size_t i = 0; i < a.list->items.size(); ++i)
            if (!deep_equal(a.list->items[i], b.list->items[i])) return false;
        return true;
    case Val::K::dict:
        if (a.dict->m.size() != b.dict->m.size()) return false;
        for (const auto& [k, v] : a.dict->m) {
            auto it = b.dict->m.find(k);
            if (it == b.dict->m.end() || !deep_equal(v, it->second)) return false;
        }
        return true;
    default:
        return false;
    }
}

// ---- Go builtins -----------------------------------------------------------------------------

Val f_not(Exec&, Args& a) {
    return make_bool(!truth(a[0]), srcs_of(a[0]));
}

enum class Basic { nil, boolean, number, string, other };

Basic basic(const Val& v) {
    switch (v.k) {
    case Val::K::nil:
        return Basic::nil;
    case Val::K::boolean:
        return Basic::boolean;
    case Val::K::integer:
    case Val::K::floating:
        return Basic::number;
    case Val::K::string:
        return Basic::string;
    default:
        return Basic::other;
    }
}

bool eq2(const Val& a, const Val& b) {
    Basic ka = basic(a), kb = basic(b);
    if (ka == Basic::nil || kb == Basic::nil) return ka == kb;
    if (ka != kb) fail("incompatible types for comparison");
    switch (ka) {
    case Basic::boolean:
        return a.b == b.b;
    case Basic::number:
        if (a.k == Val::K::integer && b.k == Val::K::integer) return a.i == b.i;
        return to_float(a) == to_float(b);
    case Basic::string:
        return primary(a) == primary(b);
    default:
        fail("non-comparable type");
    }
}

Val f_eq(Exec&, Args& a) {
    for (std::size_t i = 1; i < a.size(); ++i)
        if (eq2(a[0], a[i])) return make_bool(true, all_srcs(a));
    return make_bool(false, all_srcs(a));
}

Val f_ne(Exec&, Args& a) {
    return make_bool(!eq2(a[0], a[1]), all_srcs(a));
}

int cmp(const Val& a, const Val& b) {
    Basic ka = basic(a), kb = basic(b);
    if (ka != kb || (ka != Basic::number && ka != Basic::string)) {
        if (ka == Basic::nil || kb == Basic::nil || ka == Basic::other || kb == Basic::other || ka == Basic::boolean)
            fail("invalid type for comparison");
        fail("incompatible types for comparison");
    }
    if (ka == Basic::string) {
        std::string x = primary(a), y = primary(b);
        return x < y ? -1 : x > y ? 1 : 0;
    }
    if (a.k == Val::K::integer && b.k == Val::K::integer) return a.i < b.i ? -1 : a.i > b.i ? 1 : 0;
    double x = to_float(a), y = to_float(b);
    return x < y ? -1 : x > y ? 1 : 0;
}

Val f_lt(Exec&, Args& a) {
    return make_bool(cmp(a[0], a[1]) < 0);
}
Val f_le(Exec&, Args& a) {
    return make_bool(cmp(a[0], a[1]) <= 0);
}
Val f_gt(Exec&, Args& a) {
    return make_bool(cmp(a[0], a[1]) > 0);
}
Val f_ge(Exec&, Args& a) {
    return make_bool(cmp(a[0], a[1]) >= 0);
}

Val f_len(Exec&, Args& a) {
    const Val& v = a[0];
    switch (v.k) {
    case Val::K::string:
        return make_int(static_cast<std::int64_t>(primary(v).size()), srcs_of(v));
    case Val::K::list:
        return make_int(static_cast<std::int64_t>(v.list->items.size()), v.srcs);
    case Val::K::dict:
        return make_int(static_cast<std::int64_t>(v.dict->m.size()), v.srcs);
    case Val::K::nil:
        fail("len of nil pointer");
    default:
        fail(fmt::format("len of type {}", type_name(v)));
    }
}

Val f_index(Exec&, Args& a) {
    Val cur = a[0];
    for (std::size_t i = 1; i < a.size(); ++i) {
        const Val& k = a[i];
        if (cur.k == Val::K::list) {
            if (!k.is_num()) fail(fmt::format("cannot index slice/array with type {}", type_name(k)));
            std::int64_t n = to_int(k);
            if (n < 0 || n >= static_cast<std::int64_t>(cur.list->items.size()))
                fail(fmt::format("index out of range: {}", n));
            Val next = cur.list->items[static_cast<std::size_t>(n)];
            cur = std::move(next);
        } else if (cur.k == Val::K::dict) {
            auto it = cur.dict->m.find(strval(k));
            if (it == cur.dict->m.end()) return make_nil();
            Val next = it->second;
            cur = std::move(next);
        } else if (cur.k == Val::K::string) {
            std::string s = primary(cur);
            std::int64_t n = to_int(k);
            if (n < 0 || n >= static_cast<std::int64_t>(s.size())) fail(fmt::format("index out of range: {}", n));
            cur = make_int(static_cast<unsigned char>(s[static_cast<std::size_t>(n)]), srcs_of(cur));
        } else if (cur.is_nil()) {
            fail("index of untyped nil");
        } else {
            fail(fmt::format("can't index item of type {}", type_name(cur)));
        }
    }
    return cur;
}

Val f_slice(Exec& ex, Args& a) {
    const Val& v = a[0];
    std::int64_t size = v.k == Val::K::list     ? static_cast<std::int64_t>(v.list->items.size())
                        : v.k == Val::K::string ? static_cast<std::int64_t>(primary(v).size())
                                                : -1;
    if (size < 0) fail(fmt::format("can't slice item of type {}", type_name(v)));
    std::int64_t from = a.size() > 1 ? to_int(a[1]) : 0;
    std::int64_t to = a.size() > 2 ? to_int(a[2]) : size;
    if (from < 0 || to < from || to > size)
        fail(fmt::format("index out of range: {}", from < 0 || to < from ? from : to));
    if (v.k == Val::K::string)
        return make_str(primary(v).substr(static_cast<std::size_t>(from), static_cast<std::size_t>(to - from)),
                        srcs_of(v));
    Val out = make_list(ex.alt(), v.srcs);
    out.list->items.assign(v.list->items.begin() + from, v.list->items.begin() + to);
    return out;
}

// printf, as fmt.Sprintf does it for the verbs templates use.
struct Spec {
    bool minus = false, plus = false, sharp = false, zero = false, space = false;
    int width = -1, prec = -1;
    char verb = 'v';
};

std::string pad(std::string s, const Spec& sp, bool numeric) {
    if (sp.width < 0 || static_cast<int>(s.size()) >= sp.width) return s;
    std::size_t n = static_cast<std::size_t>(sp.width) - s.size();
    if (sp.minus) return s + std::string(n, ' ');
    if (sp.zero && numeric) {
        std::size_t sign = !s.empty() && (s[0] == '-' || s[0] == '+') ? 1 : 0;
        return s.substr(0, sign) + std::string(n, '0') + s.substr(sign);
    }
    return std::string(n, ' ') + s;
}

std::string bad_verb(const Spec& sp, const Val& v) {
    if (v.is_nil()) return fmt::format("%!{}(<nil>)", sp.verb);
    return fmt::format("%!{}({}={})", sp.verb, type_name(v), format_v(v));
}

std::string fmt_int(std::int64_t i, const Spec& sp) {
    std::string s;
    switch (sp.verb) {
    case 'd':
        s = std::to_string(i);
        break;
    case 'x':
        s = fmt::format("{:x}", i);
        break;
    case 'X':
        s = fmt::format("{:X}", i);
        break;
    case 'o':
        s = fmt::format("{:o}", i);
        break;
    case 'b':
        s = fmt::format("{:b}", i);
        break;
    case 'c': {
        std::string out;
        auto cp = static_cast<std::uint32_t>(i);
        if (cp < 0x80)
            out.push_back(static_cast<char>(cp));
        else if (cp < 0x800) {
            out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        } else {
            out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        }
        return pad(out, sp, false);
    }
    case 'q':
        return pad("'" + std::string(1, static_cast<char>(i)) + "'", sp, false);
    case 'U':
        s = fmt::format("U+{:04X}", i);
        break;
    default:
        s = std::to_string(i);
    }
    if (sp.prec >= 0 && static_cast<int>(s.size()) < sp.prec) {
        bool neg = !s.empty() && s[0] == '-';
        std::string digits = neg ? s.substr(1) : s;
        if (static_cast<int>(digits.size()) < sp.prec)
            digits = std::string(static_cast<std::size_t>(sp.prec) - digits.size(), '0') + digits;
        s = (neg ? "-" : "") + digits;
    }
    if (sp.plus && i >= 0 && (sp.verb == 'd')) s = "+" + s;
    return pad(s, sp, sp.prec < 0);
}

std::string fmt_float(double f, const Spec& sp) {
    std::string s;
    int prec = sp.prec;
    switch (sp.verb) {
    case 'f':
    case 'F':
        s = fmt::format("{:.{}f}", f, prec < 0 ? 6 : prec);
        break;
    case 'e':
        s = fmt::format("{:.{}e}", f, prec < 0 ? 6 : prec);
        break;
    case 'E':
        s = fmt::format("{:.{}E}", f, prec < 0 ? 6 : prec);
        break;
    case 'g':
    case 'G':
    case 'v':
        s = prec < 0 ? go_float(f) : fmt::format("{:.{}g}", f, prec);
        break;
    default:
        s = go_float(f);
    }
    if (sp.plus && f >= 0) s = "+" + s;
    return pad(s, sp, true);
}

/// Reads the flags, width and precision of a printf directive from format[j] on, leaving `j`
/// at its verb; a '*' width or precision is the next argument (a[argi]).
Spec read_directive(const std::string& format, std::size_t& j, const Args& a, std::size_t& argi) {
    Spec sp;
    for (; j < format.size(); ++j) {
        char f = format[j];
        if (f == '-')
            sp.minus = true;
        else if (f == '+')
            sp.plus = true;
        else if (f == '#')
            sp.sharp = true;
        else if (f == '0')
            sp.zero = true;
        else if (f == ' ')
            sp.space = true;
        else
            break;
    }
    auto number = [&](int& target) {
        if (j < format.size() && format[j] == '*') {
            target = argi < a.size() ? static_cast<int>(to_int(a[argi++])) : 0;
            ++j;
            return;
        }
        int n = -1;
        while (j < format.size() && format[j] >= '0' && format[j] <= '9') {
            n = (n < 0 ? 0 : n * 10) + (format[j] - '0');
            if (n > 1000000) n = 1000000;
            ++j;
        }
        target = n;
    };
    number(sp.width);
    if (j < format.size() && format[j] == '.') {
        ++j;
        number(sp.prec);
        if (sp.prec < 0) sp.prec = 0;
    }
    return sp;
}

/// The text of operand `v` under directive `sp` (Go's fmt; "%!verb(type=value)" for a verb
/// that does not fit the value).
std::string format_operand(const Spec& sp, const Val& v) {
    std::string text;
    switch (sp.verb) {
    case 's':
    case 'v':
        if (v.is_str() || sp.verb == 'v' || v.k == Val::K::list || v.k == Val::K::dict || v.is_unknown()) {
            text = v.is_nil() && sp.verb == 'v' ? "<nil>" : strval(v);
            if (sp.prec >= 0 && static_cast<int>(text.size()) > sp.prec) text.resize(static_cast<std::size_t>(sp.prec));
            text = pad(text, sp, false);
        } else {
            text = bad_verb(sp, v);
        }
        break;
    case 'q':
        if (v.is_str())
            text = pad(go_quote(primary(v)), sp, false);
        else if (v.k == Val::K::integer)
            text = fmt_int(v.i, sp);
        else
            text = bad_verb(sp, v);
        break;
    case 't':
        text = v.k == Val::K::boolean ? pad(v.b ? "true" : "false", sp, false) : bad_verb(sp, v);
        break;
    case 'd':
    case 'o':
    case 'b':
    case 'c':
    case 'U':
        text = v.k == Val::K::integer ? fmt_int(v.i, sp) : bad_verb(sp, v);
        break;
    case 'x':
    case 'X':
        if (v.k == Val::K::integer) {
            text = fmt_int(v.i, sp);
        } else if (v.is_str()) {
            std::string s = primary(v);
            for (unsigned char ch : s) text += sp.verb == 'x' ? fmt::format("{:02x}", ch) : fmt::format("{:02X}", ch);
            text = pad(text, sp, false);
        } else {
            text = bad_verb(sp, v);
        }
        break;
    case 'e':
    case 'E':
    case 'f':
    case 'F':
    case 'g':
    case 'G':
        text = v.k == Val::K::floating ? fmt_float(v.f, sp) : bad_verb(sp, v);
        break;
    default:
        text = bad_verb(sp, v);
    }
    return text;
}

/// Go's "%!(EXTRA type=value, ...)" for the arguments from a[argi] on that no directive used.
std::string extra_operands(const Args& a, std::size_t argi) {
    std::string lit = "%!(EXTRA ";
    for (std::size_t k = argi; k < a.size(); ++k) {
        if (k > argi) lit += ", ";
        lit += a[k].is_nil() ? "<nil>" : type_name(a[k]) + "=" + format_v(a[k]);
    }
    lit += ")";
    return lit;
}

Val f_printf(Exec&, Args& a) {
    std::string format = primary(a[0]);
    Srcs fsrcs = srcs_of(a[0]);
    std::vector<Seg> out;
    std::size_t argi = 1;
    std::string lit;
    auto flush = [&] {
        if (!lit.empty()) append_seg(out, Seg{lit, fsrcs, "", 0, 0});
        lit.clear();
    };
    for (std::size_t i = 0; i < format.size(); ++i) {
        char c = format[i];
        if (c != '%') {
            lit.push_back(c);
            continue;
        }
        if (i + 1 < format.size() && format[i + 1] == '%') {
            lit.push_back('%');
            ++i;
            continue;
        }
        std::size_t j = i + 1;
        Spec sp = read_directive(format, j, a, argi);
        if (j >= format.size()) {
            lit += "%!(NOVERB)";
            break;
        }
        sp.verb = format[j];
        i = j;
        if (argi >= a.size()) {
            lit += fmt::format("%!{}(MISSING)", sp.verb);
            continue;
        }
        const Val& v = a[argi++];
        if ((sp.verb == 's' || sp.verb == 'v') && (v.is_str() || v.is_unknown()) && sp.width < 0 && sp.prec < 0) {
            // A whole string keeps its segments (and their origins).
            flush();
            append_segs(out, v_segs(v));
            continue;
        }
        std::string text = format_operand(sp, v);
        flush();
        append_seg(out, Seg{text, srcs_of(v), why_of(v), 0, 0});
    }
    if (argi < a.size()) lit += extra_operands(a, argi);
    flush();
    if (out.empty()) return make_str("", fsrcs);
    return make_segs(std::move(out));
}

/// fmt.Sprint / Sprintln over template values.
Val sprint(const Args& a, bool ln) {
    std::vector<Seg> out;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (i > 0 && (ln || (!a[i].is_str() && !a[i - 1].is_str()))) append_seg(out, Seg{" ", {}, "", 0, 0});
        if (a[i].is_nil())
            append_seg(out, Seg{"<nil>", a[i].srcs, "", 0, 0});
        else
            append_segs(out, v_segs(a[i]));
    }
    if (ln) append_seg(out, Seg{"\n", {}, "", 0, 0});
    if (out.empty()) return make_str("");
    return make_segs(std::move(out));
}

Val f_print(Exec&, Args& a) {
    return sprint(a, false);
}
Val f_println(Exec&, Args& a) {
    return sprint(a, true);
}

Val f_html(Exec&, Args& a) {
    std::string s = primary(sprint(a, false));
    std::string out;
    for (char c : s) {
        switch (c) {
        case '&':
            out += "&amp;";
            break;
        case '\'':
            out += "&#39;";
            break;
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '"':
            out += "&#34;";
            break;
        case '\0':
            out += "\xEF\xBF\xBD";
            break;
        default:
            out.push_back(c);
        }
    }
    return str_from(out, a);
}

Val f_js(Exec&, Args& a) {
    std::string out;
    js_escape(out, primary(sprint(a, false)), JsEscape::template_js);
    return str_from(out, a);
}

Val f_urlquery(Exec&, Args& a) {
    std::string s = primary(sprint(a, false));
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
            out.push_back(static_cast<char>(c));
        else if (c == ' ')
            out.push_back('+');
        else
            out += fmt::format("%{:02X}", c);
    }
    return str_from(out, a);
}

// ---- defaults and flow -----------------------------------------------------------------------

Val f_default(Exec&, Args& a) {
    if (a.size() < 2) return a[0];
    const Val& given = a[1];
    if (given.is_unknown() || !empty(given)) return given;
    Val d = a[0];
    add_val_srcs(d, srcs_of(given));
    return d;
}

Val f_empty(Exec&, Args& a) {
    return make_bool(empty(a[0]), srcs_of(a[0]));
}

Val f_coalesce(Exec&, Args& a) {
    for (const auto& v : a) {
        if (v.is_unknown()) return v;
        if (!empty(v)) return v;
    }
    return make_nil(all_srcs(a));
}

Val f_ternary(Exec&, Args& a) {
    if (a[2].is_unknown()) return a[2];
    Val r = truth(a[2]) ? a[0] : a[1];
    add_val_srcs(r, srcs_of(a[2]));
    return r;
}

Val f_required(Exec& ex, Args& a) {
    const Val& v = a[1];
    if (v.is_unknown()) return v;
    if (v.is_nil() || (v.is_str() && primary(v).empty())) {
        if (ex.live()) ex.diag(fmt::format("required: {}", primary(a[0])));
        return make_str("", srcs_of(v));
    }
    return v;
}

Val f_fail(Exec& ex, Args& a) {
    if (ex.live()) ex.diag(fmt::format("fail: {}", strval(a[0])));
    return make_str("");
}

Val f_include(Exec& ex, Args& a) {
    if (a[0].is_unknown()) return a[0];
    return ex.include(strval(a[0]), a[1]);
}

Val f_tpl(Exec& ex, Args& a) {
    if (a[0].is_unknown()) return a[0];
    return ex.tpl(a[0], a[1]);
}

// `lookup` reads the cluster at install time: nothing offline can say what it returns.
Val f_lookup(Exec&, Args&) {
    return make_unknown("lookup reads the cluster at install time");
}

// ---- strings ---------------------------------------------------------------------------------

Val f_quote(Exec&, Args& a) {
    std::vector<Seg> out;
    bool first = true;
    for (const auto& v : a) {
        if (v.is_nil()) continue;
        if (!first) append_seg(out, Seg{" ", {}, "", 0, 0});
        first = false;
        std::vector<Seg> inner = v_segs(v);
        bool plain = std::all_of(inner.begin(), inner.end(), [](const Seg& s) {
            return std::none_of(s.text.begin(), s.text.end(), [](char c) {
                auto u = static_cast<unsigned char>(c);
                return c == '"' || c == '\\' || u < 0x20 || u == 0x7f;
            });
        });
        if (plain) {
            append_seg(out, Seg{"\"", {}, "", 0, 0});
            append_segs(out, inner);
            append_seg(out, Seg{"\"", {}, "", 0, 0});
        } else if (v.is_str() && why_of(v).empty()) {
            // Escaped segment by segment: each keeps its origins (quoted JSON text).
            append_seg(out, Seg{"\"", {}, "", 0, 0});
            for (const auto& s : inner) {
                if (s.rel != 0) continue;
                std::string q = go_quote(s.text);
                append_seg(out, Seg{q.substr(1, q.size() - 2), s.srcs, "", 0, 0});
            }
            append_seg(out, Seg{"\"", {}, "", 0, 0});
        } else {
            append_seg(out, Seg{go_quote(strval(v)), srcs_of(v), why_of(v), 0, 0});
        }
    }
    if (out.empty()) return make_str("");
    return make_segs(std::move(out));
}

Val f_squote(Exec&, Args& a) {
    std::vector<Seg> out;
    bool first = true;
    for (const auto& v : a) {
        if (v.is_nil()) continue;
        if (!first) append_seg(out, Seg{" ", {}, "", 0, 0});
        first = false;
        append_seg(out, Seg{"'", {}, "", 0, 0});
        append_segs(out, v_segs(v));
        append_seg(out, Seg{"'", {}, "", 0, 0});
    }
    if (out.empty()) return make_str("");
    return make_segs(std::move(out));
}

Val f_tostring(Exec&, Args& a) {
    const Val& v = a[0];
    if (v.is_str() || v.is_unknown()) return v;
    return make_str(format_v(v), srcs_of(v));
}

Val indent_impl(const Args& a, bool leading_newline) {
    std::int64_t n = to_int(a[0]);
    if (n < 0) n = 0;
    if (n > 1000) n = 1000;
    std::string padding(static_cast<std::size_t>(n), ' ');
    const Val& v = a[1];
    std::vector<Seg> out;
    append_seg(out, Seg{(leading_newline ? "\n" : "") + padding, {}, "", 0, 0});
    for (auto s : v_segs(v)) {
        std::string t;
        for (char c : s.text) {
            t.push_back(c);
            if (c == '\n') t += padding;
        }
        s.text = std::move(t);
        append_seg(out, std::move(s));
    }
    return make_segs(std::move(out));
}

Val f_indent(Exec&, Args& a) {
    return indent_impl(a, false);
}
Val f_nindent(Exec&, Args& a) {
    return indent_impl(a, true);
}

bool is_ws(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

Val f_trim(Exec&, Args& a) {
    Val v = a[0].is_str() ? a[0] : make_str(strval(a[0]), srcs_of(a[0]));
    if (v.is_unknown()) return v;
    for (auto& s : v.segs) {
        std::size_t b = 0;
        while (b < s.text.size() && is_ws(s.text[b])) ++b;
        s.text.erase(0, b);
        if (!s.text.empty()) break;
    }
    for (auto it = v.segs.rbegin(); it != v.segs.rend(); ++it) {
        while (!it->text.empty() && is_ws(it->text.back())) it->text.pop_back();
        if (!it->text.empty()) break;
    }
    return v;
}

Val f_trimall(Exec&, Args& a) {
    std::string cut = strval(a[0]);
    std::string s = str_arg(a[1]);
    std::size_t b = s.find_first_not_of(cut);
    if (b == std::string::npos) return str_from("", a);
    std::size_t e = s.find_last_not_of(cut);
    return str_from(s.substr(b, e - b + 1), a);
}

Val f_trimsuffix(Exec&, Args& a) {
    std::string suf = str_arg(a[0]);
    std::string s = str_arg(a[1]);
    if (!suf.empty() && s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0)
        s.resize(s.size() - suf.size());
    return make_str(s, primary_srcs(a[1]));
}

Val f_trimprefix(Exec&, Args& a) {
    std::string pre = str_arg(a[0]);
    std::string s = str_arg(a[1]);
    if (!pre.empty() && s.rfind(pre, 0) == 0) s.erase(0, pre.size());
    return make_str(s, primary_srcs(a[1]));
}

Val f_upper(Exec&, Args& a) {
    std::string s = str_arg(a[0]);
    for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return make_str(s, primary_srcs(a[0]));
}

Val f_lower(Exec&, Args& a) {
    std::string s = str_arg(a[0]);
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return make_str(s, primary_srcs(a[0]));
}

Val f_title(Exec&, Args& a) {
    std::string s = str_arg(a[0]);
    bool start = true;
    for (auto& c : s) {
        if (start && std::isalpha(static_cast<unsigned char>(c)))
            c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        start = is_ws(c) || c == '-' || c == '_';
    }
    return make_str(s, primary_srcs(a[0]));
}

Val f_untitle(Exec&, Args& a) {
    std::string s = str_arg(a[0]);
    bool start = true;
    for (auto& c : s) {
        if (start) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        start = is_ws(c);
    }
    return make_str(s, primary_srcs(a[0]));
}

Val f_replace(Exec&, Args& a) {
    std::string from = str_arg(a[0]), to = str_arg(a[1]), s = str_arg(a[2]);
    if (from.empty()) return make_str(s, all_srcs(a));
    std::string out;
    std::size_t p = 0;
    while (true) {
        std::size_t q = s.find(from, p);
        if (q == std::string::npos) break;
        out += s.substr(p, q - p) + to;
        p = q + from.size();
    }
    out += s.substr(p);
    return make_str(out, all_srcs(a));
}

Val f_contains(Exec&, Args& a) {
    return make_bool(str_arg(a[1]).find(str_arg(a[0])) != std::string::npos);
}
Val f_hasprefix(Exec&, Args& a) {
    return make_bool(str_arg(a[1]).rfind(str_arg(a[0]), 0) == 0);
}
Val f_hassuffix(Exec&, Args& a) {
    std::string s = str_arg(a[1]), suf = str_arg(a[0]);
    return make_bool(s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0);
}

Val f_trunc(Exec&, Args& a) {
    std::int64_t c = to_int(a[0]);
    std::string s = str_arg(a[1]);
    auto n = static_cast<std::int64_t>(s.size());
    if (c < 0 && n + c > 0)
        s = s.substr(static_cast<std::size_t>(n + c));
    else if (c >= 0 && n > c)
        s.resize(static_cast<std::size_t>(c));
    return make_str(s, primary_srcs(a[1]));
}

Val f_substr(Exec&, Args& a) {
    std::int64_t start = to_int(a[0]), end = to_int(a[1]);
    std::string s = str_arg(a[2]);
    auto n = static_cast<std::int64_t>(s.size());
    std::string r;
    if (start < 0)
        r = s.substr(0, static_cast<std::size_t>(std::clamp<std::int64_t>(end, 0, n)));
    else if (end < 0 || end > n)
        r = start <= n ? s.substr(static_cast<std::size_t>(start)) : "";
    else
        r = start <= end ? s.substr(static_cast<std::size_t>(start), static_cast<std::size_t>(end - start)) : "";
    return make_str(r, primary_srcs(a[2]));
}

std::vector<std::string> split_all(const std::string& s, const std::string& sep) {
    std::vector<std::string> out;
    if (sep.empty()) {
        for (char c : s) out.emplace_back(1, c);
        return out;
    }
    std::size_t p = 0;
    while (true) {
        std::size_t q = s.find(sep, p);
        if (q == std::string::npos) break;
        out.push_back(s.substr(p, q - p));
        p = q + sep.size();
    }
    out.push_back(s.substr(p));
    return out;
}

Val f_split(Exec& ex, Args& a) {
    Srcs srcs = primary_srcs(a[1]);
    Val d = make_dict(ex.alt(), srcs);
    auto parts = split_all(str_arg(a[1]), str_arg(a[0]));
    for (std::size_t i = 0; i < parts.size(); ++i) d.dict->m["_" + std::to_string(i)] = make_str(parts[i], srcs);
    return d;
}

Val f_splitlist(Exec& ex, Args& a) {
    Srcs srcs = primary_srcs(a[1]);
    Val l = make_list(ex.alt(), srcs);
    for (auto& p : split_all(str_arg(a[1]), str_arg(a[0]))) l.list->items.push_back(make_str(p, srcs));
    return l;
}

Val f_splitn(Exec& ex, Args& a) {
    Srcs srcs = primary_srcs(a[2]);
    Val d = make_dict(ex.alt(), srcs);
    auto parts = split_all(str_arg(a[2]), str_arg(a[0]));
    std::int64_t n = to_int(a[1]);
    if (n > 0 && static_cast<std::int64_t>(parts.size()) > n) {
        std::string sep = str_arg(a[0]);
        for (std::size_t i = static_cast<std::size_t>(n); i < parts.size(); ++i)
            parts[static_cast<std::size_t>(n - 1)] += sep + parts[i];
        parts.resize(static_cast<std::size_t>(n));
    }
    for (std::size_t i = 0; i < parts.size(); ++i) d.dict->m["_" + std::to_string(i)] = make_str(parts[i], srcs);
    return d;
}

/// sprig's strslice: list items (nil dropped) as strings; a string is a list of one.
std::vector<Val> strslice(const Val& v) {
    std::vector<Val> out;
    if (v.k == Val::K::list) {
        for (const auto& it : v.list->items)
            if (!it.is_nil()) out.push_back(it.is_str() || it.is_unknown() ? it : make_str(format_v(it), srcs_of(it)));
    } else if (!v.is_nil()) {
        out.push_back(v.is_str() || v.is_unknown() ? v : make_str(format_v(v), srcs_of(v)));
    }
    return out;
}

Val f_join(Exec&, Args& a) {
    std::string sep = str_arg(a[0]);
    std::vector<Seg> out;
    bool first = true;
    for (const auto& v : strslice(a[1])) {
        if (!first) append_seg(out, Seg{sep, srcs_of(a[0]), "", 0, 0});
        first = false;
        append_segs(out, v_segs(v));
    }
    if (out.empty()) return make_str("", srcs_of(a[1]));
    return make_segs(std::move(out));
}

Val f_cat(Exec&, Args& a) {
    std::vector<Seg> out;
    bool first = true;
    for (const auto& v : a) {
        if (v.is_nil()) continue;
        if (!first) append_seg(out, Seg{" ", {}, "", 0, 0});
        first = false;
        append_segs(out, v_segs(v));
    }
    if (out.empty()) return make_str("");
    return make_segs(std::move(out));
}

Val f_repeat(Exec&, Args& a) {
    std::int64_t n = to_int(a[0]);
    std::string s = str_arg(a[1]);
    if (n < 0) n = 0;
    if (static_cast<double>(n) * static_cast<double>(s.size()) > static_cast<double>(8u << 20))
        fail("repeat: result too large");
    std::string out;
    for (std::int64_t i = 0; i < n; ++i) out += s;
    return make_str(out, primary_srcs(a[1]));
}

Val f_nospace(Exec&, Args& a) {
    std::string s = str_arg(a[0]);
    std::erase_if(s, [](char c) { return is_ws(c); });
    return make_str(s, primary_srcs(a[0]));
}

std::vector<std::string> words(const std::string& s) {
    std::vector<std::string> out;
    std::string cur;
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '-' || c == '_' || is_ws(c) || c == '.') {
            if (!cur.empty()) out.push_back(cur);
            cur.clear();
            continue;
        }
        if (std::isupper(static_cast<unsigned char>(c)) && !cur.empty() &&
            std::islower(static_cast<unsigned char>(cur.back()))) {
            out.push_back(cur);
            cur.clear();
        }
        cur.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
    if (!cur.empty()) out.push_back(cur);
    return out;
}

Val f_kebabcase(Exec&, Args& a) {
    std::string out;
    for (const auto& w : words(str_arg(a[0]))) out += (out.empty() ? "" : "-") + w;
    return make_str(out, primary_srcs(a[0]));
}

Val f_snakecase(Exec&, Args& a) {
    std::string out;
    for (const auto& w : words(str_arg(a[0]))) out += (out.empty() ? "" : "_") + w;
    return make_str(out, primary_srcs(a[0]));
}

Val f_camelcase(Exec&, Args& a) {
    std::string out;
    for (auto w : words(str_arg(a[0]))) {
        if (!w.empty()) w[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(w[0])));
        out += w;
    }
    return make_str(out, primary_srcs(a[0]));
}

Val f_base(Exec&, Args& a) {
    std::string s = str_arg(a[0]);
    while (s.size() > 1 && s.back() == '/') s.pop_back();
    if (auto p = s.rfind('/'); p != std::string::npos && s.size() > 1) s = s.substr(p + 1);
    return make_str(s.empty() ? "." : s, primary_srcs(a[0]));
}

Val f_dir(Exec&, Args& a) {
    std::string s = str_arg(a[0]);
    auto p = s.rfind('/');
    if (p == std::string::npos) return make_str(".", primary_srcs(a[0]));
    s.resize(p);
    while (s.size() > 1 && s.back() == '/') s.pop_back();
    return make_str(s.empty() ? "/" : s, primary_srcs(a[0]));
}

Val f_ext(Exec&, Args& a) {
    std::string s = str_arg(a[0]);
    for (std::size_t i = s.size(); i > 0; --i) {
        if (s[i - 1] == '/') break;
        if (s[i - 1] == '.') return make_str(s.substr(i - 1), primary_srcs(a[0]));
    }
    return make_str("", primary_srcs(a[0]));
}

// ---- regular expressions ---------------------------------------------------------------------
// Go's regexp is RE2 syntax: RE2 itself evaluates it (Perl classes, (?i)/(?m)/(?s) flags,
// named groups (?P<name>…), no backreferences or lookaround, as in Go).

constexpr std::size_t max_regex_input = 1u << 20;

std::shared_ptr<const re2::RE2> compile(const std::string& re) {
    if (re.size() > 4096) fail("regular expression too long");
    static thread_local std::map<std::string, std::shared_ptr<const re2::RE2>> cache;
    if (auto it = cache.find(re); it != cache.end()) return it->second;
    re2::RE2::Options opt;
    opt.set_log_errors(false);
    opt.set_max_mem(8 << 20);
    auto compiled = std::make_shared<const re2::RE2>(re, opt);
    if (!compiled->ok()) fail(fmt::format("error parsing regexp: {}: `{}`", compiled->error(), re));
    if (cache.size() > 256) cache.clear();
    cache.emplace(re, compiled);
    return compiled;
}

std::string regex_input(const Val& v, const char* fn) {
    std::string s = str_arg(v);
    if (s.size() > max_regex_input) fail(fmt::format("{}: input over {} KiB", fn, max_regex_input >> 10));
    return s;
}

/// Every leftmost-first match of `re` in `s`, at most `n` when n >= 0, as Go's allMatches:
/// an empty match right after the previous match is not delivered.
std::vector<std::vector<re2::StringPiece>> find_all(const re2::RE2& re, const std::string& s, std::int64_t n) {
    std::vector<std::vector<re2::StringPiece>> out;
    int groups = re.NumberOfCapturingGroups() + 1;
    std::vector<re2::StringPiece> m(static_cast<std::size_t>(groups));
    re2::StringPiece text(s);
    std::size_t pos = 0;
    std::int64_t prev_end = -1;
    while ((n < 0 || static_cast<std::int64_t>(out.size()) < n) && pos <= s.size()) {
        if (!re.Match(text, pos, s.size(), re2::RE2::UNANCHORED, m.data(), groups)) break;
        auto b = static_cast<std::int64_t>(m[0].data() - s.data());
        auto e = b + static_cast<std::int64_t>(m[0].size());
        bool accept = true;
        if (e == static_cast<std::int64_t>(pos)) {
            if (b == prev_end) accept = false;
            // Past the next character (a UTF-8 sequence).
            std::size_t w = 1;
            if (pos < s.size()) {
                auto c = static_cast<unsigned char>(s[pos]);
                w = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
            }
            pos += w;
        } else {
            pos = static_cast<std::size_t>(e);
        }
        prev_end = e;
        if (accept) out.push_back(m);
    }
    return out;
}

/// Go's Regexp.Expand of `tmpl` for one match: $1, ${1}, $name, ${name}, $$.
std::string go_expand(const re2::RE2& re, const std::string& tmpl, const std::vector<re2::StringPiece>& m) {
    const auto& names = re.NamedCapturingGroups();
    std::string out;
    for (std::size_t i = 0; i < tmpl.size(); ++i) {
        char c = tmpl[i];
        if (c != '$' || i + 1 >= tmpl.size()) {
            out.push_back(c);
            continue;
        }
        if (tmpl[i + 1] == '$') {
            out.push_back('$');
            ++i;
            continue;
        }
        std::string name;
        std::size_t j = i + 1;
        bool brace = tmpl[j] == '{';
        if (brace) {
            std::size_t close = tmpl.find('}', j);
            if (close == std::string::npos) {
                out.push_back(c);
                continue;
            }
            name = tmpl.substr(j + 1, close - j - 1);
            j = close + 1;
        } else {
            while (j < tmpl.size() && (std::isalnum(static_cast<unsigned char>(tmpl[j])) || tmpl[j] == '_')) ++j;
            name = tmpl.substr(i + 1, j - i - 1);
        }
        if (name.empty()) {
            out.push_back(c);
            continue;
        }
        int idx = -1;
        if (std::all_of(name.begin(), name.end(), [](char d) { return d >= '0' && d <= '9'; })) {
            idx = name.size() > 6 ? -1 : std::stoi(name);
        } else if (auto it = names.find(name); it != names.end()) {
            idx = it->second;
        }
        if (idx >= 0 && static_cast<std::size_t>(idx) < m.size() && m[static_cast<std::size_t>(idx)].data())
            out.append(m[static_cast<std::size_t>(idx)].data(), m[static_cast<std::size_t>(idx)].size());
        i = j - 1;
    }
    return out;
}

std::string replace_all(const re2::RE2& re, const std::string& s, const std::string& repl, bool literal) {
    std::string out;
    std::size_t last = 0;
    for (const auto& m : find_all(re, s, -1)) {
        std::size_t b = static_cast<std::size_t>(m[0].data() - s.data());
        out.append(s, last, b - last);
        out += literal ? repl : go_expand(re, repl, m);
        last = b + m[0].size();
        if (out.size() > max_regex_input * 8) fail("regexReplaceAll: result too long");
    }
    out.append(s, last, std::string::npos);
    return out;
}

Val f_regexmatch(Exec&, Args& a) {
    std::string s = regex_input(a[1], "regexMatch");
    auto re = compile(str_arg(a[0]));
    return make_bool(re2::RE2::PartialMatch(s, *re));
}

Val f_regexfind(Exec&, Args& a) {
    std::string s = regex_input(a[1], "regexFind");
    auto re = compile(str_arg(a[0]));
    auto all = find_all(*re, s, 1);
    if (!all.empty()) return make_str(std::string(all[0][0].data(), all[0][0].size()), primary_srcs(a[1]));
    return make_str("", primary_srcs(a[1]));
}

Val f_regexfindall(Exec& ex, Args& a) {
    std::string s = regex_input(a[1], "regexFindAll");
    auto re = compile(str_arg(a[0]));
    std::int64_t n = to_int(a[2]);
    Val l = make_list(ex.alt());
    if (n == 0) return l;
    for (const auto& m : find_all(*re, s, n))
        l.list->items.push_back(make_str(std::string(m[0].data(), m[0].size()), primary_srcs(a[1])));
    return l;
}

Val f_regexreplaceall(Exec&, Args& a) {
    std::string s = regex_input(a[1], "regexReplaceAll");
    auto re = compile(str_arg(a[0]));
    return make_str(replace_all(*re, s, str_arg(a[2]), false), all_srcs(a));
}

Val f_regexreplaceallliteral(Exec&, Args& a) {
    std::string s = regex_input(a[1], "regexReplaceAllLiteral");
    auto re = compile(str_arg(a[0]));
    return make_str(replace_all(*re, s, str_arg(a[2]), true), all_srcs(a));
}

/// Go's Regexp.Split(s, n).
Val f_regexsplit(Exec& ex, Args& a) {
    std::string s = regex_input(a[1], "regexSplit");
    std::string expr = str_arg(a[0]);
    auto re = compile(expr);
    std::int64_t n = to_int(a[2]);
    Val l = make_list(ex.alt());
    auto srcs = primary_srcs(a[1]);
    if (n == 0) return l;
    if (!expr.empty() && s.empty()) {
        l.list->items.push_back(make_str("", srcs));
        return l;
    }
    std::size_t beg = 0, end = 0;
    for (const auto& m : find_all(*re, s, n)) {
        if (n > 0 && static_cast<std::int64_t>(l.list->items.size()) == n - 1) break;
        end = static_cast<std::size_t>(m[0].data() - s.data());
        if (end + m[0].size() != 0) l.list->items.push_back(make_str(s.substr(beg, end - beg), srcs));
        beg = end + m[0].size();
    }
    if (end != s.size()) l.list->items.push_back(make_str(s.substr(beg), srcs));
    return l;
}

Val f_regexquotemeta(Exec&, Args& a) {
    // Go's QuoteMeta escapes exactly `\.+*?()|[]{}^$`.
    std::string s = str_arg(a[0]), out;
    for (char c : s) {
        if (std::string_view("\\.+*?()|[]{}^$").find(c) != std::string_view::npos) out.push_back('\\');
        out.push_back(c);
    }
    return make_str(out, primary_srcs(a[0]));
}

// ---- lists and maps --------------------------------------------------------------------------

Val f_list(Exec& ex, Args& a) {
    Val l = make_list(ex.alt());
    l.list->items = a;
    return l;
}

Val f_dict(Exec& ex, Args& a) {
    Val d = make_dict(ex.alt());
    for (std::size_t i = 0; i < a.size(); i += 2) {
        std::string key = strval(a[i]);
        d.dict->m[key] = i + 1 < a.size() ? a[i + 1] : make_str("");
    }
    return d;
}

/// The map to change: itself, or a copy when it may not be changed here (see Exec::can_mutate).
Val writable(Exec& ex, const Val& d) {
    if (ex.can_mutate(d.dict->made_alt)) return d;
    return deep_copy(d, ex.alt());
}

Val f_get(Exec&, Args& a) {
    const Val& d = need_dict(a[0], "get");
    auto it = d.dict->m.find(strval(a[1]));
    if (it == d.dict->m.end()) return make_str("");
    return it->second;
}

Val f_set(Exec& ex, Args& a) {
    need_dict(a[0], "set");
    Val d = writable(ex, a[0]);
    d.dict->m[strval(a[1])] = a[2];
    return d;
}

Val f_unset(Exec& ex, Args& a) {
    need_dict(a[0], "unset");
    Val d = writable(ex, a[0]);
    d.dict->m.erase(strval(a[1]));
    return d;
}

Val f_haskey(Exec&, Args& a) {
    const Val& d = need_dict(a[0], "hasKey");
    return make_bool(d.dict->m.count(strval(a[1])) > 0, d.srcs);
}

Val f_keys(Exec& ex, Args& a) {
    Val l = make_list(ex.alt());
    std::vector<std::string> ks;
    for (const auto& d : a) {
        need_dict(d, "keys");
        for (const auto& [k, v] : d.dict->m) ks.push_back(k);
    }
    std::sort(ks.begin(), ks.end());
    for (auto& k : ks) l.list->items.push_back(make_str(k));
    return l;
}

Val f_values(Exec& ex, Args& a) {
    Val l = make_list(ex.alt());
    for (const auto& [k, v] : need_dict(a[0], "values").dict->m) l.list->items.push_back(v);
    return l;
}

Val f_pluck(Exec& ex, Args& a) {
    Val l = make_list(ex.alt());
    std::string key = strval(a[0]);
    for (std::size_t i = 1; i < a.size(); ++i) {
        if (a[i].k != Val::K::dict) continue;
        auto it = a[i].dict->m.find(key);
        if (it != a[i].dict->m.end()) l.list->items.push_back(it->second);
    }
    return l;
}

Val f_pick(Exec& ex, Args& a) {
    const Val& d = need_dict(a[0], "pick");
    Val out = make_dict(ex.alt(), d.srcs);
    for (std::size_t i = 1; i < a.size(); ++i) {
        auto it = d.dict->m.find(strval(a[i]));
        if (it != d.dict->m.end()) out.dict->m[it->first] = it->second;
    }
    return out;
}

Val f_omit(Exec& ex, Args& a) {
    const Val& d = need_dict(a[0], "omit");
    Val out = make_dict(ex.alt(), d.srcs);
    out.dict->m = d.dict->m;
    for (std::size_t i = 1; i < a.size(); ++i) out.dict->m.erase(strval(a[i]));
    return out;
}

Val f_dig(Exec&, Args& a) {
    // dig "a" "b" default dict
    const Val& d = a.back();
    need_dict(d, "dig");
    const Val& def = a[a.size() - 2];
    const Val* cur = &d;
    for (std::size_t i = 0; i + 2 < a.size(); ++i) {
        if (cur->k != Val::K::dict) return def;
        auto it = cur->dict->m.find(strval(a[i]));
        if (it == cur->dict->m.end()) return def;
        cur = &it->second;
    }
    return *cur;
}

/// mergo.Merge (fill missing and empty keys) or, with `overwrite`, mergo.MergeWithOverwrite
/// (non-empty source values win); maps merge recursively.
void merge_into(Exec& ex, Val& dst, const Val& src, bool overwrite) {
    for (const auto& [k, sv] : src.dict->m) {
        auto it = dst.dict->m.find(k);
        if (it == dst.dict->m.end()) {
            dst.dict->m[k] = sv;
            continue;
        }
        Val& dv = it->second;
        if (dv.k == Val::K::dict && sv.k == Val::K::dict) {
            dv = writable(ex, dv);
            merge_into(ex, dv, sv, overwrite);
        } else if (overwrite ? !empty(sv) : empty(dv) && dv.k != Val::K::dict && dv.k != Val::K::list) {
            dv = sv;
        }
    }
}

Val merge_impl(Exec& ex, Args& a, bool overwrite) {
    need_dict(a[0], overwrite ? "mergeOverwrite" : "merge");
    Val dst = writable(ex, a[0]);
    for (std::size_t i = 1; i < a.size(); ++i) {
        if (a[i].is_nil()) continue;
        need_dict(a[i], overwrite ? "mergeOverwrite" : "merge");
        merge_into(ex, dst, a[i], overwrite);
    }
    return dst;
}

Val f_merge(Exec& ex, Args& a) {
    return merge_impl(ex, a, false);
}
Val f_mergeoverwrite(Exec& ex, Args& a) {
    return merge_impl(ex, a, true);
}
Val f_deepcopy(Exec& ex, Args& a) {
    return deep_copy(a[0], ex.alt());
}

Val f_first(Exec&, Args& a) {
    auto items = items_of(a[0], "first");
    return items.empty() ? make_nil() : items.front();
}

Val f_last(Exec&, Args& a) {
    auto items = items_of(a[0], "last");
    return items.empty() ? make_nil() : items.back();
}

Val f_rest(Exec& ex, Args& a) {
    auto items = items_of(a[0], "rest");
    Val l = make_list(ex.alt(), a[0].srcs);
    if (!items.empty()) l.list->items.assign(items.begin() + 1, items.end());
    return l;
}

Val f_initial(Exec& ex, Args& a) {
    auto items = items_of(a[0], "initial");
    Val l = make_list(ex.alt(), a[0].srcs);
    if (!items.empty()) l.list->items.assign(items.begin(), items.end() - 1);
    return l;
}

Val f_append(Exec& ex, Args& a) {
    Val l = make_list(ex.alt(), a[0].srcs);
    l.list->items = items_of(a[0], "append");
    l.list->items.push_back(a[1]);
    return l;
}

Val f_prepend(Exec& ex, Args& a) {
    Val l = make_list(ex.alt(), a[0].srcs);
    l.list->items = items_of(a[0], "prepend");
    l.list->items.insert(l.list->items.begin(), a[1]);
    return l;
}

Val f_concat(Exec& ex, Args& a) {
    Val l = make_list(ex.alt());
    for (const auto& v : a)
        for (auto& it : items_of(v, "concat")) l.list->items.push_back(std::move(it));
    return l;
}

Val f_reverse(Exec& ex, Args& a) {
    Val l = make_list(ex.alt(), a[0].srcs);
    l.list->items = items_of(a[0], "reverse");
    std::reverse(l.list->items.begin(), l.list->items.end());
    return l;
}

Val f_uniq(Exec& ex, Args& a) {
    Val l = make_list(ex.alt(), a[0].srcs);
    for (auto& it : items_of(a[0], "uniq")) {
        bool seen =
            std::any_of(l.list->items.begin(), l.list->items.end(), [&](const Val& x) { return deep_equal(x, it); });
        if (!seen) l.list->items.push_back(it);
    }
    return l;
}

Val f_compact(Exec& ex, Args& a) {
    Val l = make_list(ex.alt(), a[0].srcs);
    for (auto& it : items_of(a[0], "compact"))
        if (!empty(it)) l.list->items.push_back(it);
    return l;
}

Val f_without(Exec& ex, Args& a) {
    Val l = make_list(ex.alt(), a[0].srcs);
    for (auto& it : items_of(a[0], "without")) {
        bool drop = false;
        for (std::size_t i = 1; i < a.size(); ++i) drop = drop || deep_equal(it, a[i]);
        if (!drop) l.list->items.push_back(it);
    }
    return l;
}

Val f_has(Exec&, Args& a) {
    for (const auto& it : items_of(a[1], "has"))
        if (deep_equal(it, a[0])) return make_bool(true);
    return make_bool(false);
}

Val f_sortalpha(Exec& ex, Args& a) {
    std::vector<std::pair<std::string, Val>> v;
    for (const auto& it : strslice(a[0])) v.emplace_back(primary(it), it);
    std::stable_sort(v.begin(), v.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
    Val l = make_list(ex.alt(), a[0].srcs);
    for (auto& p : v) l.list->items.push_back(std::move(p.second));
    return l;
}

Val f_tostrings(Exec& ex, Args& a) {
    Val l = make_list(ex.alt(), a[0].srcs);
    l.list->items = strslice(a[0]);
    return l;
}

Val f_until(Exec& ex, Args& a) {
    std::int64_t n = to_int(a[0]);
    if (n > max_list) fail(fmt::format("until: {} items is over the limit of {}", n, max_list));
    Val l = make_list(ex.alt());
    for (std::int64_t i = 0; i < n; ++i) l.list->items.push_back(make_int(i));
    return l;
}

Val f_untilstep(Exec& ex, Args& a) {
    std::int64_t start = to_int(a[0]), stop = to_int(a[1]), st = to_int(a[2]);
    Val l = make_list(ex.alt());
    if (st == 0) return l;
    for (std::int64_t i = start; st > 0 ? i < stop : i > stop; i += st) {
        if (static_cast<std::int64_t>(l.list->items.size()) >= max_list) fail("untilStep: too many items");
        l.list->items.push_back(make_int(i));
    }
    return l;
}

// ---- numbers ---------------------------------------------------------------------------------

Val f_int(Exec&, Args& a) {
    return make_int(to_int(a[0]), srcs_of(a[0]));
}
Val f_float(Exec&, Args& a) {
    return make_float(to_float(a[0]), srcs_of(a[0]));
}

Val f_add(Exec&, Args& a) {
    std::int64_t s = 0;
    for (const auto& v : a) s += to_int(v);
    return make_int(s, all_srcs(a));
}
Val f_add1(Exec&, Args& a) {
    return make_int(to_int(a[0]) + 1, all_srcs(a));
}
Val f_sub(Exec&, Args& a) {
    return make_int(to_int(a[0]) - to_int(a[1]), all_srcs(a));
}
Val f_mul(Exec&, Args& a) {
    std::int64_t s = 1;
    for (const auto& v : a) s *= to_int(v);
    return make_int(s, all_srcs(a));
}
Val f_div(Exec&, Args& a) {
    std::int64_t d = to_int(a[1]);
    if (d == 0) fail("integer divide by zero");
    return make_int(to_int(a[0]) / d, all_srcs(a));
}
Val f_mod(Exec&, Args& a) {
    std::int64_t d = to_int(a[1]);
    if (d == 0) fail("integer divide by zero");
    return make_int(to_int(a[0]) % d, all_srcs(a));
}
Val f_max(Exec&, Args& a) {
    std::int64_t m = to_int(a[0]);
    for (const auto& v : a) m = std::max(m, to_int(v));
    return make_int(m, all_srcs(a));
}
Val f_min(Exec&, Args& a) {
    std::int64_t m = to_int(a[0]);
    for (const auto& v : a) m = std::min(m, to_int(v));
    return make_int(m, all_srcs(a));
}
Val f_maxf(Exec&, Args& a) {
    double m = to_float(a[0]);
    for (const auto& v : a) m = std::max(m, to_float(v));
    return make_float(m, all_srcs(a));
}
Val f_minf(Exec&, Args& a) {
    double m = to_float(a[0]);
    for (const auto& v : a) m = std::min(m, to_float(v));
    return make_float(m, all_srcs(a));
}
Val f_add1f(Exec&, Args& a) {
    return make_float(to_float(a[0]) + 1, all_srcs(a));
}
/// sprig's all / any: Go template truth of every / some argument.
Val f_all(Exec&, Args& a) {
    for (const auto& v : a)
        if (!truth(v)) return make_bool(false, all_srcs(a));
    return make_bool(true, all_srcs(a));
}
Val f_any(Exec&, Args& a) {
    for (const auto& v : a)
        if (truth(v)) return make_bool(true, all_srcs(a));
    return make_bool(false, all_srcs(a));
}
/// sprig's seq: like GNU seq (1, 2 or 3 integer arguments), space separated.
Val f_seq(Exec&, Args& a) {
    std::int64_t first = 1, step = 1, last = 0;
    if (a.size() == 1) {
        last = to_int(a[0]);
    } else if (a.size() == 2) {
        first = to_int(a[0]);
        last = to_int(a[1]);
        step = first > last ? -1 : 1;
    } else {
        first = to_int(a[0]);
        step = to_int(a[1]);
        last = to_int(a[2]);
    }
    std::string out;
    if (step == 0 || (step > 0 && first > last) || (step < 0 && first < last)) return make_str("", all_srcs(a));
    std::int64_t count = 0;
    for (std::int64_t i = first; step > 0 ? i <= last : i >= last; i += step) {
        if (++count > max_list) fail("seq: too many numbers");
        out += (out.empty() ? "" : " ") + std::to_string(i);
    }
    return make_str(out, all_srcs(a));
}
/// sprig's chunk: a list cut into lists of `size` items.
Val f_chunk(Exec& ex, Args& a) {
    std::int64_t size = to_int(a[0]);
    auto items = items_of(a[1], "chunk");
    Val l = make_list(ex.alt());
    if (size <= 0) fail("chunk: size must be positive");
    for (std::size_t i = 0; i < items.size(); i += static_cast<std::size_t>(size)) {
        Val c = make_list(ex.alt());
        for (std::size_t j = i; j < items.size() && j < i + static_cast<std::size_t>(size); ++j)
            c.list->items.push_back(items[j]);
        l.list->items.push_back(std::move(c));
    }
    return l;
}
/// sprig's abbrev / abbrevboth (goutils.Abbreviate / AbbreviateFull).
std::string abbreviate(const std::string& s, std::int64_t offset, std::int64_t width) {
    auto n = static_cast<std::int64_t>(s.size());
    if (width < 4 || n <= width) return s;
    if (offset > n) offset = n;
    if (n - offset < width - 3) offset = n - (width - 3);
    if (offset <= 4) return s.substr(0, static_cast<std::size_t>(width - 3)) + "...";
    if (width < 7) return s;
    if (offset + width - 3 < n) return "..." + abbreviate(s.substr(static_cast<std::size_t>(offset)), 0, width - 3);
    return "..." + s.substr(static_cast<std::size_t>(n - (width - 3)));
}
Val f_abbrev(Exec&, Args& a) {
    return make_str(abbreviate(str_arg(a[1]), 0, to_int(a[0])), all_srcs(a));
}
Val f_abbrevboth(Exec&, Args& a) {
    return make_str(abbreviate(str_arg(a[2]), to_int(a[0]), to_int(a[1])), all_srcs(a));
}
Val f_initials(Exec&, Args& a) {
    std::string s = str_arg(a[0]), out;
    bool start = true;
    for (char c : s) {
        if (std::isspace(static_cast<unsigned char>(c))) {
            start = true;
        } else if (start) {
            out.push_back(c);
            start = false;
        }
    }
    return make_str(out, all_srcs(a));
}
Val f_plural(Exec&, Args& a) {
    return make_str(to_int(a[2]) == 1 ? str_arg(a[0]) : str_arg(a[1]), all_srcs(a));
}
Val f_swapcase(Exec&, Args& a) {
    std::string s = str_arg(a[0]);
    for (auto& c : s) {
        auto u = static_cast<unsigned char>(c);
        c = static_cast<char>(std::isupper(u) ? std::tolower(u) : std::islower(u) ? std::toupper(u) : u);
    }
    return make_str(s, all_srcs(a));
}
/// path.Clean.
std::string clean_path(const std::string& p) {
    if (p.empty()) return ".";
    bool rooted = p[0] == '/';
    std::vector<std::string> parts;
    std::size_t i = 0;
    while (i <= p.size()) {
        std::size_t j = p.find('/', i);
        if (j == std::string::npos) j = p.size();
        std::string part = p.substr(i, j - i);
        if (part == "..") {
            if (!parts.empty() && parts.back() != "..")
                parts.pop_back();
            else if (!rooted)
                parts.push_back("..");
        } else if (!part.empty() && part != ".") {
            parts.push_back(part);
        }
        i = j + 1;
    }
    std::string out = rooted ? "/" : "";
    for (std::size_t k = 0; k < parts.size(); ++k) out += (k ? "/" : "") + parts[k];
    return out.empty() ? "." : out;
}
Val f_clean(Exec&, Args& a) {
    return make_str(clean_path(str_arg(a[0])), all_srcs(a));
}
Val f_isabs(Exec&, Args& a) {
    std::string p = str_arg(a[0]);
    return make_bool(!p.empty() && p[0] == '/', all_srcs(a));
}

Val f_addf(Exec&, Args& a) {
    double s = 0;
    for (const auto& v : a) s += to_float(v);
    return make_float(s, all_srcs(a));
}
Val f_subf(Exec&, Args& a) {
    double s = to_float(a[0]);
    for (std::size_t i = 1; i < a.size(); ++i) s -= to_float(a[i]);
    return make_float(s, all_srcs(a));
}
Val f_mulf(Exec&, Args& a) {
    double s = 1;
    for (const auto& v : a) s *= to_float(v);
    return make_float(s, all_srcs(a));
}
Val f_divf(Exec&, Args& a) {
    double s = to_float(a[0]);
    for (std::size_t i = 1; i < a.size(); ++i) s /= to_float(a[i]);
    return make_float(s, all_srcs(a));
}
Val f_floor(Exec&, Args& a) {
    return make_float(std::floor(to_float(a[0])), all_srcs(a));
}
Val f_ceil(Exec&, Args& a) {
    return make_float(std::ceil(to_float(a[0])), all_srcs(a));
}
Val f_round(Exec&, Args& a) {
    double p = std::pow(10.0, static_cast<double>(to_int(a[1])));
    return make_float(std::round(to_float(a[0]) * p) / p, all_srcs(a));
}

// ---- semver ----------------------------------------------------------------------------------

struct Semver {
    std::int64_t major = 0, minor = 0, patch = 0;
    std::string pre;
    int parts = 0; ///< how many of major.minor.patch were written
    bool wild[3] = {false, false, false};
};

bool parse_semver(std::string s, Semver& v, bool allow_wild) {
    while (!s.empty() && is_ws(s.front())) s.erase(0, 1);
    while (!s.empty() && is_ws(s.back())) s.pop_back();
    if (!s.empty() && (s[0] == 'v' || s[0] == 'V')) s.erase(0, 1);
    if (s.empty()) return false;
    if (auto plus = s.find('+'); plus != std::string::npos) s.resize(plus);
    std::string core = s;
    if (auto dash = s.find('-'); dash != std::string::npos) {
        core = s.substr(0, dash);
        v.pre = s.substr(dash + 1);
    }
    auto parts = split_all(core, ".");
    if (parts.empty() || parts.size() > 3) return false;
    std::int64_t* fields[3] = {&v.major, &v.minor, &v.patch};
    for (std::size_t i = 0; i < parts.size(); ++i) {
        const auto& p = parts[i];
        if (allow_wild && (p == "x" || p == "X" || p == "*")) {
            v.wild[i] = true;
            continue;
        }
        if (p.empty() || !std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
        *fields[i] = std::strtoll(p.c_str(), nullptr, 10);
    }
    v.parts = static_cast<int>(parts.size());
    for (std::size_t i = parts.size(); i < 3; ++i) v.wild[i] = allow_wild;
    return true;
}

int cmp_pre(const std::string& a, const std::string& b) {
    if (a == b) return 0;
    if (a.empty()) return 1;
    if (b.empty()) return -1;
    auto x = split_all(a, "."), y = split_all(b, ".");
    for (std::size_t i = 0; i < std::min(x.size(), y.size()); ++i) {
        auto numeric = [](const std::string& p) {
            return !p.empty() && std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; });
        };
        bool nx = numeric(x[i]);
        bool ny = numeric(y[i]);
        if (nx && ny) {
            auto p = std::strtoll(x[i].c_str(), nullptr, 10), q = std::strtoll(y[i].c_str(), nullptr, 10);
            if (p != q) return p < q ? -1 : 1;
        } else if (nx != ny) {
            return nx ? -1 : 1;
        } else if (x[i] != y[i]) {
            return x[i] < y[i] ? -1 : 1;
        }
    }
    return x.size() == y.size() ? 0 : x.size() < y.size() ? -1 : 1;
}

int cmp_semver(const Semver& a, const Semver& b) {
    if (a.major != b.major) return a.major < b.major ? -1 : 1;
    if (a.minor != b.minor) return a.minor < b.minor ? -1 : 1;
    if (a.patch != b.patch) return a.patch < b.patch ? -1 : 1;
    return cmp_pre(a.pre, b.pre);
}

/// One comparator ("op version") of a Masterminds/semver constraint.
bool check(const std::string& op, const Semver& c, const Semver& v) {
    // A pre-release version only satisfies constraints that mention a pre-release.
    if (!v.pre.empty() && c.pre.empty()) return false;
    Semver lo = c;
    for (int i = 0; i < 3; ++i)
        if (c.wild[i]) *(i == 0 ? &lo.major : i == 1 ? &lo.minor : &lo.patch) = 0;
    // The first wildcard position bounds ranges like "1.2.x".
    int wild_at = c.wild[0] ? 0 : c.wild[1] ? 1 : c.wild[2] ? 2 : 3;
    auto upper_of = [&](int at) {
        Semver u = lo;
        u.pre.clear();
        if (at <= 0)
            u.major = INT64_MAX;
        else if (at == 1) {
            ++u.major;
            u.minor = 0;
            u.patch = 0;
        } else {
            ++u.minor;
            u.patch = 0;
        }
        return u;
    };
    int r = cmp_semver(v, lo);
    if (op.empty() || op == "=") {
        if (wild_at < 3) return r >= 0 && cmp_semver(v, upper_of(wild_at)) < 0;
        return r == 0;
    }
    if (op == "!=") {
        if (wild_at < 3) return !(r >= 0 && cmp_semver(v, upper_of(wild_at)) < 0);
        return r != 0;
    }
    if (op == ">") {
        if (wild_at < 3) return cmp_semver(v, upper_of(wild_at)) >= 0;
        return r > 0;
    }
    if (op == ">=" || op == "=>") return r >= 0;
    if (op == "<") return r < 0;
    if (op == "<=" || op == "=<") {
        if (wild_at < 3) return cmp_semver(v, upper_of(wild_at)) < 0;
        return r <= 0;
    }
    if (op == "~" || op == "~>") {
        int at = c.parts <= 1 || c.wild[1] ? 1 : 2;
        return r >= 0 && cmp_semver(v, upper_of(at)) < 0;
    }
    if (op == "^") {
        int at = lo.major > 0 || c.parts <= 1 ? 1 : (lo.minor > 0 || c.parts <= 2) ? 2 : 3;
        if (at == 3) {
            Semver u = lo;
            u.pre.clear();
            ++u.patch;
            return r >= 0 && cmp_semver(v, u) < 0;
        }
        return r >= 0 && cmp_semver(v, upper_of(at)) < 0;
    }
    fail(fmt::format("improper constraint operator {}", op));
}

bool semver_match(const std::string& constraint, const Semver& v) {
    for (const auto& alt : split_all(constraint, "||")) {
        // Comparators in a group are separated by commas or spaces; an operator may be
        // separated from its version by spaces ("> 1.2").
        std::vector<std::string> toks;
        std::string cur;
        for (char c : alt) {
            if (c == ',' || is_ws(c)) {
                if (!cur.empty()) toks.push_back(cur);
                cur.clear();
            } else {
                cur.push_back(c);
            }
        }
        if (!cur.empty()) toks.push_back(cur);
        bool ok = !toks.empty();
        for (std::size_t i = 0; i < toks.size() && ok; ++i) {
            std::string t = toks[i];
            std::size_t k = 0;
            while (k < t.size() && std::strchr("<>=!~^", t[k])) ++k;
            std::string op = t.substr(0, k);
            std::string ver = t.substr(k);
            if (ver.empty() && i + 1 < toks.size()) ver = toks[++i];
            Semver c;
            if (!parse_semver(ver, c, true)) fail(fmt::format("improper constraint: {}", constraint));
            ok = check(op, c, v);
        }
        if (ok) return true;
    }
    return false;
}

Val f_semvercompare(Exec&, Args& a) {
    Semver v;
    if (!parse_semver(str_arg(a[1]), v, false)) fail(fmt::format("invalid semantic version \"{}\"", str_arg(a[1])));
    return make_bool(semver_match(str_arg(a[0]), v), all_srcs(a));
}

Val f_semver(Exec& ex, Args& a) {
    Semver v;
    std::string s = str_arg(a[0]);
    if (!parse_semver(s, v, false)) fail(fmt::format("invalid semantic version \"{}\"", s));
    Val d = make_dict(ex.alt(), srcs_of(a[0]));
    d.dict->m["Major"] = make_int(v.major);
    d.dict->m["Minor"] = make_int(v.minor);
    d.dict->m["Patch"] = make_int(v.patch);
    d.dict->m["Prerelease"] = make_str(v.pre);
    d.dict->m["Original"] = make_str(s);
    return d;
}

// ---- encodings -------------------------------------------------------------------------------

Val f_b64enc(Exec&, Args& a) {
    return make_str(util::base64_encode(str_arg(a[0])), primary_srcs(a[0]));
}

/// Decodes the text up to its first '=' (a last lone character, which holds no whole byte,
/// dropped); an invalid character gives Go's error text.
Val f_b64dec(Exec&, Args& a) {
    std::string s = str_arg(a[0]);
    auto out = util::base64_decode(std::string_view(s).substr(0, s.find('=')), util::Base64Alphabet::standard, true);
    if (!out) return make_str("illegal base64 data at input byte", primary_srcs(a[0]));
    return make_str(*out, primary_srcs(a[0]));
}

Val f_sha256sum(Exec&, Args& a) {
    return make_str(oci::Digest::of(str_arg(a[0])).hex(), primary_srcs(a[0]));
}

// ---- YAML/JSON -------------------------------------------------------------------------------

Val f_toyaml(Exec&, Args& a) {
    if (a[0].is_unknown()) return a[0];
    auto segs = to_yaml(a[0]);
    if (segs.empty()) return make_str("", srcs_of(a[0]));
    return make_segs(std::move(segs));
}

/// helm's toToml (BurntSushi/toml's encoder): sorted keys, plain values before tables,
/// `[a.b]` tables and `[[a]]` arrays of tables indented two spaces a level; strings keep
/// their origins.
struct TomlWriter {
    std::vector<Seg> out;

    void text(const std::string& t, Srcs srcs = {}) { append_seg(out, Seg{t, std::move(srcs), "", 0, 0}); }
    static bool is_table(const Val& v) { return v.k == Val::K::dict; }
    static bool is_table_array(const Val& v) {
        return v.k == Val::K::list && !v.list->items.empty() &&
               std::all_of(v.list->items.begin(), v.list->items.end(), [](const Val& e) { return is_table(e); });
    }
    static std::string key(const std::string& k) {
        bool bare = !k.empty() && std::all_of(k.begin(), k.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
        });
        return bare ? k : go_quote(k);
    }
    void value(const Val& v) {
        switch (v.k) {
        case Val::K::boolean:
            text(v.b ? "true" : "false", v.srcs);
            return;
        case Val::K::integer:
            text(std::to_string(v.i), v.srcs);
            return;
        case Val::K::floating: {
            std::string f = fmt::format("{}", v.f);
            if (f.find_first_of(".eEn") == std::string::npos) f += ".0";
            text(f, v.srcs);
            return;
        }
        case Val::K::string: {
            std::string q = go_quote(primary(v));
            text(q, srcs_of(v));
            return;
        }
        case Val::K::list: {
            text("[");
            bool first = true;
            for (const auto& e : v.list->items) {
                if (e.is_nil()) continue;
                if (!first) text(", ");
                first = false;
                value(e);
            }
            text("]");
            return;
        }
        case Val::K::dict: { // an inline table inside an array
            text("{");
            bool first = true;
            for (const auto& [k, e] : v.dict->m) {
                if (e.is_nil()) continue;
                if (!first) text(", ");
                first = false;
                text(key(k) + " = ");
                value(e);
            }
            text("}");
            return;
        }
        default:
            text("\"\"");
            return;
        }
    }
    void table(const Val& d, const std::string& prefix, int level) {
        std::string pad(static_cast<std::size_t>(level) * 2, ' ');
        for (const auto& [k, e] : d.dict->m) {
            if (e.is_nil() || is_table(e) || is_table_array(e)) continue;
            text(pad + key(k) + " = ");
            value(e);
            text("\n");
        }
        for (const auto& [k, e] : d.dict->m) {
            std::string name = prefix.empty() ? key(k) : prefix + "." + key(k);
            std::string sub(static_cast<std::size_t>(level) * 2, ' ');
            if (is_table(e)) {
                text("\n" + sub + "[" + name + "]\n");
                table(e, name, level + 1);
            } else if (is_table_array(e)) {
                for (const auto& item : e.list->items) {
                    text("\n" + sub + "[[" + name + "]]\n");
                    table(item, name, level + 1);
                }
            }
        }
    }
};

Val f_totoml(Exec&, Args& a) {
    if (a[0].k != Val::K::dict) fail("toToml: only a map can be written as TOML");
    TomlWriter w;
    w.table(a[0], "", 0);
    if (w.out.empty()) return make_str("", srcs_of(a[0]));
    return make_segs(std::move(w.out));
}

Val f_hello(Exec&, Args&) {
    return make_str("Hello!");
}

Val json_val(const Val& v, bool pretty) {
    auto segs = to_json_segs(v, pretty);
    if (segs.empty()) return make_str("", srcs_of(v));
    return make_segs(std::move(segs));
}
Val f_tojson(Exec&, Args& a) {
    return json_val(a[0], false);
}
/// sprig's toRawJson: encoding/json without HTML escaping of <, > and &.
Val f_torawjson(Exec&, Args& a) {
    auto segs = to_json_segs(a[0], false);
    for (auto& sg : segs) {
        const std::string& j = sg.text;
        std::string out;
        out.reserve(j.size());
        for (std::size_t i = 0; i < j.size(); ++i) {
            if (j.compare(i, 6, "\\u003c") == 0 || j.compare(i, 6, "\\u003e") == 0 || j.compare(i, 6, "\\u0026") == 0) {
                std::size_t n = 0; // only when the backslash itself is not escaped
                while (n < i && j[i - 1 - n] == '\\') ++n;
                if (n % 2 == 0) {
                    out.push_back(j[i + 5] == 'c' ? '<' : j[i + 5] == 'e' ? '>' : '&');
                    i += 5;
                    continue;
                }
            }
            out.push_back(j[i]);
        }
        sg.text = std::move(out);
    }
    if (segs.empty()) return make_str("", srcs_of(a[0]));
    return make_segs(std::move(segs));
}
Val f_toprettyjson(Exec&, Args& a) {
    return json_val(a[0], true);
}

Val from_text(Exec& ex, const Val& text, bool want_list) {
    Srcs srcs = primary_srcs(text);
    try {
        Val v = from_yaml_val(ex, text);
        if (want_list && v.is_nil()) return make_list(ex.alt(), srcs);
        if (want_list && v.k != Val::K::list) fail("not a YAML array");
        if (!want_list && v.is_nil()) return make_dict(ex.alt(), srcs);
        if (!want_list && v.k != Val::K::dict) fail("not a YAML map");
        return v;
    } catch (const std::exception& e) {
        Val d = make_dict(ex.alt(), srcs);
        d.dict->m["Error"] = make_str(e.what());
        return d;
    }
}

Val f_fromyaml(Exec& ex, Args& a) {
    return from_text(ex, a[0], false);
}
Val f_fromyamlarray(Exec& ex, Args& a) {
    return from_text(ex, a[0], true);
}

// ---- types -----------------------------------------------------------------------------------

Val f_typeof(Exec&, Args& a) {
    return make_str(type_name(a[0]));
}
Val f_kindof(Exec&, Args& a) {
    return make_str(kind_name(a[0]));
}
Val f_kindis(Exec&, Args& a) {
    return make_bool(kind_name(a[1]) == str_arg(a[0]));
}
Val f_typeis(Exec&, Args& a) {
    return make_bool(type_name(a[1]) == str_arg(a[0]));
}
Val f_typeislike(Exec&, Args& a) {
    std::string t = str_arg(a[0]), n = type_name(a[1]);
    return make_bool(t == n || "*" + t == n);
}

Val f_deepequal(Exec&, Args& a) {
    return make_bool(deep_equal(a[0], a[1]));
}

// ---- the table -------------------------------------------------------------------------------

struct Entry {
    const char* name;
    FnInfo info;
};

const std::unordered_map<std::string, FnInfo>& table() {
    static const std::unordered_map<std::string, FnInfo> t = [] {
        const Entry entries[] = {
            // Go builtins (and/or are evaluated lazily by the evaluator).
            {"not", {f_not, 1, 1, false}},
            {"eq", {f_eq, 2, -1, false}},
            {"ne", {f_ne, 2, 2, false}},
            {"lt", {f_lt, 2, 2, false}},
            {"le", {f_le, 2, 2, false}},
            {"gt", {f_gt, 2, 2, false}},
            {"ge", {f_ge, 2, 2, false}},
            {"len", {f_len, 1, 1, false}},
            {"index", {f_index, 1, -1, false}},
            {"slice", {f_slice, 1, 3, false}},
            {"print", {f_print, 0, -1, true}},
            {"printf", {f_printf, 1, -1, true}},
            {"println", {f_println, 0, -1, true}},
            {"html", {f_html, 0, -1, false}},
            {"js", {f_js, 0, -1, false}},
            {"urlquery", {f_urlquery, 0, -1, false}},
            // Defaults and flow.
            {"default", {f_default, 1, 2, true}},
            {"empty", {f_empty, 1, 1, false}},
            {"coalesce", {f_coalesce, 0, -1, true}},
            {"ternary", {f_ternary, 3, 3, true}},
            {"required", {f_required, 2, 2, true}},
            {"fail", {f_fail, 1, 1, false}},
            {"include", {f_include, 2, 2, true}},
            {"tpl", {f_tpl, 2, 2, true}},
            {"lookup", {f_lookup, 4, 4, true}},
            // Strings.
            {"quote", {f_quote, 0, -1, true}},
            {"squote", {f_squote, 0, -1, true}},
            {"toString", {f_tostring, 1, 1, true}},
            {"indent", {f_indent, 2, 2, true}},
            {"nindent", {f_nindent, 2, 2, true}},
            {"trim", {f_trim, 1, 1, true}},
            {"trimAll", {f_trimall, 2, 2, false}},
            {"trimSuffix", {f_trimsuffix, 2, 2, false}},
            {"trimPrefix", {f_trimprefix, 2, 2, false}},
            {"upper", {f_upper, 1, 1, false}},
            {"lower", {f_lower, 1, 1, false}},
            {"title", {f_title, 1, 1, false}},
            {"untitle", {f_untitle, 1, 1, false}},
            {"replace", {f_replace, 3, 3, false}},
            {"contains", {f_contains, 2, 2, false}},
            {"hasPrefix", {f_hasprefix, 2, 2, false}},
            {"hasSuffix", {f_hassuffix, 2, 2, false}},
            {"trunc", {f_trunc, 2, 2, false}},
            {"substr", {f_substr, 3, 3, false}},
            {"split", {f_split, 2, 2, false}},
            {"splitList", {f_splitlist, 2, 2, false}},
            {"splitn", {f_splitn, 3, 3, false}},
            {"join", {f_join, 2, 2, true}},
            {"cat", {f_cat, 0, -1, true}},
            {"repeat", {f_repeat, 2, 2, false}},
            {"nospace", {f_nospace, 1, 1, false}},
            {"kebabcase", {f_kebabcase, 1, 1, false}},
            {"snakecase", {f_snakecase, 1, 1, false}},
            {"camelcase", {f_camelcase, 1, 1, false}},
            {"base", {f_base, 1, 1, false}},
            {"dir", {f_dir, 1, 1, false}},
            {"ext", {f_ext, 1, 1, false}},
            {"clean", {f_clean, 1, 1, false}},
            {"isAbs", {f_isabs, 1, 1, false}},
            {"osBase", {f_base, 1, 1, false}},
            {"osDir", {f_dir, 1, 1, false}},
            {"osExt", {f_ext, 1, 1, false}},
            {"osClean", {f_clean, 1, 1, false}},
            {"osIsAbs", {f_isabs, 1, 1, false}},
            {"trimall", {f_trimall, 2, 2, false}},
            {"abbrev", {f_abbrev, 2, 2, false}},
            {"abbrevboth", {f_abbrevboth, 3, 3, false}},
            {"initials", {f_initials, 1, 1, false}},
            {"plural", {f_plural, 3, 3, false}},
            {"swapcase", {f_swapcase, 1, 1, false}},
            {"regexMatch", {f_regexmatch, 2, 2, false}},
            {"mustRegexMatch", {f_regexmatch, 2, 2, false}},
            {"regexFind", {f_regexfind, 2, 2, false}},
            {"regexFindAll", {f_regexfindall, 3, 3, false}},
            {"regexReplaceAll", {f_regexreplaceall, 3, 3, false}},
            {"regexReplaceAllLiteral", {f_regexreplaceallliteral, 3, 3, false}},
            {"regexSplit", {f_regexsplit, 3, 3, false}},
            {"mustRegexFind", {f_regexfind, 2, 2, false}},
            {"mustRegexFindAll", {f_regexfindall, 3, 3, false}},
            {"mustRegexReplaceAll", {f_regexreplaceall, 3, 3, false}},
            {"mustRegexReplaceAllLiteral", {f_regexreplaceallliteral, 3, 3, false}},
            {"mustRegexSplit", {f_regexsplit, 3, 3, false}},
            {"regexQuoteMeta", {f_regexquotemeta, 1, 1, false}},
            // Lists and maps.
            {"list", {f_list, 0, -1, true}},
            {"tuple", {f_list, 0, -1, true}},
            {"dict", {f_dict, 0, -1, true}},
            {"get", {f_get, 2, 2, false}},
            {"set", {f_set, 3, 3, true}},
            {"unset", {f_unset, 2, 2, false}},
            {"hasKey", {f_haskey, 2, 2, false}},
            {"keys", {f_keys, 1, -1, false}},
            {"values", {f_values, 1, 1, false}},
            {"pluck", {f_pluck, 1, -1, false}},
            {"pick", {f_pick, 1, -1, false}},
            {"omit", {f_omit, 1, -1, false}},
            {"dig", {f_dig, 3, -1, false}},
            {"merge", {f_merge, 1, -1, true}},
            {"mustMerge", {f_merge, 1, -1, true}},
            {"mergeOverwrite", {f_mergeoverwrite, 1, -1, true}},
            {"mustMergeOverwrite", {f_mergeoverwrite, 1, -1, true}},
            {"deepCopy", {f_deepcopy, 1, 1, true}},
            {"mustDeepCopy", {f_deepcopy, 1, 1, true}},
            {"first", {f_first, 1, 1, false}},
            {"last", {f_last, 1, 1, false}},
            {"rest", {f_rest, 1, 1, false}},
            {"initial", {f_initial, 1, 1, false}},
            {"append", {f_append, 2, 2, true}},
            {"push", {f_append, 2, 2, true}},
            {"mustAppend", {f_append, 2, 2, true}},
            {"prepend", {f_prepend, 2, 2, true}},
            {"concat", {f_concat, 0, -1, false}},
            {"reverse", {f_reverse, 1, 1, false}},
            {"uniq", {f_uniq, 1, 1, false}},
            {"compact", {f_compact, 1, 1, false}},
            {"without", {f_without, 1, -1, false}},
            {"has", {f_has, 2, 2, false}},
            {"sortAlpha", {f_sortalpha, 1, 1, false}},
            {"mustUniq", {f_uniq, 1, 1, false}},
            {"mustCompact", {f_compact, 1, 1, false}},
            {"mustWithout", {f_without, 1, -1, false}},
            {"mustHas", {f_has, 2, 2, false}},
            {"mustFirst", {f_first, 1, 1, false}},
            {"mustLast", {f_last, 1, 1, false}},
            {"mustRest", {f_rest, 1, 1, false}},
            {"mustInitial", {f_initial, 1, 1, false}},
            {"mustReverse", {f_reverse, 1, 1, false}},
            {"mustSlice", {f_slice, 1, 3, false}},
            {"mustPrepend", {f_prepend, 2, 2, true}},
            {"mustPush", {f_append, 2, 2, true}},
            {"chunk", {f_chunk, 2, 2, false}},
            {"mustChunk", {f_chunk, 2, 2, false}},
            {"all", {f_all, 0, -1, false}},
            {"any", {f_any, 0, -1, false}},
            {"seq", {f_seq, 1, 3, false}},
            {"toStrings", {f_tostrings, 1, 1, false}},
            {"until", {f_until, 1, 1, false}},
            {"untilStep", {f_untilstep, 3, 3, false}},
            // Numbers.
            {"int", {f_int, 1, 1, false}},
            {"int64", {f_int, 1, 1, false}},
            {"atoi", {f_int, 1, 1, false}},
            {"float64", {f_float, 1, 1, false}},
            {"toDecimal", {f_int, 1, 1, false}},
            {"add", {f_add, 0, -1, false}},
            {"add1", {f_add1, 1, 1, false}},
            {"sub", {f_sub, 2, 2, false}},
            {"mul", {f_mul, 1, -1, false}},
            {"div", {f_div, 2, 2, false}},
            {"mod", {f_mod, 2, 2, false}},
            {"max", {f_max, 1, -1, false}},
            {"min", {f_min, 1, -1, false}},
            {"addf", {f_addf, 0, -1, false}},
            {"add1f", {f_add1f, 1, 1, false}},
            {"maxf", {f_maxf, 1, -1, false}},
            {"minf", {f_minf, 1, -1, false}},
            {"biggest", {f_max, 1, -1, false}},
            {"subf", {f_subf, 1, -1, false}},
            {"mulf", {f_mulf, 1, -1, false}},
            {"divf", {f_divf, 1, -1, false}},
            {"floor", {f_floor, 1, 1, false}},
            {"ceil", {f_ceil, 1, 1, false}},
            {"round", {f_round, 2, 3, false}},
            {"semverCompare", {f_semvercompare, 2, 2, false}},
            {"semver", {f_semver, 1, 1, false}},
            // Encodings.
            {"b64enc", {f_b64enc, 1, 1, false}},
            {"b64dec", {f_b64dec, 1, 1, false}},
            {"sha256sum", {f_sha256sum, 1, 1, false}},
            {"toYaml", {f_toyaml, 1, 1, true}},
            {"mustToYaml", {f_toyaml, 1, 1, true}},
            {"toJson", {f_tojson, 1, 1, false}},
            {"mustToJson", {f_tojson, 1, 1, false}},
            {"toRawJson", {f_torawjson, 1, 1, false}},
            {"toPrettyJson", {f_toprettyjson, 1, 1, false}},
            {"mustToPrettyJson", {f_toprettyjson, 1, 1, false}},
            {"mustToRawJson", {f_torawjson, 1, 1, false}},
            {"toYamlPretty", {f_toyaml, 1, 1, true}},
            {"toToml", {f_totoml, 1, 1, false}},
            {"hello", {f_hello, 0, 0, false}},
            {"fromYaml", {f_fromyaml, 1, 1, false}},
            {"fromJson", {f_fromyaml, 1, 1, false}},
            {"mustFromJson", {f_fromyaml, 1, 1, false}},
            {"fromYamlArray", {f_fromyamlarray, 1, 1, false}},
            {"fromJsonArray", {f_fromyamlarray, 1, 1, false}},
            // Types.
            {"typeOf", {f_typeof, 1, 1, true}},
            {"kindOf", {f_kindof, 1, 1, true}},
            {"kindIs", {f_kindis, 2, 2, false}},
            {"typeIs", {f_typeis, 2, 2, false}},
            {"typeIsLike", {f_typeislike, 2, 2, false}},
            {"deepEqual", {f_deepequal, 2, 2, false}},
        };
        std::unordered_map<std::string, FnInfo> m;
        for (const auto& e : entries) m.emplace(e.name, e.info);
        return m;
    }();
    return t;
}

} // namespace

const FnInfo* find_function(const std::string& name, std::string* not_evaluated) {
    const auto& t = table();
    if (auto it = t.find(name); it != t.end()) return &it->second;
    // Known functions left as placeholders without a diagnostic: their results are random,
    // time-dependent, secret or from outside the chart, or they are rarely used and never
    // for image references.
    static const char* const opaque[] = {
        "randAlphaNum",
        "randAlpha",
        "randNumeric",
        "randAscii",
        "randBytes",
        "randInt",
        "shuffle",
        "uuidv4",
        "now",
        "date",
        "dateInZone",
        "htmlDate",
        "htmlDateInZone",
        "dateModify",
        "date_modify",
        "date_in_zone",
        "mustDateModify",
        "must_date_modify",
        "mustToDate",
        "ago",
        "toDate",
        "unixEpoch",
        "duration",
        "durationRound",
        "genCA",
        "genCAWithKey",
        "genPrivateKey",
        "genSelfSignedCert",
        "genSelfSignedCertWithKey",
        "genSignedCert",
        "genSignedCertWithKey",
        "buildCustomCert",
        "derivePassword",
        "encryptAES",
        "decryptAES",
        "bcrypt",
        "htpasswd",
        "sha1sum",
        "sha512sum",
        "adler32sum",
        "getHostByName",
        "env",
        "expandenv",
        "call",
        "fromToml",
        "b32enc",
        "b32dec",
        "wrap",
        "wrapWith",
        "urlParse",
        "urlJoin",
        "semverCompareStrict",
        "sortAlphaNum",
    };
    for (const char* o : opaque) {
        if (name == o) {
            if (not_evaluated) *not_evaluated = fmt::format("function \"{}\" is not evaluated", name);
            return nullptr;
        }
    }
    return nullptr;
}

} // namespace aas::chart::tmpl::detail
