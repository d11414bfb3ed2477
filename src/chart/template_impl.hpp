#pragma once
// Internals of the Go text/template engine (see include/aas_bundle/chart/template.hpp):
// the syntax tree, the runtime value with provenance, and the evaluator interface that
// the function library uses. Shared by template_parse.cpp, template_value.cpp,
// template_eval.cpp, template_funcs.cpp and template_scan.cpp; not a public header.

#include "aas_bundle/chart/template.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aas::chart::tmpl::detail {

// ---------------------------------------------------------------------------------------------
// Syntax tree

struct Pipe;

/// An operand: a term (dot, literal, variable, function name, parenthesised pipeline)
/// followed by an optional field chain (`.a.b`).
struct Arg {
    enum class Kind { dot, nil, boolean, integer, floating, string, variable, ident, pipe };
    Kind kind = Kind::dot;
    std::string text; ///< string literal, variable ("$", "$x") or function name
    bool b = false;
    std::int64_t i = 0;
    double f = 0;
    std::vector<std::string> fields; ///< field chain after the term
    std::shared_ptr<Pipe> pipe;      ///< Kind::pipe
};

struct Cmd {
    std::vector<Arg> args;
};

struct Pipe {
    int line = 0;
    std::string src;               ///< source text, for messages
    bool decl = false;             ///< `$x :=`
    bool assign = false;           ///< `$x =`
    std::vector<std::string> vars; ///< declared/assigned variables ("$x")
    std::vector<Cmd> cmds;
};

struct Node {
    enum class Kind { text, action, if_, with, range, call, break_, continue_ };
    Kind kind = Kind::text;
    int line = 0;
    std::string text;           ///< text node's text; template name of `template`
    std::shared_ptr<Pipe> pipe; ///< condition / value / template argument (may be null)
    std::vector<Node> body;
    std::vector<Node> alt; ///< else list
};

/// A parsed template body: a file's top level or one `define`.
struct Tree {
    std::string name; ///< define name, or the file's display name
    std::string file; ///< display name of the file it was written in
    std::vector<Node> nodes;
    bool empty() const; ///< only white space text (Go's IsEmptyTree)
};

struct ParseResult {
    std::shared_ptr<Tree> main;
    std::vector<std::shared_ptr<Tree>> defines;
    std::vector<std::string> errors; ///< "FILE:LINE: message"
};

/// Parses template text. `file` names it in errors; `first_line` is the line of its first
/// character. Never throws for template syntax problems (they go to errors; main is then null).
ParseResult parse(std::string_view text, const std::string& file, int first_line = 1);

// ---------------------------------------------------------------------------------------------
// Runtime values

/// Origins a value was derived from: sorted, unique pointers into the coalesced values tree
/// (or to origins the evaluator owns for the render).
using Srcs = std::vector<const Origin*>;
void add_srcs(Srcs& to, const Srcs& from);

/// A run of string text with its provenance. `rel` counts the branches not taken between the
/// place the string was produced and the place it was captured (0: the path the values take);
/// in an output sink it is the absolute count instead.
struct Seg {
    std::string text;
    Srcs srcs;
    std::string why; ///< non-empty: placeholder for something not evaluated
    int rel = 0;
    int line = 0; ///< template line (only in output sinks)
};

struct List;
struct Dict;

struct Val {
    enum class K { nil, boolean, integer, floating, string, list, dict, unknown, object, method };
    K k = K::nil;
    bool b = false;
    std::int64_t i = 0;
    double f = 0;
    std::vector<Seg> segs; ///< K::string
    std::shared_ptr<List> list;
    std::shared_ptr<Dict> dict;
    Srcs srcs;        ///< provenance of every kind but string
    std::string why;  ///< K::unknown: why it is not known
    std::string name; ///< K::object: object name; K::method: "Object.Method"

    bool is_nil() const { return k == K::nil; }
    bool is_str() const { return k == K::string; }
    bool is_unknown() const { return k == K::unknown; }
    bool is_num() const { return k == K::integer || k == K::floating; }
};

struct List {
    std::vector<Val> items;
    int made_alt = 0; ///< branch depth it was created at (see Exec::can_mutate)
};

struct Dict {
    std::map<std::string, Val> m; ///< sorted, like Go's map iteration in templates
    int made_alt = 0;
    bool files = false; ///< a .Files.Glob result (has AsConfig and AsSecrets)
};

Val make_nil(Srcs s = {});
Val make_bool(bool b, Srcs s = {});
Val make_int(std::int64_t i, Srcs s = {});
Val make_float(double f, Srcs s = {});
Val make_str(std::string text, Srcs s = {});
Val make_segs(std::vector<Seg> segs);
Val make_unknown(std::string why, Srcs s = {});
Val make_list(int made_alt, Srcs s = {});
Val make_dict(int made_alt, Srcs s = {});
Val make_object(std::string name);

/// Converts a values tree (origins point into it: it must outlive the result).
Val from_value(const Value& v, int made_alt);

