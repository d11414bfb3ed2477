// Finds `image:` values in rendered output, line by line, and attributes each to the pieces
// of output it overlaps (liveness, origins, placeholders) and to the template line of its key.

#include "template_impl.hpp"

#include "aas_bundle/ref/reference.hpp"

#include <algorithm>
#include <cctype>

namespace aas::chart::tmpl {

namespace {

bool blank(char c) {
    return c == ' ' || c == '\t' || c == '\r';
}

struct Layout {
    std::string text;
    std::vector<std::size_t> start; ///< offset of each piece
};

Layout layout(const Rendered& r) {
    Layout l;
    l.start.reserve(r.pieces.size());
    for (const auto& p : r.pieces) {
        l.start.push_back(l.text.size());
        l.text += p.text;
    }
    return l;
}

/// The piece holding the character at `off` (pieces with text only).
const Piece* piece_at(const Rendered& r, const Layout& l, std::size_t off) {
    auto it = std::upper_bound(l.start.begin(), l.start.end(), off);
    std::size_t i = static_cast<std::size_t>(it - l.start.begin());
    while (i > 0) {
        --i;
        const Piece& p = r.pieces[i];
        if (!p.text.empty()) return off < l.start[i] + p.text.size() ? &p : nullptr;
    }
    return nullptr;
}

/// Strips a trailing " # comment" that is outside quotes; returns the new end.
std::size_t strip_comment(const std::string& t, std::size_t b, std::size_t e) {
    char quote = 0;
    for (std::size_t i = b; i < e; ++i) {
        char c = t[i];
        if (quote) {
            if (c == quote)
                quote = 0;
            else if (c == '\\' && quote == '"')
                ++i;
            continue;
        }
        if ((c == '"' || c == '\'') && i == b) {
            quote = c;
            continue;
        }
        if (c == '#' && i > b && blank(t[i - 1])) return i;
    }
    return e;
}

/// The position after a key `name:` at `p` (the key possibly quoted), or npos.
std::size_t after_key(const std::string& t, std::size_t p, std::size_t e, std::string_view name) {
    std::size_t q = p;
    char quote = 0;
    if (q < e && (t[q] == '"' || t[q] == '\'')) quote = t[q++];
    if (t.compare(q, name.size(), name) != 0) return std::string::npos;
    q += name.size();
    if (quote) {
        if (q >= e || t[q] != quote) return std::string::npos;
        ++q;
        while (q < e && blank(t[q])) // JSON written as `"image" : "…"`
            ++q;
    }
    if (q >= e || t[q] != ':') return std::string::npos;
    ++q;
    if (q < e && !blank(t[q])) return std::string::npos;
    return q;
}

/// Trims blanks and one pair of matching quotes around [b, e).
void unquote(const std::string& t, std::size_t& b, std::size_t& e) {
    while (b < e && blank(t[b])) ++b;
    while (e > b && blank(t[e - 1])) --e;
    if (e - b >= 2 && (t[b] == '"' || t[b] == '\'') && t[e - 1] == t[b]) {
        ++b;
        --e;
        while (b < e && blank(t[b])) ++b;
        while (e > b && blank(t[e - 1])) --e;
    }
}

bool same_origin(const Origin& a, const Origin& b) {
    return a.file == b.file && a.line == b.line && a.values_path == b.values_path && a.file_key == b.file_key;
}

std::size_t indent_of(const std::string& t, std::size_t ls, std::size_t le) {
    std::size_t p = ls;
    while (p < le && (t[p] == ' ' || t[p] == '\t')) ++p;
    return p - ls;
}

/// Attribution of [vb, ve) in the output: liveness, origins, the first placeholder.
struct Span {
    bool live = true;
    std::vector<Origin> sources;
    std::vector<SourceSpan> spans; ///< relative to vb
    std::string unevaluated;
    bool name_from_values = false; ///< some piece before `name_end` has an image-name origin
    bool whole_value = false;      ///< the span is exactly one image-name value's text
    bool tag_from_values = false;  ///< some piece from `name_end` on has an image tag origin
};

Span attribute(const Rendered& r, const Layout& l, std::size_t vb, std::size_t ve,
               std::size_t name_end = std::string::npos) {
    Span sp;
    std::size_t first =
        static_cast<std::size_t>(std::lower_bound(l.start.begin(), l.start.end(), vb) - l.start.begin());
    while (first > 0 && (l.start[first - 1] + r.pieces[first - 1].text.size() > vb || l.start[first - 1] == vb))
        --first;
    if (name_end == std::string::npos) name_end = ve;
    for (std::size_t i = first; i < r.pieces.size() && l.start[i] <= ve; ++i) {
        const Piece& piece = r.pieces[i];
        std::size_t ps = l.start[i], pe = ps + piece.text.size();
        bool overlaps = piece.text.empty() ? (ps >= vb && ps <= ve) : (ps < ve && pe > vb);
        if (!overlaps) continue;
        if (piece.text.empty() && piece.unevaluated.empty()) continue;
        sp.live = sp.live && piece.live;
        if (!piece.text.empty())
            for (const auto& o : piece.sources)
                sp.spans.push_back(SourceSpan{o, std::max(ps, vb) - vb, std::min(pe, ve) - vb});
        for (const auto& o : piece.sources) {
            bool seen =
                std::any_of(sp.sources.begin(), sp.sources.end(), [&](const Origin& x) { return same_origin(x, o); });
            if (!seen) sp.sources.push_back(o);
        }
        if (sp.unevaluated.empty() && !piece.unevaluated.empty()) sp.unevaluated = piece.unevaluated;
        if (pe > name_end && ps < ve && !piece.text.empty()) {
            for (const auto& o : piece.sources) {
                bool tag = false;
                // An image tag value, or the chart's appVersion (.Chart.AppVersion).
                bool app_version = o.values_path.empty() && o.file.size() >= 10 &&
                                   o.file.compare(o.file.size() - 10, 10, "Chart.yaml") == 0;
                if ((image_shaped_path(o.values_path, &tag) && tag) || app_version) sp.tag_from_values = true;
            }
        }
        if (ps < name_end && pe > vb && !piece.text.empty()) {
            for (const auto& o : piece.sources) {
                bool tag = false;
                if (image_shaped_path(o.values_path, &tag) && !tag) {
                    sp.name_from_values = true;
                    // A repository or registry field alone is only part of a reference.
                    std::string leaf = o.values_path.substr(o.values_path.rfind('.') + 1);
                    for (auto& c : leaf) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
                    bool part = leaf.ends_with("repository") || leaf.ends_with("registry") || leaf == "repo" ||
                                leaf.ends_with("prefix");
                    if (ps == vb && pe == ve && piece.sources.size() == 1 && !part) sp.whole_value = true;
                }
            }
        }
    }
    return sp;
}

/// The value of key `name` in the same YAML map as the key at column `col` of line [ls, le)
/// (siblings at the same indentation, looking both ways), or false.
bool sibling_value(const std::string& t, std::size_t ls, std::size_t col, std::string_view name, std::size_t& vb,
                   std::size_t& ve) {
    auto check = [&](std::size_t b, std::size_t e) {
        std::size_t p = b;
        while (p < e && blank(t[p])) ++p;
        if (p - b != col) return false;
        std::size_t v = after_key(t, p, e, name);
        if (v == std::string::npos) return false;
        vb = v;
        ve = strip_comment(t, v, e);
        unquote(t, vb, ve);
        return vb < ve;
    };
    {
        std::size_t le = t.find('\n', ls);
        if (check(ls, le == std::string::npos ? t.size() : le)) return true;
    }
    // Forward, to the first line indented less (or a new list item at this column).
    for (std::size_t b = t.find('\n', ls); b != std::string::npos && b + 1 < t.size();) {
        ++b;
        std::size_t e = t.find('\n', b);
        if (e == std::string::npos) e = t.size();
        std::size_t in = indent_of(t, b, e);
        if (b + in < e && t[b + in] != '#') {
            if (in < col || (in == col && t[b + in] == '-')) break;
            if (in == col && check(b, e)) return true;
        }
        b = e;
    }
    // Backward, to the line that opens the map.
    std::size_t e = ls; // start of the line after the one looked at
    while (e > 0) {
        std::size_t le = e - 1; // its '\n'
        std::size_t b = le == 0 ? 0 : t.rfind('\n', le - 1);
        b = (b == std::string::npos || le == 0) ? 0 : b + 1;
        std::size_t in = indent_of(t, b, le);
        if (b + in < le && t[b + in] != '#') {
            if (in < col) {
                // "- key: v" opening the map at this column.
                std::size_t p = b + in;
                if (t[p] == '-') {
                    ++p;
                    while (p < le && blank(t[p])) ++p;
                    if (p - b == col) {
                        std::size_t v = after_key(t, p, le, name);
                        if (v != std::string::npos) {
                            vb = v;
                            ve = strip_comment(t, v, le);
                            unquote(t, vb, ve);
                            return vb < ve;
                        }
                    }
                }
                break;
            }
            if (in == col && t[b + in] != '-' && check(b, le)) return true;
        }
        e = b;
    }
    return false;
}

bool ref_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' || c == '/' || c == ':' ||
           c == '@';
}

/// Image references in [ls, le) outside an `image:` key: words whose name part comes from
/// image-shaped values (see the header).
void value_refs(const Rendered& r, const Layout& l, std::size_t ls, std::size_t le, std::vector<TemplateImage>& out) {
    const std::string& t = l.text;
    std::size_t i = ls;
    while (i < le) {
        if (!ref_char(t[i])) {
            ++i;
            continue;
        }
        std::size_t b = i;
        while (i < le && ref_char(t[i])) ++i;
        std::size_t e = i;
        // "<REGISTRY>/path:tag": a placeholder of the deployment's own images, which only
        // image fields resolve (see discovery.hpp); elsewhere it stays a possible image.
        if (b > ls && t[b - 1] == '>' && t.rfind('<', b - 1) != std::string::npos && t.rfind('<', b - 1) >= ls)
            continue;
        while (b < e && (t[b] == '-' || t[b] == '.' || t[b] == ':' || t[b] == '/' || t[b] == '@')) ++b;
        while (e > b && (t[e - 1] == '-' || t[e - 1] == '.' || t[e - 1] == ':' || t[e - 1] == '/' || t[e - 1] == '@'))
            --e;
        if (e - b < 3 || e - b > 512) continue;
        std::string_view w(t.data() + b, e - b);
        if (w.find("//") != std::string_view::npos) continue;
        std::size_t at = w.find('@');
        std::size_t slash = w.rfind('/', at);
        std::size_t colon = w.rfind(':', at);
        bool tagged = colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash);
        bool digest = at != std::string_view::npos;
        std::size_t name_end = digest ? at : tagged ? colon : w.size();
        std::string_view first = w.substr(0, w.find('/'));
        bool registry = w.find('/') != std::string_view::npos &&
                        (first.find('.') != std::string_view::npos || first.find(':') != std::string_view::npos ||
                         first == "localhost");
        if (!tagged && !digest && w.find('/') == std::string_view::npos)
            continue; // a bare word: at most the name part of something

        Span sp = attribute(r, l, b, e, b + name_end);
        // The name from image values, or a registry-qualified literal name whose tag or
        // digest comes from image values (`--image=ghcr.io/org/x:{{ .Values.image.tag }}`).
        bool by_tag = sp.tag_from_values && registry && (tagged || digest);
        if ((!sp.name_from_values && !by_tag) || !sp.unevaluated.empty()) continue;
        if (!tagged && !digest && !sp.whole_value) continue;
        if (!ref::Reference::try_parse(w)) continue;
        TemplateImage img;
        img.value = std::string(w);
        img.file = r.file;
        const Piece* key = piece_at(r, l, ls + indent_of(t, ls, le));
        img.line = key ? key->line : 0;
        img.live = sp.live;
        img.sources = std::move(sp.sources);
        img.spans = std::move(sp.spans);
        img.found_in = "value";
        out.push_back(std::move(img));
    }
}

} // namespace

