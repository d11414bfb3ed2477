// Lexer and parser of Go text/template, as far as helm charts use it.
//
// Two passes: the text is cut into items (text, action tokens, comments) with their trim
// markers, the trims are applied to the neighbouring text, and a recursive parser builds the
// tree. Errors are "FILE:LINE: message" with the line of the offending action.

#include "template_impl.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstdlib>

namespace aas::chart::tmpl::detail {

bool Tree::empty() const {
    for (const auto& n : nodes) {
        if (n.kind != Node::Kind::text) return false;
        for (char c : n.text)
            if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return false;
    }
    return true;
}

namespace {

struct SyntaxError {
    int line;
    std::string message;
};

enum class T { dot, field, var, ident, str, number, chr, lparen, rparen, pipe, decl, assign, comma };

struct Token {
    T t;
    std::string text; ///< field name (without '.'), variable ("$x"), identifier, decoded string,
                      ///< number text
    std::int64_t chr = 0;
    bool space_before = false;
    int line = 0;
};

struct Item {
    enum class Kind { text, action, comment } kind;
    std::string text;        ///< text, or the action's source
    std::vector<Token> toks; ///< action tokens
    int line = 0;
    bool trim_left = false;  ///< `{{-`: trims the text before
    bool trim_right = false; ///< `-}}`: trims the text after
};

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}
bool is_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           static_cast<unsigned char>(c) >= 0x80;
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

void put_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

int hex_val(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/// Decodes a Go escape sequence starting after the backslash at s[i]; advances i.
/// `quote` is the delimiter the literal uses (\" in strings, \' in chars).
void decode_escape(std::string_view s, std::size_t& i, char quote, std::string& out, int line) {
    if (i >= s.size()) throw SyntaxError{line, "unterminated quoted string"};
    char c = s[i++];
    switch (c) {
    case 'a':
        out.push_back('\a');
        return;
    case 'b':
        out.push_back('\b');
        return;
    case 'f':
        out.push_back('\f');
        return;
    case 'n':
        out.push_back('\n');
        return;
    case 'r':
        out.push_back('\r');
        return;
    case 't':
        out.push_back('\t');
        return;
    case 'v':
        out.push_back('\v');
        return;
    case '\\':
        out.push_back('\\');
        return;
    case '"':
    case '\'':
        if (c != quote) throw SyntaxError{line, fmt::format("invalid escape \\{} in quoted string", c)};
        out.push_back(c);
        return;
    case 'x':
    case 'u':
    case 'U': {
        std::size_t n = c == 'x' ? 2 : c == 'u' ? 4 : 8;
        std::uint32_t v = 0;
        for (std::size_t k = 0; k < n; ++k) {
            if (i >= s.size() || hex_val(s[i]) < 0) throw SyntaxError{line, "invalid escape in quoted string"};
            v = v * 16 + static_cast<std::uint32_t>(hex_val(s[i++]));
        }
        if (c == 'x')
            out.push_back(static_cast<char>(v));
        else
            put_utf8(out, v);
        return;
    }
    default:
        if (c >= '0' && c <= '7') {
            std::uint32_t v = static_cast<std::uint32_t>(c - '0');
            for (int k = 0; k < 2; ++k) {
                if (i >= s.size() || s[i] < '0' || s[i] > '7')
                    throw SyntaxError{line, "invalid escape in quoted string"};
                v = v * 8 + static_cast<std::uint32_t>(s[i++] - '0');
            }
            out.push_back(static_cast<char>(v));
            return;
        }
        throw SyntaxError{line, fmt::format("invalid escape \\{} in quoted string", c)};
    }
}

/// Cuts template text into items.
class Lexer {
public:
    Lexer(std::string_view src, int first_line) : s_(src), line_(first_line) {}

    std::vector<Item> run() {
        std::vector<Item> items;
        while (pos_ < s_.size()) {
            std::size_t open = s_.find("{{", pos_);
            if (open == std::string_view::npos) open = s_.size();
            if (open > pos_) {
                Item t{Item::Kind::text, std::string(s_.substr(pos_, open - pos_)), {}, line_, false, false};
                items.push_back(std::move(t));
                advance_to(open);
            }
            if (pos_ >= s_.size()) break;
            items.push_back(action());
        }
        return items;
    }

private:
    void advance_to(std::size_t p) {
        for (; pos_ < p; ++pos_)
            if (s_[pos_] == '\n') ++line_;
    }

    Item action() {
        Item it{Item::Kind::action, {}, {}, line_, false, false};
        int start_line = line_;
        advance_to(pos_ + 2);
        if (pos_ + 1 < s_.size() && s_[pos_] == '-' && is_space(s_[pos_ + 1])) {
            it.trim_left = true;
            advance_to(pos_ + 1);
        }
        // A comment: "/*" right after the delimiter (and the trim marker's space).
        std::size_t p = pos_;
        if (it.trim_left)
            while (p < s_.size() && is_space(s_[p])) ++p;
        if (s_.substr(p, 2) == "/*") {
            std::size_t end = s_.find("*/", p + 2);
            if (end == std::string_view::npos) throw SyntaxError{start_line, "unclosed comment"};
            advance_to(end + 2);
            if (s_.substr(pos_, 2) == "}}") {
                advance_to(pos_ + 2);
            } else if (s_.substr(pos_, 4) == " -}}" || s_.substr(pos_, 4) == "\t-}}" || s_.substr(pos_, 4) == "\n-}}" ||
                       s_.substr(pos_, 4) == "\r-}}") {
                it.trim_right = true;
                advance_to(pos_ + 4);
            } else {
                throw SyntaxError{start_line, "comment ends before closing delimiter"};
            }
            it.kind = Item::Kind::comment;
            return it;
        }
        std::size_t content_start = pos_;
        bool space = true;
        while (true) {
            if (pos_ >= s_.size()) throw SyntaxError{start_line, "unclosed action"};
            char c = s_[pos_];
            if (is_space(c)) {
                // " -}}" ends the action with a trim marker.
                if (s_.substr(pos_ + 1, 3) == "-}}") {
                    it.text = std::string(s_.substr(content_start, pos_ - content_start));
                    advance_to(pos_ + 4);
                    it.trim_right = true;
                    return it;
                }
                advance_to(pos_ + 1);
                space = true;
                continue;
            }
            if (s_.substr(pos_, 2) == "}}") {
                it.text = std::string(s_.substr(content_start, pos_ - content_start));
                advance_to(pos_ + 2);
                return it;
            }
            Token tok = token();
            tok.space_before = space;
            space = false;
            it.toks.push_back(std::move(tok));
        }
    }

    Token token() {
        Token t{T::dot, {}, 0, false, line_};
        char c = s_[pos_];
        auto next = [&](std::size_t k) { return pos_ + k < s_.size() ? s_[pos_ + k] : '\0'; };
        switch (c) {
        case '(':
            t.t = T::lparen;
            advance_to(pos_ + 1);
            return t;
        case ')':
            t.t = T::rparen;
            advance_to(pos_ + 1);
            return t;
        case '|':
            t.t = T::pipe;
            advance_to(pos_ + 1);
            return t;
        case ',':
            t.t = T::comma;
            advance_to(pos_ + 1);
            return t;
        case '=':
            t.t = T::assign;
            advance_to(pos_ + 1);
            return t;
        case ':':
            if (next(1) != '=') throw SyntaxError{line_, "expected :="};
            t.t = T::decl;
            advance_to(pos_ + 2);
            return t;
        case '"':
            return quoted();
        case '`':
            return raw();
        case '\'':
            return chr();
        case '$': {
            std::size_t e = pos_ + 1;
            while (e < s_.size() && is_alnum(s_[e])) ++e;
            t.t = T::var;
            t.text = std::string(s_.substr(pos_, e - pos_));
            advance_to(e);
            return t;
        }
        case '.':
            if (is_digit(next(1))) return number();
            {
                std::size_t e = pos_ + 1;
                while (e < s_.size() && is_alnum(s_[e])) ++e;
                if (e == pos_ + 1) {
                    t.t = T::dot;
                } else {
                    t.t = T::field;
                    t.text = std::string(s_.substr(pos_ + 1, e - pos_ - 1));
                }
                advance_to(e);
                return t;
            }
        default:
            break;
        }
        if (is_digit(c) || ((c == '-' || c == '+') && (is_digit(next(1)) || (next(1) == '.' && is_digit(next(2))))))
            return number();
        if (is_alnum(c)) {
            std::size_t e = pos_;
            while (e < s_.size() && is_alnum(s_[e])) ++e;
            t.t = T::ident;
            t.text = std::string(s_.substr(pos_, e - pos_));
            advance_to(e);
            return t;
        }
        throw SyntaxError{line_, fmt::format("unexpected \"{}\" in command", c)};
    }

    Token number() {
        Token t{T::number, {}, 0, false, line_};
        std::size_t e = pos_;
        if (s_[e] == '+' || s_[e] == '-') ++e;
        // Digits, letters (hex digits, prefixes, exponents), '_', '.', and a sign after an
        // exponent letter.
        while (e < s_.size()) {
            char c = s_[e];
            if (is_alnum(c) || c == '.') {
                ++e;
            } else if ((c == '+' || c == '-') && e > pos_ &&
                       (s_[e - 1] == 'e' || s_[e - 1] == 'E' || s_[e - 1] == 'p' || s_[e - 1] == 'P') &&
                       !(s_.substr(pos_, 2) == "0x" || s_.substr(pos_, 2) == "0X")) {
                ++e;
            } else {
                break;
            }
        }
        t.text = std::string(s_.substr(pos_, e - pos_));
        advance_to(e);
        return t;
    }

    Token quoted() {
        Token t{T::str, {}, 0, false, line_};
        std::size_t i = pos_ + 1;
        while (true) {
            if (i >= s_.size() || s_[i] == '\n') throw SyntaxError{line_, "unterminated quoted string"};
            char c = s_[i];
            if (c == '"') break;
            if (c == '\\') {
                ++i;
                decode_escape(s_, i, '"', t.text, line_);
                continue;
            }
            t.text.push_back(c);
            ++i;
        }
        advance_to(i + 1);
        return t;
    }

    Token raw() {
        Token t{T::str, {}, 0, false, line_};
        std::size_t e = s_.find('`', pos_ + 1);
        if (e == std::string_view::npos) throw SyntaxError{line_, "unterminated raw quoted string"};
        t.text = std::string(s_.substr(pos_ + 1, e - pos_ - 1));
        advance_to(e + 1);
        return t;
    }

    Token chr() {
        Token t{T::chr, {}, 0, false, line_};
        std::size_t i = pos_ + 1;
        std::string v;
        if (i < s_.size() && s_[i] == '\\') {
            ++i;
            decode_escape(s_, i, '\'', v, line_);
        } else {
            // One UTF-8 encoded character.
            if (i >= s_.size() || s_[i] == '\n' || s_[i] == '\'')
                throw SyntaxError{line_, "unterminated character constant"};
            unsigned char c0 = static_cast<unsigned char>(s_[i]);
            std::size_t n = c0 < 0x80 ? 1 : c0 < 0xE0 ? 2 : c0 < 0xF0 ? 3 : 4;
            v = std::string(s_.substr(i, n));
            i += n;
        }
        if (i >= s_.size() || s_[i] != '\'') throw SyntaxError{line_, "unterminated character constant"};
        // Decode the UTF-8 back to a code point.
        std::uint32_t cp = 0;
        unsigned char c0 = v.empty() ? 0 : static_cast<unsigned char>(v[0]);
        if (v.size() <= 1 || c0 < 0x80) {
            cp = c0;
        } else {
            cp = c0 & (v.size() == 2 ? 0x1F : v.size() == 3 ? 0x0F : 0x07);
            for (std::size_t k = 1; k < v.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(v[k]) & 0x3F);
        }
        t.chr = cp;
        advance_to(i + 1);
        return t;
    }

    std::string_view s_;
    std::size_t pos_ = 0;
    int line_;
};

/// Applies trim markers to the text items and drops empty ones.
void apply_trims(std::vector<Item>& items) {
    for (std::size_t k = 0; k < items.size(); ++k) {
        if (items[k].kind != Item::Kind::text) continue;
        auto& t = items[k];
        if (k + 1 < items.size() && items[k + 1].trim_left) {
            std::size_t e = t.text.size();
            while (e > 0 && is_space(t.text[e - 1])) --e;
            t.text.resize(e);
        }
        if (k > 0 && items[k - 1].trim_right) {
            std::size_t b = 0;
            while (b < t.text.size() && is_space(t.text[b])) {
                if (t.text[b] == '\n') ++t.line;
                ++b;
            }
            t.text.erase(0, b);
        }
    }
    std::erase_if(items, [](const Item& i) { return i.kind == Item::Kind::text && i.text.empty(); });
}

/// Parses a number literal the way Go's parse.NumberNode and idealConstant do: integers
/// (decimal, 0x, 0o, 0b, leading-0 octal, '_' separators) become int, the rest float64.
bool parse_number(const std::string& text, Arg& a) {
    NumberText n = split_number(text);
    bool neg = n.neg;
    std::string_view body(n.body);
    if (body.empty()) return false;
    int base = n.base;
    std::string_view digits = n.digits();
    bool floaty = base == 10 && body.find_first_of(".eE") != std::string_view::npos;
    if (!floaty) {
        if (base == 10 && body.size() > 1 && body[0] == '0') {
            base = 8;
            digits = body.substr(1);
        }
        std::uint64_t v = 0;
        auto r = std::from_chars(digits.data(), digits.data() + digits.size(), v, base);
        if (r.ec == std::errc() && r.ptr == digits.data() + digits.size()) {
            if (v <= static_cast<std::uint64_t>(INT64_MAX) || (neg && v == static_cast<std::uint64_t>(INT64_MAX) + 1)) {
                a.kind = Arg::Kind::integer;
                a.i = neg ? static_cast<std::int64_t>(0 - v) : static_cast<std::int64_t>(v);
                return true;
            }
            a.kind = Arg::Kind::floating;
            a.f = neg ? -static_cast<double>(v) : static_cast<double>(v);
            return true;
        }
        if (base != 10) return false;
    }
    char* end = nullptr;
    std::string str(body);
    double d = std::strtod(str.c_str(), &end);
    if (end != str.c_str() + str.size() || str.empty()) return false;
    a.kind = Arg::Kind::floating;
    a.f = neg ? -d : d;
    return true;
}

class Parser {
public:
    Parser(std::vector<Item> items, std::string file) : items_(std::move(items)), file_(std::move(file)) {}

    ParseResult run() {
        ParseResult r;
        auto main = std::make_shared<Tree>();
        main->name = file_;
        main->file = file_;
        std::vector<Token> rest;
        End e = list(main->nodes, true, rest);
        if (e == End::end) throw SyntaxError{last_line_, "unexpected {{end}}"};
        if (e == End::else_) throw SyntaxError{last_line_, "unexpected {{else}}"};
        r.main = std::move(main);
        r.defines = std::move(defines_);
        return r;
    }

private:
    enum class End { eof, end, else_ };

    /// Parses nodes until EOF, {{end}} or {{else ...}} (its tokens after "else" go to `rest`).
    End list(std::vector<Node>& out, bool top, std::vector<Token>& rest) {
        while (pos_ < items_.size()) {
            Item& it = items_[pos_++];
            last_line_ = it.line;
            if (it.kind == Item::Kind::comment) continue;
            if (it.kind == Item::Kind::text) {
                Node n;
                n.kind = Node::Kind::text;
                n.line = it.line;
                n.text = std::move(it.text);
                out.push_back(std::move(n));
                continue;
            }
            auto& toks = it.toks;
            if (toks.empty()) throw SyntaxError{it.line, "missing value for command"};
            const Token& k = toks[0];
            if (k.t == T::ident) {
                if (k.text == "end") {
                    if (toks.size() > 1) throw SyntaxError{it.line, "unexpected tokens in {{end}}"};
                    return End::end;
                }
                if (k.text == "else") {
                    rest.assign(toks.begin() + 1, toks.end());
                    return End::else_;
                }
                if (k.text == "if" || k.text == "with" || k.text == "range") {
                    out.push_back(control(k.text, std::vector<Token>(toks.begin() + 1, toks.end()), it));
                    continue;
                }
                if (k.text == "define") {
                    if (!top) throw SyntaxError{it.line, "unexpected <define> in command"};
                    define(it, false, out);
                    continue;
                }
                if (k.text == "block") {
                    define(it, true, out);
                    continue;
                }
                if (k.text == "template") {
                    out.push_back(call(it, 1));
                    continue;
                }
                if (k.text == "break" || k.text == "continue") {
                    if (toks.size() > 1)
                        throw SyntaxError{it.line, fmt::format("unexpected tokens in {{{{{}}}}}", k.text)};
                    if (range_depth_ == 0)
                        throw SyntaxError{it.line, fmt::format("{{{{{}}}}} outside {{{{range}}}}", k.text)};
                    Node n;
                    n.kind = k.text == "break" ? Node::Kind::break_ : Node::Kind::continue_;
                    n.line = it.line;
                    out.push_back(std::move(n));
                    continue;
                }
            }
            Node n;
            n.kind = Node::Kind::action;
            n.line = it.line;
            n.pipe = pipeline(toks, 0, toks.size(), it.line, it.text, true, false, "command");
            out.push_back(std::move(n));
        }
        return End::eof;
    }

    Node control(const std::string& kw, std::vector<Token> toks, const Item& it) {
        Node n;
        n.kind = kw == "if" ? Node::Kind::if_ : kw == "with" ? Node::Kind::with : Node::Kind::range;
        n.line = it.line;
        n.pipe = pipeline(toks, 0, toks.size(), it.line, it.text, true, kw == "range", kw);
        if (n.kind == Node::Kind::range) ++range_depth_;
        std::vector<Token> rest;
        End e = list(n.body, false, rest);
        if (n.kind == Node::Kind::range) --range_depth_;
        if (e == End::eof) throw SyntaxError{it.line, fmt::format("unexpected EOF: {{{{{}}}}} has no {{{{end}}}}", kw)};
        if (e == End::else_) {
            if (!rest.empty()) {
                // `else if` / `else with`: a nested control that shares this one's {{end}}.
                if (rest[0].t == T::ident && (rest[0].text == "if" || rest[0].text == "with") &&
                    n.kind != Node::Kind::range) {
                    std::string nested = rest[0].text;
                    const Item& else_item = items_[pos_ - 1];
                    n.alt.push_back(control(nested, std::vector<Token>(rest.begin() + 1, rest.end()), else_item));
                    return n;
                }
                throw SyntaxError{last_line_, "unexpected tokens in {{else}}"};
            }
            std::vector<Token> rest2;
            End e2 = list(n.alt, false, rest2);
            if (e2 == End::else_) throw SyntaxError{last_line_, "expected end; found {{else}}"};
            if (e2 == End::eof)
                throw SyntaxError{it.line, fmt::format("unexpected EOF: {{{{{}}}}} has no {{{{end}}}}", kw)};
        }
        return n;
    }

    /// `template "name" [pipeline]` (first token at `from`).
    Node call(const Item& it, std::size_t from) {
        const auto& toks = it.toks;
        if (toks.size() <= from || toks[from].t != T::str) throw SyntaxError{it.line, "template name must be a string"};
        Node n;
        n.kind = Node::Kind::call;
        n.line = it.line;
        n.text = toks[from].text;
        if (toks.size() > from + 1)
            n.pipe = pipeline(toks, from + 1, toks.size(), it.line, it.text, false, false, "template");
        return n;
    }

    void define(const Item& it, bool block, std::vector<Node>& out) {
        const auto& toks = it.toks;
        if (toks.size() < 2 || toks[1].t != T::str)
            throw SyntaxError{it.line, fmt::format("{} name must be a string", block ? "block" : "define")};
        if (!block && toks.size() > 2) throw SyntaxError{it.line, "unexpected tokens after define name"};
        auto t = std::make_shared<Tree>();
        t->name = toks[1].text;
        t->file = file_;
        std::vector<Token> rest;
        End e = list(t->nodes, false, rest);
        if (e != End::end)
            throw SyntaxError{it.line,
                              fmt::format("unexpected {}: {} \"{}\" has no {{{{end}}}}",
                                          e == End::eof ? "EOF" : "{{else}}", block ? "block" : "define", t->name)};
        defines_.push_back(t);
        if (block) out.push_back(call(it, 1));
    }

    /// Parses toks[from, to) as a pipeline.
    std::shared_ptr<Pipe> pipeline(const std::vector<Token>& toks, std::size_t from, std::size_t to, int line,
                                   const std::string& src, bool allow_decl, bool two_vars, const std::string& ctx) {
        auto p = std::make_shared<Pipe>();
        p->line = line;
        p->src = src;
        std::size_t i = from;
        if (allow_decl && i + 1 < to && toks[i].t == T::var) {
            if (toks[i + 1].t == T::decl || toks[i + 1].t == T::assign) {
                p->vars.push_back(toks[i].text);
                (toks[i + 1].t == T::decl ? p->decl : p->assign) = true;
                i += 2;
            } else if (toks[i + 1].t == T::comma && i + 3 < to && toks[i + 2].t == T::var &&
                       (toks[i + 3].t == T::decl || toks[i + 3].t == T::assign)) {
                if (!two_vars) throw SyntaxError{line, "too many declarations in " + ctx};
                p->vars = {toks[i].text, toks[i + 2].text};
                (toks[i + 3].t == T::decl ? p->decl : p->assign) = true;
                i += 4;
            }
        }
        if (p->decl || p->assign)
            for (const auto& v : p->vars)
                if (p->assign && v == "$") throw SyntaxError{line, "cannot assign to $"};
        commands(toks, i, to, *p, line, ctx);
        return p;
    }

    void commands(const std::vector<Token>& toks, std::size_t& i, std::size_t to, Pipe& p, int line,
                  const std::string& ctx) {
        while (true) {
            Cmd c;
            while (i < to && toks[i].t != T::pipe && toks[i].t != T::rparen)
                c.args.push_back(operand(toks, i, to, line));
            if (c.args.empty()) throw SyntaxError{line, fmt::format("missing value for {}", ctx)};
            p.cmds.push_back(std::move(c));
            if (i < to && toks[i].t == T::pipe) {
                ++i;
                continue;
            }
            break;
        }
        if (i < to) throw SyntaxError{line, fmt::format("unexpected \")\" in {}", ctx)};
    }

    Arg operand(const std::vector<Token>& toks, std::size_t& i, std::size_t to, int line) {
        Arg a;
        const Token& t = toks[i];
        bool chain_ok = false;
        switch (t.t) {
        case T::dot:
            a.kind = Arg::Kind::dot;
            chain_ok = true;
            ++i;
            break;
        case T::field:
            a.kind = Arg::Kind::dot;
            a.fields.push_back(t.text);
            chain_ok = true;
            ++i;
            break;
        case T::var:
            a.kind = Arg::Kind::variable;
            a.text = t.text;
            chain_ok = true;
            ++i;
            break;
        case T::str:
            a.kind = Arg::Kind::string;
            a.text = t.text;
            ++i;
            break;
        case T::chr:
            a.kind = Arg::Kind::integer;
            a.i = t.chr;
            ++i;
            break;
        case T::number:
            if (!parse_number(t.text, a)) throw SyntaxError{t.line, fmt::format("bad number syntax: \"{}\"", t.text)};
            ++i;
            break;
        case T::ident:
            a = identifier(t);
            ++i;
            break;
        case T::lparen:
            a = parenthesized(toks, i, to, line);
            chain_ok = true;
            break;
        case T::rparen:
            throw SyntaxError{t.line, "unexpected right paren"};
        case T::decl:
            throw SyntaxError{t.line, "unexpected \":=\" in operand"};
        case T::assign:
            throw SyntaxError{t.line, "unexpected \"=\" in operand"};
        case T::comma:
            throw SyntaxError{t.line, "unexpected \",\" in operand"};
        case T::pipe:
            throw SyntaxError{t.line, "unexpected \"|\" in operand"};
        }
        field_chain(toks, i, to, a, chain_ok);
        return a;
    }

    // nil, true, false or a function name; a keyword is not an operand.
    static Arg identifier(const Token& t) {
        Arg a;
        if (t.text == "nil") {
            a.kind = Arg::Kind::nil;
        } else if (t.text == "true" || t.text == "false") {
            a.kind = Arg::Kind::boolean;
            a.b = t.text == "true";
        } else if (t.text == "if" || t.text == "else" || t.text == "end" || t.text == "range" || t.text == "with" ||
                   t.text == "define" || t.text == "template" || t.text == "block" || t.text == "break" ||
                   t.text == "continue") {
            throw SyntaxError{t.line, fmt::format("unexpected <{}> in command", t.text)};
        } else {
            a.kind = Arg::Kind::ident;
            a.text = t.text;
        }
        return a;
    }

    // A pipeline in parentheses starting at toks[i] ("("); `i` ends past its ")".
    Arg parenthesized(const std::vector<Token>& toks, std::size_t& i, std::size_t to, int line) {
        const Token& t = toks[i];
        ++i;
        // Find the matching parenthesis.
        int depth = 1;
        std::size_t j = i;
        for (; j < to; ++j) {
            if (toks[j].t == T::lparen) ++depth;
            if (toks[j].t == T::rparen && --depth == 0) break;
        }
        if (j >= to) throw SyntaxError{t.line, "unclosed left paren"};
        Arg a;
        a.kind = Arg::Kind::pipe;
        a.pipe = std::make_shared<Pipe>();
        a.pipe->line = t.line;
        std::size_t k = i;
        commands(toks, k, j, *a.pipe, line, "parenthesized pipeline");
        i = j + 1;
        return a;
    }

    // A field chain directly attached to the term (`$x.a.b`, `(f).a`), when `chain_ok`.
    static void field_chain(const std::vector<Token>& toks, std::size_t& i, std::size_t to, Arg& a, bool chain_ok) {
        while (i < to && toks[i].t == T::field && !toks[i].space_before) {
            if (!chain_ok) throw SyntaxError{toks[i].line, fmt::format("unexpected .{} after term", toks[i].text)};
            a.fields.push_back(toks[i].text);
            ++i;
        }
        if (i < to && toks[i].t == T::dot && !toks[i].space_before)
            throw SyntaxError{toks[i].line, "unexpected . after term"};
    }

    std::vector<Item> items_;
    std::string file_;
    std::size_t pos_ = 0;
    int last_line_ = 1;
    int range_depth_ = 0;
    std::vector<std::shared_ptr<Tree>> defines_;
};

} // namespace

ParseResult parse(std::string_view text, const std::string& file, int first_line) {
    try {
        std::vector<Item> items = Lexer(text, first_line).run();
        apply_trims(items);
        return Parser(std::move(items), file).run();
    } catch (const SyntaxError& e) {
        ParseResult r;
        r.errors.push_back(fmt::format("{}:{}: {}", file, e.line, e.message));
        return r;
    }
}

} // namespace aas::chart::tmpl::detail
