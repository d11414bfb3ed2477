// Finds `image:` values in rendered output, line by line, and attributes each to the pieces
// of output it overlaps (liveness, origins, placeholders) and to the template line of its key.

#include "template_impl.hpp"

#include <algorithm>

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
        if (!p.text.empty())
            return off < l.start[i] + p.text.size() ? &p : nullptr;
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
        if (c == '#' && i > b && blank(t[i - 1]))
            return i;
    }
    return e;
}

/// The position after a key `name:` at `p` (the key possibly quoted), or npos.
std::size_t after_key(const std::string& t, std::size_t p, std::size_t e, std::string_view name) {
    std::size_t q = p;
    char quote = 0;
    if (q < e && (t[q] == '"' || t[q] == '\''))
        quote = t[q++];
    if (t.compare(q, name.size(), name) != 0)
        return std::string::npos;
    q += name.size();
    if (quote) {
        if (q >= e || t[q] != quote)
            return std::string::npos;
        ++q;
    }
    if (q >= e || t[q] != ':')
        return std::string::npos;
    ++q;
    if (q < e && !blank(t[q]))
        return std::string::npos;
    return q;
}

/// Trims blanks and one pair of matching quotes around [b, e).
void unquote(const std::string& t, std::size_t& b, std::size_t& e) {
    while (b < e && blank(t[b]))
        ++b;
    while (e > b && blank(t[e - 1]))
        --e;
    if (e - b >= 2 && (t[b] == '"' || t[b] == '\'') && t[e - 1] == t[b]) {
        ++b;
        --e;
        while (b < e && blank(t[b]))
            ++b;
        while (e > b && blank(t[e - 1]))
            --e;
    }
}

bool same_origin(const Origin& a, const Origin& b) {
    return a.file == b.file && a.line == b.line && a.values_path == b.values_path;
}

} // namespace

std::vector<TemplateImage> scan_images(const Rendered& r) {
    Layout l = layout(r);
    const std::string& t = l.text;
    std::vector<TemplateImage> out;
    std::size_t doc_first = 0; // first image of the current document in `out`
    bool doc_test = false;
    auto end_doc = [&] {
        for (std::size_t i = doc_first; i < out.size(); ++i)
            out[i].test_hook = doc_test;
        doc_first = out.size();
        doc_test = false;
    };

    std::size_t ls = 0;
    while (ls <= t.size()) {
        std::size_t le = t.find('\n', ls);
        if (le == std::string::npos)
            le = t.size();
        std::size_t next = le + 1;
        if (t.compare(ls, 3, "---") == 0 && (le - ls == 3 || blank(t[ls + 3]))) {
            end_doc();
            ls = next;
            continue;
        }
        std::size_t p = ls;
        while (p < le && blank(t[p]))
            ++p;
        if (p >= le || t[p] == '#') {
            ls = next;
            continue;
        }
        // List item markers: "- ", "- - ".
        while (p < le && t[p] == '-' && (p + 1 == le || blank(t[p + 1]))) {
            ++p;
            while (p < le && blank(t[p]))
                ++p;
        }
        if (std::size_t v = after_key(t, p, le, "helm.sh/hook"); v != std::string::npos) {
            std::size_t b = v, e = strip_comment(t, v, le);
            unquote(t, b, e);
            std::string value = t.substr(b, e - b);
            std::size_t s = 0;
            while (s <= value.size()) {
                std::size_t c = value.find(',', s);
                if (c == std::string::npos)
                    c = value.size();
                std::size_t hb = s, he = c;
                while (hb < he && blank(value[hb]))
                    ++hb;
                while (he > hb && blank(value[he - 1]))
                    --he;
                std::string hook = value.substr(hb, he - hb);
                if (hook == "test" || hook == "test-success")
                    doc_test = true;
                s = c + 1;
            }
            ls = next;
            continue;
        }
        std::size_t v = after_key(t, p, le, "image");
        if (v == std::string::npos) {
            ls = next;
            continue;
        }
        std::size_t vb = v;
        std::size_t ve = strip_comment(t, v, le);
        unquote(t, vb, ve);
        std::string value = t.substr(vb, ve - vb);
        TemplateImage img;
        img.value = value;
        img.file = r.file;
        const Piece* key = piece_at(r, l, p);
        img.line = key ? key->line : 0;
        bool live = key ? key->live : true;
        // Pieces from the one that may start before the value up to the value's end.
        std::size_t first = static_cast<std::size_t>(
            std::lower_bound(l.start.begin(), l.start.end(), vb) - l.start.begin());
        while (first > 0 && (l.start[first - 1] + r.pieces[first - 1].text.size() > vb ||
                             l.start[first - 1] == vb))
            --first;
        for (std::size_t i = first; i < r.pieces.size() && l.start[i] <= ve; ++i) {
            const Piece& piece = r.pieces[i];
            std::size_t ps = l.start[i], pe = ps + piece.text.size();
            bool overlaps = piece.text.empty() ? (ps >= vb && ps <= ve) : (ps < ve && pe > vb);
            if (!overlaps)
                continue;
            if (piece.text.empty() && piece.unevaluated.empty())
                continue;
            live = live && piece.live;
            for (const auto& o : piece.sources) {
                bool seen = std::any_of(img.sources.begin(), img.sources.end(),
                                        [&](const Origin& x) { return same_origin(x, o); });
                if (!seen)
                    img.sources.push_back(o);
            }
            if (img.unevaluated.empty() && !piece.unevaluated.empty())
                img.unevaluated = piece.unevaluated;
        }
        img.live = live;
        // Not an image reference: nothing (a nested map follows), or an empty map.
        bool nothing = value.empty() || value == "{}" || value == "|" || value == "|-" ||
                       value == ">" || value == ">-";
        if (!(nothing && img.unevaluated.empty()))
            out.push_back(std::move(img));
        ls = next;
    }
    end_doc();
    return out;
}

} // namespace aas::chart::tmpl