bool image_shaped_path(const std::string& values_path, bool* tag_part) {
    if (tag_part) *tag_part = false;
    if (values_path.empty()) return false;
    std::string p;
    p.reserve(values_path.size());
    for (char c : values_path) p.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    std::string leaf = p.substr(p.rfind('.') == std::string::npos ? 0 : p.rfind('.') + 1);
    if (auto br = leaf.find('['); br != std::string::npos) leaf = leaf.substr(0, br);
    auto ends = [&](std::string_view suf) {
        return leaf.size() >= suf.size() && leaf.compare(leaf.size() - suf.size(), suf.size(), suf) == 0;
    };
    if (p.find("pull") != std::string::npos || p.find("policy") != std::string::npos ||
        p.find("secret") != std::string::npos)
        return false;
    bool shaped = p.find("image") != std::string::npos || leaf == "repository" || leaf == "repo" || ends("registry");
    if (shaped && tag_part)
        *tag_part = ends("tag") || ends("version") || ends("digest") || leaf == "sha" || ends("tagprefix") ||
                    ends("tagsuffix") || ends("sha256");
    return shaped;
}

namespace {

/// Whether the value of a `helm.sh/hook:` key (at t[v, le)) names a test hook.
bool names_test_hook(const std::string& t, std::size_t v, std::size_t le) {
    bool test = false;
    std::size_t b = v, e = strip_comment(t, v, le);
    unquote(t, b, e);
    std::string value = t.substr(b, e - b);
    std::size_t s = 0;
    while (s <= value.size()) {
        std::size_t c = value.find(',', s);
        if (c == std::string::npos) c = value.size();
        std::size_t hb = s, he = c;
        while (hb < he && blank(value[hb])) ++hb;
        while (he > hb && blank(value[he - 1])) --he;
        std::string hook = value.substr(hb, he - hb);
        if (hook == "test" || hook == "test-success") test = true;
        s = c + 1;
    }
    return test;
}

/// The bounds [vb, ve) of the value of an `image:` key that starts at t[v] on a line ending
/// at `le`: comment, a JSON member's trailing comma and quotes left out.
void image_value_bounds(const std::string& t, std::size_t v, std::size_t le, std::size_t& vb, std::size_t& ve) {
    vb = v;
    ve = strip_comment(t, v, le);
    {
        std::size_t ce = ve;
        while (ce > vb && blank(t[ce - 1])) --ce;
        if (ce > vb + 1 && t[ce - 1] == ',' && t[ce - 2] == '"') ve = ce - 1; // a JSON member: "image": "repo:tag",
    }
    unquote(t, vb, ve);
}

/// An `image:` key (at column p - ls of the line at ls) whose value is written as a line of
/// its own with the value at t[v, le), and what follows it.
struct ImageLine {
    const Rendered& r;
    const Layout& l;
    const std::string& t;
    std::size_t ls, p, le, next;
};

/// Split fields: image: NAME beside repository: and version:/tag:. Composes them into `img`
/// when `value` is a bare path and a `repository:` sibling exists.
void compose_split_fields(const ImageLine& k, const std::string& value, TemplateImage& img, bool& live) {
    const std::string& t = k.t;
    std::size_t rb = 0, re = 0;
    // The image part may hold a path (`nvidia/driver`), not a registry.
    std::string_view first_part = std::string_view(value).substr(0, value.find('/'));
    bool path_only = value.find('/') == std::string::npos ||
                     (first_part.find('.') == std::string_view::npos && first_part != "localhost");
    if (!value.empty() && value.find_first_of(":@ {}|>") == std::string::npos && path_only &&
        sibling_value(t, k.ls, k.p - k.ls, "repository", rb, re)) {
        std::string composed = t.substr(rb, re - rb) + "/" + value;
        Span rs = attribute(k.r, k.l, rb, re);
        live = live && rs.live;
        for (auto& o : rs.sources) img.sources.push_back(std::move(o));
        std::size_t tb = 0, te = 0;
        if (sibling_value(t, k.ls, k.p - k.ls, "version", tb, te) ||
            sibling_value(t, k.ls, k.p - k.ls, "tag", tb, te)) {
            std::string ver = t.substr(tb, te - tb);
            composed += (ver.rfind("sha256:", 0) == 0 ? "@" : ":") + ver;
            Span ts = attribute(k.r, k.l, tb, te);
            live = live && ts.live;
            for (auto& o : ts.sources) img.sources.push_back(std::move(o));
        }
        img.value = composed;
        img.spans.clear();
        img.found_in = "split fields";
    }
}

/// image: followed by a map of repository (+ registry, tag, digest), as custom resources
/// write it: composed registry/repository:tag@digest into `img` and `value` when the
/// repository comes from an image-shaped values path.
void compose_image_map(const ImageLine& k, std::string& value, TemplateImage& img, bool& live) {
    const std::string& t = k.t;
    const Rendered& r = k.r;
    const Layout& l = k.l;
    const std::size_t next = k.next;
    std::size_t nb = 0, ne = 0;
    if (value.empty() && img.unevaluated.empty() && next < t.size()) {
        std::size_t nle = t.find('\n', next);
        if (nle == std::string::npos) nle = t.size();
        std::size_t col = indent_of(t, next, nle);
        bool from_values = false;
        if (col > k.p - k.ls && next + col < nle && t[next + col] != '-' &&
            sibling_value(t, next, col, "repository", nb, ne)) {
            for (const auto& o : attribute(r, l, nb, ne).sources)
                from_values = from_values || image_shaped_path(o.values_path);
        }
        if (from_values) {
            std::string composed;
            auto part = [&](std::string_view field, std::string_view sep, bool before) {
                std::size_t b = 0, e = 0;
                if (!sibling_value(t, next, col, field, b, e)) return;
                Span ps = attribute(r, l, b, e);
                live = live && ps.live;
                for (auto& o : ps.sources) img.sources.push_back(std::move(o));
                std::string text = t.substr(b, e - b);
                composed = before ? text + std::string(sep) + composed : composed + std::string(sep) + text;
            };
            composed = t.substr(nb, ne - nb);
            Span rs = attribute(r, l, nb, ne);
            live = live && rs.live;
            for (auto& o : rs.sources) img.sources.push_back(std::move(o));
            part("registry", "/", true);
            part("tag", ":", false);
            part("digest", "@", false);
            img.value = composed;
            img.spans.clear();
            img.found_in = "image map";
            value = composed;
        }
    }
}

/// The image of an `image:` key whose value starts at t[v]; nullopt when the key holds no
/// image reference (nothing, as when a nested map follows, or an empty map).
std::optional<TemplateImage> image_of_key(const ImageLine& k, std::size_t v) {
    std::size_t vb = 0, ve = 0;
    image_value_bounds(k.t, v, k.le, vb, ve);
    std::string value = k.t.substr(vb, ve - vb);
    TemplateImage img;
    img.value = value;
    img.file = k.r.file;
    const Piece* key = piece_at(k.r, k.l, k.p);
    img.line = key ? key->line : 0;
    bool live = key ? key->live : true;
    Span sp = attribute(k.r, k.l, vb, ve);
    img.sources = std::move(sp.sources);
    img.spans = std::move(sp.spans);
    img.unevaluated = std::move(sp.unevaluated);
    live = live && sp.live;
    compose_split_fields(k, value, img, live);
    compose_image_map(k, value, img, live);
    img.live = live;
    // Not an image reference: nothing (a nested map follows), or an empty map.
    bool nothing = value.empty() || value == "{}" || value == "|" || value == "|-" || value == ">" || value == ">-";
    if (nothing && img.unevaluated.empty()) return std::nullopt;
    return img;
}

} // namespace