/// The text of a string on the path the values take (segments with rel 0).
std::string primary(const Val& v);
/// Text for a string parameter: strings' primary text, "" for nil/unknown, else Go's %v.
std::string str_arg(const Val& v);
/// Go's %v of a value (nil: "<nil>", maps "map[k:v]", lists "[a b]").
std::string format_v(const Val& v);
/// Go's type name ("string", "int", "float64", "bool", "[]interface {}",
/// "map[string]interface {}", "<nil>").
std::string type_name(const Val& v);
/// Go's reflect kind name ("string", "int", "float64", "bool", "slice", "map", "invalid").
std::string kind_name(const Val& v);
/// Every origin of a value (all segments of a string, a container's own origins).
Srcs srcs_of(const Val& v);
/// The not-evaluated reason of a value, or "".
std::string why_of(const Val& v);
/// Go template truth: false for nil, false, 0, "", empty list/map (unknown: false).
bool truth(const Val& v);
/// Adds origins to a value (every segment of a string).
void add_val_srcs(Val& v, const Srcs& s);
/// Segments that print a value (template output): strings as they are, nil as "", unknown
/// as a placeholder, others formatted with %v.
std::vector<Seg> print_segs(const Val& v);
/// A copy of a value: lists and maps copied recursively (deepCopy); made_alt as given.
Val deep_copy(const Val& v, int made_alt);

/// Go's fmt %v of a float64 ('g', shortest digits, exponent form below 1e-4 and from 1e+06).
std::string go_float(double f);
/// A number's text split the way Go's number literals and go-yaml's numbers are written:
/// '_' separators dropped, the sign, and a 0x / 0o / 0b prefix (either case). The template
/// parser's literals and the values' YAML numbers read it their own ways from there.
struct NumberText {
    bool neg = false;
    std::string body; ///< after the sign, without '_'
    int base = 10;    ///< 16, 8 or 2 when `body` has a prefix and something after it, else 10
    /// `body` after the prefix.
    std::string_view digits() const { return base == 10 ? std::string_view(body) : std::string_view(body).substr(2); }
};
NumberText split_number(std::string_view text);

/// Go's strconv.Quote (%q) of a string.
std::string go_quote(std::string_view s);

/// The two escapings of text for JavaScript Go uses: text/template's JSEscape (the js
/// function) and encoding/json's HTML-safe string escaping.
enum class JsEscape { template_js, json };
/// Appends `s` escaped for `flavour`, without quotes. Both: \\ \" \n \r \t, < > & as
/// \u003c-style escapes, other control characters as \u00XX. template_js also escapes ' (\')
/// and = (\u003D), with upper-case hex; json has lower-case hex and escapes U+2028 and U+2029.
void js_escape(std::string& out, std::string_view s, JsEscape flavour);

/// Appends segments, merging a segment into the previous one when their attributes match.
void append_seg(std::vector<Seg>& to, Seg s);
void append_segs(std::vector<Seg>& to, const std::vector<Seg>& from);

/// sigs.k8s.io/yaml-like toYaml (sorted keys, go-yaml v2 quoting), without the final
/// newline, as segments (each scalar keeps its origins).
std::vector<Seg> to_yaml(const Val& v);
/// encoding/json-like toJson (sorted keys, HTML-safe escaping).
std::string to_json(const Val& v, bool pretty);
/// The same as segments: every scalar keeps its origins.
std::vector<Seg> to_json_segs(const Val& v, bool pretty);
/// Parses YAML or JSON text into a value carrying `srcs` (helm's fromYaml/fromJson);
/// throws aas::Error on invalid input.
Val from_yaml_text(const std::string& text, const Srcs& srcs, int made_alt);

class Exec;
/// fromYaml/fromJson of a string value, provenance kept by line: each scalar takes the
/// origins of the text on its lines (toYaml output keeps one value a line), each map or
/// list the origins of what it holds. A string that is exactly one chart file's text
/// (`.Files.Get "x.yaml" | fromYaml`) gives each value an origin of its own in that file:
/// its line and key path (Origin::file_key). Throws aas::Error on invalid input.
Val from_yaml_val(Exec& ex, const Val& text);

// ---------------------------------------------------------------------------------------------
// Evaluation

/// An evaluation error of one action: reported as a diagnostic, the action yields a placeholder.
/// Errors in branches the values do not take are not reported, unless `always` (a missing
/// template, the nesting limit): those say something about the chart or the engine.
struct EvalError : std::runtime_error {
    explicit EvalError(const std::string& msg, bool always_report = false)
        : std::runtime_error(msg), always(always_report) {}
    bool always = false;
};

/// What the function library needs from the evaluator.
class Exec {
public:
    virtual ~Exec() = default;
    /// Branches not taken around the code being evaluated (0: the path the values take).
    virtual int alt() const = 0;
    /// Whether output made now is live (alt 0 and not a shadow render).
    virtual bool live() const = 0;
    /// Whether a list/map may be changed here: not when it was made on a path the values
    /// take and the code runs in a branch they do not take.
    bool can_mutate(int made_alt) const { return made_alt >= alt(); }
    /// Reports a problem at the action being evaluated ("FILE:LINE: msg").
    virtual void diag(const std::string& msg) = 0;
    /// Executes a named template and returns its output as a string (`include`).
    virtual Val include(const std::string& name, const Val& data) = 0;
    /// Parses and executes template text with `data` (`tpl`).
    virtual Val tpl(const Val& text, const Val& data) = 0;
    /// An origin that lives as long as the render (for provenance made while evaluating).
    virtual const Origin* own(Origin o) = 0;
};

using Fn = Val (*)(Exec&, std::vector<Val>&);

struct FnInfo {
    Fn fn = nullptr;
    int min_args = 0;
    int max_args = -1;          ///< -1: any number
    bool takes_unknown = false; ///< false: an unknown argument makes the result unknown
};

/// The function library, or nullptr for a name it does not have. Names of functions that
/// are known but deliberately not evaluated (random, time, crypto) give `*not_evaluated`.
const FnInfo* find_function(const std::string& name, std::string* not_evaluated);

} // namespace aas::chart::tmpl::detail