std::vector<TemplateImage> scan_images(const Rendered& r) {
    Layout l = layout(r);
    const std::string& t = l.text;
    std::vector<TemplateImage> out;
    std::size_t doc_first = 0; // first image of the current document in `out`
    bool doc_test = false;
    auto end_doc = [&] {
        for (std::size_t i = doc_first; i < out.size(); ++i) out[i].test_hook = doc_test;
        doc_first = out.size();
        doc_test = false;
    };

    std::size_t ls = 0;
    while (ls <= t.size()) {
        std::size_t le = t.find('\n', ls);
        if (le == std::string::npos) le = t.size();
        std::size_t next = le + 1;
        if (t.compare(ls, 3, "---") == 0 && (le - ls == 3 || blank(t[ls + 3]))) {
            end_doc();
            ls = next;
            continue;
        }
        std::size_t p = ls;
        while (p < le && blank(t[p])) ++p;
        if (p >= le || t[p] == '#') {
            ls = next;
            continue;
        }
        // List item markers: "- ", "- - ".
        while (p < le && t[p] == '-' && (p + 1 == le || blank(t[p + 1]))) {
            ++p;
            while (p < le && blank(t[p])) ++p;
        }
        if (std::size_t v = after_key(t, p, le, "helm.sh/hook"); v != std::string::npos) {
            if (names_test_hook(t, v, le)) doc_test = true;
            ls = next;
            continue;
        }
        std::size_t v = after_key(t, p, le, "image");
        if (v == std::string::npos) {
            value_refs(r, l, p, le, out);
            ls = next;
            continue;
        }
        if (auto img = image_of_key(ImageLine{r, l, t, ls, p, le, next}, v)) out.push_back(std::move(*img));
        ls = next;
    }
    end_doc();
    return out;
}

} // namespace aas::chart::tmpl
