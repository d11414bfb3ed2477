#include "aas_bundle/chart/chart.hpp"
#include "aas_bundle/chart/template.hpp"
#include "aas_bundle/chart/values.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

using namespace aas::chart;
using namespace aas::chart::tmpl;

namespace {

/// A chart "demo" with values, templates added by name under templates/.
struct Demo {
    Chart chart;
    Coalesced co;
    TemplateSet set;

    explicit Demo(std::string_view values = "{}") {
        chart.name = "demo";
        chart.version = "1.2.3";
        chart.app_version = "4.5.6";
        chart.api_version = "v2";
        chart.display = "charts/demo";
        co.chart = &chart;
        co.values = parse_yaml(values, "charts/demo/values.yaml");
    }
    Demo(const Demo&) = delete;

    Demo& add(const std::string& name, std::string text) {
        set.add(File{"templates/" + name, "charts/demo/templates/" + name, std::move(text)});
        return *this;
    }
    Rendered render(const std::string& name, bool shadow = false) const {
        Context ctx;
        ctx.chart = &co;
        ctx.shadow = shadow;
        return set.render("charts/demo/templates/" + name, ctx);
    }
};

/// The output of live pieces only: what helm would print.
std::string live_text(const Rendered& r) {
    std::string out;
    for (const auto& p : r.pieces)
        if (p.live) out += p.text;
    return out;
}

/// The output of shadow pieces only.
std::string shadow_text(const Rendered& r) {
    std::string out;
    for (const auto& p : r.pieces)
        if (!p.live) out += p.text;
    return out;
}

/// Renders `tmpl` with `values`; returns what helm would print.
std::string eval(const std::string& tmpl, std::string_view values = "{}") {
    Demo d(values);
    d.add("t.yaml", tmpl);
    return live_text(d.render("t.yaml"));
}

Rendered render1(const std::string& tmpl, std::string_view values = "{}") {
    Demo d(values);
    d.add("t.yaml", tmpl);
    return d.render("t.yaml");
}

bool has_diag(const std::vector<std::string>& diags, const std::string& part) {
    for (const auto& d : diags)
        if (d.find(part) != std::string::npos) return true;
    return false;
}

std::vector<std::string> paths(const std::vector<Origin>& origins) {
    std::vector<std::string> out;
    for (const auto& o : origins) out.push_back(o.values_path);
    return out;
}

} // namespace

// ---------------------------------------------------------------------------------------------
// Parsing

TEST_CASE("tmpl::parse text, actions and trim markers") {
    CHECK(eval("a {{ 1 }} b") == "a 1 b");
    CHECK(eval("a  \n {{- 1 -}} \n  b") == "a1b");
    CHECK(eval("a {{- 1 }} b") == "a1 b");
    CHECK(eval("a {{ 1 -}} \n\n b") == "a 1b");
    CHECK(eval("x{{/* a comment {{ with }} */}}y") == "xy");
    CHECK(eval("x \n {{- /* multi\nline */ -}} \n y") == "xy");
    CHECK(eval("{{ -3 }}") == "-3"); // "-3" is a number, not a trim marker
    CHECK(eval("{{ 3 }}{{- -3 -}}") == "3-3");
    CHECK(eval("no actions at all\n") == "no actions at all\n");
}

TEST_CASE("tmpl::parse literals") {
    CHECK(eval(R"({{ "a\tb\"c\\d\x41\u00e9" }})") == "a\tb\"c\\dA\xc3\xa9");
    CHECK(eval("{{ `raw \\n {{ }} \"x\"` }}") == "raw \\n {{ }} \"x\"");
    CHECK(eval("{{ 'a' }} {{ '\\n' }}") == "97 10");
    CHECK(eval("{{ 0x1F }} {{ 0o17 }} {{ 017 }} {{ 0b101 }} {{ 1_000 }}") == "31 15 15 5 1000");
    CHECK(eval("{{ 1.5 }} {{ 1e3 }} {{ .5 }} {{ -2.25 }}") == "1.5 1000 0.5 -2.25");
    CHECK(eval("{{ true }} {{ false }}") == "true false");
    CHECK(eval("{{ eq nil nil }}") == "true");
}

TEST_CASE("tmpl::parse every control structure") {
    const std::string t = R"({{- define "x" }}X{{ . }}{{ end -}}
{{- if .Values.a }}A{{ else if .Values.b }}B{{ else }}C{{ end -}}
{{- with .Values.c }}{{ . }}{{ else }}noc{{ end -}}
{{- range $i, $v := .Values.l }}[{{ $i }}={{ $v }}]{{ else }}empty{{ end -}}
{{- range .Values.l }}{{ if eq . 2.0 }}{{ continue }}{{ end }}{{ if eq . 3.0 }}{{ break }}{{ end }}<{{ . }}>{{ end -}}
{{- template "x" 1 -}}
{{- block "blk" . }}block-default{{ end -}}
)";
    auto r = render1(t, "a: false\nb: true\nc: cc\nl: [1, 2, 3, 4]\n");
    CHECK(r.diagnostics.empty());
    CHECK(live_text(r) == "Bcc[0=1][1=2][2=3][3=4]<1>X1block-default");
}

TEST_CASE("tmpl::parse errors name the file and line") {
    Demo d;
    d.add("a.yaml", "line1\n{{ if .x }}\nno end\n");
    d.add("b.yaml", "a\nb\n{{ end }}\n");
    d.add("c.yaml", "{{ .x \n");
    d.add("d.yaml", "x\n{{ \"unterminated }}\n");
    d.add("e.yaml", "{{ range . }}{{ end }}\n{{ break }}\n");
    d.add("f.yaml", "\n\n{{ 1x2 }}\n");
    d.add("g.yaml", "{{ if }}{{ end }}");
    d.add("h.yaml", "{{ with $x := 1 }}{{ else }}{{ else }}{{ end }}");
    d.add("i.yaml", "{{ (1 }}");
    d.add("j.yaml", "{{/* never closed }}");
    d.add("k.yaml", "{{ define \"n\" }}{{ define \"m\" }}{{ end }}{{ end }}");
    const auto& diags = d.set.diagnostics();
    CHECK(has_diag(diags, "charts/demo/templates/a.yaml:2: unexpected EOF"));
    CHECK(has_diag(diags, "charts/demo/templates/b.yaml:3: unexpected {{end}}"));
    CHECK(has_diag(diags, "charts/demo/templates/c.yaml:1: unclosed action"));
    CHECK(has_diag(diags, "charts/demo/templates/d.yaml:2: unterminated quoted string"));
    CHECK(has_diag(diags, "charts/demo/templates/e.yaml:2: {{break}} outside {{range}}"));
    CHECK(has_diag(diags, "charts/demo/templates/f.yaml:3: bad number syntax"));
    CHECK(has_diag(diags, "charts/demo/templates/g.yaml:1: missing value for if"));
    CHECK(has_diag(diags, "charts/demo/templates/h.yaml:1: expected end; found {{else}}"));
    CHECK(has_diag(diags, "charts/demo/templates/i.yaml:1: unclosed left paren"));
    CHECK(has_diag(diags, "charts/demo/templates/j.yaml:1: unclosed comment"));
    CHECK(has_diag(diags, "charts/demo/templates/k.yaml:1: unexpected <define>"));
    // render() reports the file's own parse errors and renders nothing.
    auto r = d.render("a.yaml");
    CHECK(r.pieces.empty());
    REQUIRE(r.diagnostics.size() == 1);
    CHECK(r.diagnostics[0].find("a.yaml:2:") != std::string::npos);
    // A missing file is a diagnostic too.
    CHECK(has_diag(d.render("nope.yaml").diagnostics, "no such template"));
}

// ---------------------------------------------------------------------------------------------
// Evaluation

TEST_CASE("tmpl::eval fields, missing keys and builtin objects") {
    const std::string values = "image:\n  repository: nginx\n  tag: '1.25'\nempty: {}\n";
    CHECK(eval("{{ .Values.image.repository }}:{{ .Values.image.tag }}", values) == "nginx:1.25");
    CHECK(eval("[{{ .Values.missing }}][{{ .Values.missing.deeper.still }}][{{ .Values.empty.x }}]", values) ==
          "[][][]");
    CHECK(eval("{{ .Chart.Name }} {{ .Chart.Version }} {{ .Chart.AppVersion }} {{ "
               ".Chart.APIVersion }} "
               "{{ .Chart.ApiVersion }} {{ .Chart.Type }}") == "demo 1.2.3 4.5.6 v2 v2 application");
    CHECK(eval("{{ .Release.Name }} {{ .Release.Namespace }} {{ .Release.Service }} {{ "
               ".Release.IsInstall }} "
               "{{ .Release.IsUpgrade }} {{ .Release.Revision }}") == "release default Helm true false 1");
    CHECK(eval("{{ .Capabilities.KubeVersion.Version }} {{ .Capabilities.KubeVersion.Major }} "
               "{{ .Capabilities.KubeVersion.Minor }} {{ .Capabilities.KubeVersion.GitVersion }}") ==
          "v1.29.0 1 29 v1.29.0");
    CHECK(eval("{{ .Capabilities.APIVersions.Has \"policy/v1\" }}") == "true");
    CHECK(eval("{{ .Template.Name }} {{ .Template.BasePath }}") ==
          "charts/demo/templates/t.yaml charts/demo/templates");
    CHECK(eval("{{ $.Values.image.repository }} {{ (.Values.image).tag }}", values) == "nginx 1.25");
}

TEST_CASE("tmpl::eval .Files and lookup") {
    auto r = render1(
        "data: {{ .Files.Get \"config.ini\" }}\nimage: {{ (lookup \"v1\" \"ConfigMap\" \"ns\" \"x\").data.image }}\n");
    bool lookup = false;
    for (const auto& p : r.pieces)
        if (p.unevaluated.find("lookup reads the cluster") != std::string::npos) lookup = true;
    CHECK(lookup);                                 // never guessed: the image is reported as not evaluated
    CHECK(live_text(r).rfind("data: \n", 0) == 0); // no such file: "", as helm

    // The chart's other files, as helm's Files object gives them.
    Demo d;
    d.chart.files.push_back(File{"files/a.yaml", "charts/demo/files/a.yaml", "image: reg.example.io/a/b:1\n"});
    d.chart.files.push_back(File{"files/sub/c.txt", "charts/demo/files/sub/c.txt", "x\ny"});
    d.chart.files.push_back(File{"config/d.ini", "charts/demo/config/d.ini", "k=v\n"});
    d.add("t.yaml", "{{ .Files.Get \"files/a.yaml\" }}|{{ len (.Files.Lines \"files/sub/c.txt\") }}|"
                    "{{ range $p, $_ := .Files.Glob \"files/*\" }}{{ $p }};{{ end }}|"
                    "{{ range $p, $_ := .Files.Glob \"files/**\" }}{{ $p }};{{ end }}|"
                    "{{ range $p, $_ := .Files.Glob \"{config,files}/*.{ini,yaml}\" }}{{ $p }};{{ end }}|"
                    "{{ (.Files.Glob \"config/*\").AsConfig }}|{{ (.Files.Glob \"config/*\").AsSecrets }}");
    CHECK(live_text(d.render("t.yaml")) ==
          "image: reg.example.io/a/b:1\n|2|files/a.yaml;|files/a.yaml;files/sub/c.txt;|"
          "config/d.ini;files/a.yaml;|d.ini: |\n  k=v|d.ini: az12Cg==");
    // A reference in a chart file is found where the template puts it, its origin the file.
    auto images = scan_images(d.render("t.yaml"));
    REQUIRE_FALSE(images.empty());
    CHECK(images[0].value == "reg.example.io/a/b:1");
}

TEST_CASE("tmpl::eval variables and scoping") {
    CHECK(eval("{{ $x := 1 }}{{ $x }}{{ $x = 2 }}{{ $x }}") == "12");
    CHECK(eval("{{ $x := \"a\" }}{{ if true }}{{ $x = \"b\" }}{{ $y := 1 }}{{ end }}{{ $x }}") == "b");
    // A variable declared inside `if` is gone after its end.
    auto r = render1("{{ if true }}{{ $y := 1 }}{{ end }}{{ $y }}");
    CHECK(has_diag(r.diagnostics, "undefined variable"));
    CHECK(eval("{{ with $v := .Values.a }}{{ $v }}{{ . }}{{ end }}", "a: q") == "qq");
    CHECK(eval("{{ range $k, $v := .Values.m }}{{ $k }}={{ $v }};{{ end }}", "m: {b: 2, a: 1}") == "a=1;b=2;");
    CHECK(eval("{{ range $v := .Values.l }}{{ $v }}{{ end }}", "l: [p, q]") == "pq");
    CHECK(eval("{{ range $i, $v := .Values.l }}{{ $i }}{{ $v }}{{ end }}", "l: [p, q]") == "0p1q");
    CHECK(eval("{{ range 3 }}{{ . }}{{ end }}") == "012");
    // `$` is the template's data: the root at top level, the argument inside a define.
    CHECK(eval("{{ define \"d\" }}{{ $.k }}/{{ .k }}{{ end }}{{ range .Values.l }}{{ $.Chart.Name "
               "}}{{ end }}"
               "{{ include \"d\" (dict \"k\" \"v\") }}",
               "l: [1]") == "demov/v");
}

TEST_CASE("tmpl::eval include, template and defines shared across files") {
    Demo d("name: web\n");
    d.add("_helpers.tpl", "{{- define \"demo.name\" -}}{{ .Values.name }}-{{ .Chart.Name }}{{- end -}}\n"
                          "{{- define \"demo.labels\" -}}\napp: {{ include \"demo.name\" . }}\nv: x\n{{- end -}}");
    d.set.add(File{"templates/_other.tpl", "charts/demo/charts/sub/templates/_other.tpl",
                   "{{ define \"sub.hello\" }}hello {{ . }}{{ end }}"});
    d.add("t.yaml", "metadata:\n  labels:\n    {{- include \"demo.labels\" . | nindent 4 }}\n"
                    "name: {{ template \"demo.name\" . }}\n{{ include \"sub.hello\" \"x\" | upper }}\n"
                    "{{ include \"missing\" . }}");
    auto r = d.render("t.yaml");
    CHECK(live_text(r) == "metadata:\n  labels:\n    app: web-demo\n    v: x\nname: web-demo\nHELLO X\n");
    CHECK(has_diag(r.diagnostics, "t.yaml:6: no template \"missing\""));
    // A file is a template by its path, as with `$.Template.BasePath`.
    d.add("_policy.tpl", "policy {{ .Values.name }}");
    d.add("cm.yaml", "{{ include (print $.Template.BasePath \"/_policy.tpl\") . }}");
    CHECK(live_text(d.render("cm.yaml")) == "policy web");
    // The parent's definition wins over a subchart's whatever the order of add(); among the
    // files of one chart the first by name wins (helm parses them in reverse order); an empty
    // definition never replaces one with content.
    d.set.add(
        File{"templates/_x.tpl", "charts/demo/charts/sub/templates/_x.tpl", "{{ define \"demo.name\" }}sub{{ end }}"});
    d.add("_z.tpl", "{{ define \"demo.name\" }}z{{ end }}{{ define \"sub.hello\" }}{{ end }}"
                    "{{ define \"only.z\" }}z{{ end }}");
    d.add("_a.tpl", "{{ define \"only.z\" }}a{{ end }}");
    d.add("u.yaml", "{{ include \"demo.name\" . }} {{ include \"sub.hello\" 1 }} {{ include \"only.z\" . }}");
    CHECK(live_text(d.render("u.yaml")) == "web-demo hello 1 a");
}

TEST_CASE("tmpl::eval comparison and logic functions") {
    CHECK(eval("{{ eq 1 1 }} {{ eq 1 2 }} {{ eq \"a\" \"b\" \"a\" }} {{ ne 1 2 }}") == "true false true true");
    CHECK(eval("{{ lt 1 2 }} {{ le 2 2 }} {{ gt \"b\" \"a\" }} {{ ge 1 2 }}") == "true true true false");
    CHECK(eval("{{ eq .Values.n 3 }} {{ eq .Values.missing \"x\" }}", "n: 3") == "true false");
    CHECK(eval("{{ and 1 0 2 }} {{ and 1 2 }} {{ or 0 \"\" 3 }} {{ or 0 \"\" }} {{ not 0 }}") == "0 2 3  true");
    // `and` and `or` stop early: the failing `index` is never called.
    CHECK(eval("{{ and false (index .Values.none 1) }}") == "false");
    CHECK(eval("{{ or true (index .Values.none 1) }}") == "true");
    auto r = render1("{{ eq \"a\" 1 }}");
    CHECK(has_diag(r.diagnostics, "incompatible types for comparison"));
    CHECK(eval("{{ len \"abc\" }} {{ len .Values.l }} {{ len .Values.m }}", "l: [1,2]\nm: {a: 1}") == "3 2 1");
    CHECK(eval("{{ index .Values.l 1 }} {{ index .Values.m \"a\" }} {{ index .Values.n \"a\" \"b\" }}",
               "l: [p, q]\nm: {a: 1}\nn: {a: {b: deep}}") == "q 1 deep");
    CHECK(eval("{{ slice \"abcdef\" 1 3 }} {{ slice .Values.l 1 }}", "l: [a, b, c]") == "bc [b c]");
}

TEST_CASE("tmpl::eval printf and print follow Go's fmt") {
    CHECK(eval("{{ printf \"%s/%s:%s\" \"r\" \"i\" \"t\" }}") == "r/i:t");
    CHECK(eval("{{ printf \"%d %5d|%-4s|%5s|%.2s\" 7 42 \"ab\" \"cd\" \"xyz\" }}") == "7    42|ab  |   cd|xy");
    CHECK(eval("{{ printf \"%v %v %v %v\" 1 \"s\" true .Values.l }}", "l: [1, b]") == "1 s true [1 b]");
    CHECK(eval("{{ printf \"%q\" \"a\\\"b\" }}") == "\"a\\\"b\"");
    CHECK(eval("{{ printf \"%s\" 5 }}") == "%!s(int=5)");
    CHECK(eval("{{ printf \"%s\" .Values.tag }}", "tag: 8") == "%!s(float64=8)");
    CHECK(eval("{{ printf \"%s\" .Values.missing }}") == "%!s(<nil>)");
    CHECK(eval("{{ printf \"%s %s\" \"a\" }}") == "a %!s(MISSING)");
    CHECK(eval("{{ printf \"%s\" \"a\" \"b\" }}") == "a%!(EXTRA string=b)");
    CHECK(eval("{{ printf \"%x %X %o %5.1f %t %%\" 255 255 8 3.14159 true }}") == "ff FF 10   3.1 true %");
    CHECK(eval("{{ printf \"%v\" .Values.m }}", "m: {b: 2, a: x}") == "map[a:x b:2]");
    CHECK(eval("{{ print \"a\" \"b\" 1 2 \"c\" }}") == "ab1 2c");
    CHECK(eval("{{ println \"a\" 1 }}") == "a 1\n");
    // Helm's values are float64: large integers print in exponent form, like helm does.
    CHECK(eval("{{ .Values.a }} {{ .Values.b }} {{ .Values.c }} {{ .Values.d }}",
               "a: 1000000\nb: 123456\nc: 1.10\nd: 0.00001") == "1e+06 123456 1.1 1e-05");
    CHECK(eval("{{ .Values.a | int }} {{ .Values.a | toString }}", "a: 1000000") == "1000000 1e+06");
}

TEST_CASE("tmpl::eval string functions") {
    CHECK(eval("{{ default \"d\" .Values.x }} {{ default \"d\" .Values.y }} {{ .Values.y | default "
               "\"d\" }} "
               "{{ default \"d\" 0 }} {{ default \"d\" false }}",
               "x: ''\ny: set") == "d set set d d");
    CHECK(eval("{{ empty \"\" }} {{ empty .Values.m }} {{ empty 1 }} {{ coalesce \"\" .Values.none "
               "\"c\" }}",
               "m: {}") == "true true false c");
    CHECK(eval("{{ ternary \"y\" \"n\" true }} {{ true | ternary \"y\" \"n\" }} {{ ternary \"y\" "
               "\"n\" false }}") == "y y n");
    CHECK(eval("{{ quote \"a\" }} {{ quote \"a\\\"b\" }} {{ squote \"a\" }} {{ .Values.n | quote "
               "}} {{ quote .Values.x }}",
               "n: 3") == "\"a\" \"a\\\"b\" 'a' \"3\" ");
    CHECK(eval("{{ toString 12 }} {{ toString .Values.missing }}") == "12 <nil>");
    CHECK(eval("[{{ \"a\\nb\" | indent 2 }}][{{ \"a\\nb\" | nindent 2 }}]") == "[  a\n  b][\n  a\n  b]");
    CHECK(eval("[{{ trim \"  x y \\n\" }}][{{ trimSuffix \"-\" \"ab-\" }}][{{ trimPrefix \"v\" "
               "\"v1.2\" }}][{{ trimAll \"-\" \"--a--\" }}]") == "[x y][ab][1.2][a]");
    CHECK(eval("{{ upper \"ab\" }} {{ lower \"AB\" }} {{ title \"hello world\" }} {{ replace \"+\" "
               "\"_\" \"1+2+3\" }}") == "AB ab Hello World 1_2_3");
    CHECK(eval("{{ contains \"b\" \"abc\" }} {{ hasPrefix \"a\" \"abc\" }} {{ hasSuffix \"c\" "
               "\"abc\" }} {{ hasSuffix \"x\" \"abc\" }}") == "true true true false");
    CHECK(eval("{{ trunc 3 \"abcdef\" }} {{ trunc -2 \"abcdef\" }} {{ trunc 63 \"ab\" }} {{ substr "
               "1 3 \"abcdef\" }}") == "abc ef ab bc");
    CHECK(eval("{{ (split \":\" \"a:b\")._1 }} {{ splitList \",\" \"a,b,c\" | join \"-\" }} {{ "
               "join \",\" (list 1 \"x\" nil 2) }}") == "b a-b-c 1,x,2");
    CHECK(eval("{{ cat \"a\" nil \"b\" 1 }} {{ repeat 3 \"ab\" }} {{ nospace \"a b c\" }}") == "a b 1 ababab abc");
    CHECK(eval("{{ regexMatch \"^v[0-9]+$\" \"v12\" }} {{ regexReplaceAll \"([a-z]+)-([0-9]+)\" "
               "\"ab-12\" \"${2}.$1\" }} "
               "{{ regexFind \"[0-9]+\" \"ab12cd\" }}") == "true 12.ab 12");
    CHECK(eval("{{ b64enc \"hello\" }} {{ b64dec \"aGVsbG8=\" }} {{ sha256sum \"abc\" }}") ==
          "aGVsbG8= hello ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(eval("{{ html \"<a&b>\" }} {{ js \"it's\" }} {{ urlquery \"a b&c\" }}") == "&lt;a&amp;b&gt; it\\'s a+b%26c");
    CHECK(eval("{{ kebabcase \"fooBar\" }} {{ snakecase \"fooBar\" }} {{ camelcase \"foo_bar\" }}") ==
          "foo-bar foo_bar FooBar");
    CHECK(eval("{{ base \"a/b/c.txt\" }} {{ dir \"a/b/c.txt\" }} {{ ext \"a/b/c.txt\" }}") == "c.txt a/b .txt");
}

TEST_CASE("tmpl::eval list and map functions") {
    CHECK(eval("{{ $d := dict \"a\" 1 \"b\" \"x\" }}{{ $d.a }}{{ get $d \"b\" }}[{{ get $d \"z\" "
               "}}]{{ hasKey $d \"a\" }}") == "1x[]true");
    CHECK(eval("{{ $d := dict }}{{ $_ := set $d \"k\" \"v\" }}{{ $d.k }}{{ $_ := unset $d \"k\" "
               "}}[{{ $d.k }}]") == "v[]");
    CHECK(eval("{{ keys (dict \"b\" 1 \"a\" 2) | sortAlpha | join \",\" }} {{ values (dict \"a\" "
               "1) }}") == "a,b [1]");
    CHECK(eval("{{ $l := list 1 2 }}{{ $l = append $l 3 }}{{ $l }} {{ first $l }} {{ last $l }} {{ "
               "rest $l }} {{ initial $l }}") == "[1 2 3] 1 3 [2 3] [1 2]");
    CHECK(eval("{{ prepend (list 2) 1 }} {{ concat (list 1) (list 2 3) }} {{ uniq (list 1 1 2) }} "
               "{{ compact (list 1 \"\" 2) }}") == "[1 2] [1 2 3] [1 2] [1 2]");
    CHECK(eval("{{ without (list 1 2 3) 2 }} {{ has 2 (list 1 2) }} {{ reverse (list 1 2) }} {{ "
               "until 3 }} {{ untilStep 0 6 2 }}") == "[1 3] true [2 1] [0 1 2] [0 2 4]");
    CHECK(eval("{{ pick (dict \"a\" 1 \"b\" 2) \"a\" }} {{ omit (dict \"a\" 1 \"b\" 2) \"a\" }} {{ "
               "pluck \"a\" (dict \"a\" 1) (dict \"a\" 2) }}") == "map[a:1] map[b:2] [1 2]");
    CHECK(eval("{{ dig \"a\" \"b\" \"def\" .Values }} {{ dig \"a\" \"x\" \"def\" .Values }}", "a: {b: found}") ==
          "found def");
    CHECK(eval("{{ $m := merge (dict \"a\" 1) (dict \"a\" 2 \"b\" 3) }}{{ $m }} "
               "{{ mergeOverwrite (dict \"a\" 1 \"c\" (dict \"x\" 1)) (dict \"a\" 2 \"c\" (dict "
               "\"y\" 2)) }}") == "map[a:1 b:3] map[a:2 c:map[x:1 y:2]]");
    CHECK(eval("{{ $a := dict \"x\" 1 }}{{ $b := deepCopy $a }}{{ $_ := set $b \"x\" 2 }}{{ $a.x "
               "}}{{ $b.x }}") == "12");
    CHECK(eval("{{ toStrings (list 1 \"a\") }} {{ typeOf 1 }} {{ typeOf .Values.n }} {{ typeOf "
               "\"s\" }} {{ kindOf (list) }} "
               "{{ kindIs \"map\" (dict) }} {{ typeIs \"string\" \"s\" }}",
               "n: 1") == "[1 a] int float64 string slice true true");
}

TEST_CASE("tmpl::eval numbers and semver") {
    CHECK(eval("{{ add 1 2 3 }} {{ add1 1 }} {{ sub 5 2 }} {{ mul 2 3 }} {{ div 7 2 }} {{ mod 7 2 "
               "}} {{ max 1 5 3 }} {{ min 4 2 }}") == "6 2 3 6 3 1 5 2");
    CHECK(eval("{{ int \"42\" }} {{ int 3.9 }} {{ int64 .Values.n }} {{ float64 \"1.5\" }} {{ atoi "
               "\"7\" }}",
               "n: 8") == "42 3 8 1.5 7");
    CHECK(eval("{{ semverCompare \">=1.14-0\" .Capabilities.KubeVersion.GitVersion }}") == "true");
    CHECK(eval("{{ semverCompare \"<1.19\" \"v1.25.0\" }} {{ semverCompare \"^1.2.0\" \"1.9.3\" }} "
               "{{ semverCompare \"~1.2.0\" \"1.3.0\" }}") == "false true false");
    CHECK(eval("{{ semverCompare \">=0.27.0-0\" \"v1.5.1\" }} {{ semverCompare \"1.2.x\" \"1.2.9\" }} "
               "{{ semverCompare \">1.0 <2.0 || >=3\" \"3.1.0\" }} {{ semverCompare \">=1.0.0\" "
               "\"1.1.0-rc1\" }}") == "true true true false");
}

TEST_CASE("tmpl::eval toYaml, toJson, fromYaml and tpl") {
    const std::string values = "res:\n  limits: {cpu: 100m, memory: 1Gi}\n  count: 1\n  'on': "
                               "'true'\n  list: [a, 'b: c', '', 'y']\n"
                               "  text: \"line1\\nline2\\n\"\n  nested: [{name: x, image: img}]\n";
    CHECK(eval("{{ toYaml .Values.res }}", values) ==
          "count: 1\nlimits:\n  cpu: 100m\n  memory: 1Gi\nlist:\n- a\n- 'b: c'\n- \"\"\n- "
          "\"y\"\nnested:\n- image: img\n  name: x\n"
          "\"on\": \"true\"\ntext: |\n  line1\n  line2");
    CHECK(eval("x:\n  {{- toYaml .Values.res.limits | nindent 2 }}", values) == "x:\n  cpu: 100m\n  memory: 1Gi");
    CHECK(eval("{{ toYaml (dict) }} {{ toYaml (list) }} {{ toYaml \"s\" }}") == "{} [] s");
    CHECK(eval("{{ toJson .Values.res.limits }} {{ toJson (list 1 \"<\" nil true) }}", values) ==
          "{\"cpu\":\"100m\",\"memory\":\"1Gi\"} [1,\"\\u003c\",null,true]");
    CHECK(eval("{{ $m := fromYaml \"a: 1\\nb: [x]\" }}{{ $m.a }} {{ index $m.b 0 }}") == "1 x");
    CHECK(eval("{{ tpl .Values.t . }}", "t: '{{ .Values.name }}-{{ .Release.Name }}'\nname: nm") == "nm-release");
    CHECK(eval("{{ tpl \"{{ .x }}\" (dict \"x\" 5) }}") == "5");
}

TEST_CASE("tmpl::eval tpl errors name the values the text came from") {
    auto r = render1("x: {{ tpl .Values.bad . }}", "bad: '{{ .x'");
    CHECK(has_diag(r.diagnostics, "t.yaml:1: error calling tpl: tpl:1: unclosed action (template text from bad)"));
}

TEST_CASE("tmpl::eval the context sets release and Kubernetes version") {
    Demo d;
    d.add("t.yaml", "{{ .Release.Name }}/{{ .Release.Namespace }} {{ .Capabilities.KubeVersion.Minor }} "
                    "{{ if semverCompare \">=1.21-0\" .Capabilities.KubeVersion.GitVersion }}new{{ else "
                    "}}old{{ end }}");
    Context ctx;
    ctx.chart = &d.co;
    ctx.release_name = "prod";
    ctx.release_namespace = "apps";
    ctx.kube_version = "v1.19.4";
    CHECK(live_text(d.set.render("charts/demo/templates/t.yaml", ctx)) == "prod/apps 19 old");
    // Without a chart, .Values and .Chart are empty.
    Context bare;
    CHECK(live_text(d.set.render("charts/demo/templates/t.yaml", bare)) == "release/default 29 new");
}

TEST_CASE("tmpl::eval else with") {
    CHECK(eval("{{ with .Values.a }}a={{ . }}{{ else with .Values.b }}b={{ . }}{{ else }}none{{ "
               "end }}",
               "b: 2") == "b=2");
}

TEST_CASE("tmpl::eval required and fail report diagnostics") {
    auto r = render1("a: {{ required \"image.tag is required\" .Values.image.tag }}|{{ required "
                     "\"x\" .Values.v }}",
                     "v: ok");
    CHECK(live_text(r) == "a: |ok");
    CHECK(has_diag(r.diagnostics, "charts/demo/templates/t.yaml:1: required: image.tag is required"));
    r = render1("line\n{{ fail \"bad values\" }}");
    CHECK(has_diag(r.diagnostics, "t.yaml:2: fail: bad values"));
    // In a branch the values do not take, they are not problems.
    r = render1("{{ if false }}{{ required \"never\" .Values.none }}{{ fail \"no\" }}{{ end }}");
    CHECK(r.diagnostics.empty());
}

TEST_CASE("tmpl::eval unknown functions become placeholders with a diagnostic") {
    auto r = render1("image: {{ frobnicate .Values.image }}\npass: {{ randAlphaNum 10 }}\n", "image: nginx");
    CHECK(has_diag(r.diagnostics, "t.yaml:1: function \"frobnicate\" is not supported"));
    CHECK_FALSE(has_diag(r.diagnostics, "randAlphaNum")); // known, deliberately not evaluated
    int placeholders = 0;
    for (const auto& p : r.pieces) {
        if (p.unevaluated.empty()) continue;
        ++placeholders;
        CHECK(p.text.empty());
    }
    CHECK(placeholders == 2);
    auto images = scan_images(r);
    REQUIRE(images.size() == 1);
    CHECK(images[0].value.empty());
    CHECK(images[0].unevaluated == "function \"frobnicate\" is not evaluated");
    CHECK(paths(images[0].sources) == std::vector<std::string>{"image"});
}

TEST_CASE("tmpl::eval evaluation is bounded") {
    SUBCASE("a define that includes itself") {
        auto r = render1("{{ define \"loop\" }}x{{ include \"loop\" . }}{{ end }}{{ include \"loop\" . }}");
        CHECK(has_diag(r.diagnostics, "nested more than 256 levels"));
        CHECK(live_text(r) == std::string(256, 'x'));
        CHECK(r.incomplete.find("nested more than 256 levels") != std::string::npos);
        auto t0 = std::chrono::steady_clock::now();
        r = render1("{{ define \"two\" }}{{ include \"two\" . }}{{ include \"two\" . }}{{ end }}{{ "
                    "include \"two\" . }}");
        auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        CHECK(has_diag(r.diagnostics, "rendering stopped: more than"));
        CHECK_FALSE(r.incomplete.empty());
        CHECK(secs < 10); // the step budget or the 3 s time bound, whichever comes first
    }
    SUBCASE("a recursive helper deeper than the old 64 levels completes") {
        auto r = render1("{{ define \"down\" }}{{ if gt (int .) 0 }}{{ include \"down\" (sub (int .) 1) }}"
                         "{{ else }}done{{ end }}{{ end }}{{ include \"down\" 200 }}");
        CHECK(live_text(r) == "done");
        CHECK(r.incomplete.empty());
        CHECK(r.diagnostics.empty());
    }
    SUBCASE("recursion inside a branch not taken is not entered again") {
        // A recursive merge over maps: its shadow side (the then-branch for a string) must not
        // range over strings or recurse without end.
        auto r = render1("{{ define \"m\" }}{{ range $k, $v := . }}{{ if kindIs \"map\" $v }}"
                         "{{ include \"m\" $v }}{{ else }}{{ $k }}={{ $v }};{{ end }}{{ end }}{{ end }}"
                         "{{ include \"m\" .Values }}",
                         "a: {b: {c: 1}, d: x}");
        CHECK(live_text(r) == "c=1;d=x;");
        CHECK(r.incomplete.empty());
        CHECK(r.diagnostics.empty());
    }
    SUBCASE("long loops and large output") {
        auto r = render1("{{ range until 20000 }}.{{ end }}");
        CHECK(has_diag(r.diagnostics, "range stopped after 10000 iterations"));
        CHECK(live_text(r).size() == 10000);
        r = render1("{{ $s := repeat 1048576 \"x\" }}{{ range until 100 }}{{ $s }}{{ end }}");
        CHECK(has_diag(r.diagnostics, "MiB"));
        CHECK(r.text().size() <= (8u << 20));
        r = render1("{{ $s := \"xx\" }}{{ range until 40 }}{{ $s = printf \"%s%s\" $s $s }}{{ end }}");
        CHECK(has_diag(r.diagnostics, "over 8 MiB"));
        r = render1("{{ until 1000000 }}");
        CHECK(has_diag(r.diagnostics, "over the limit"));
    }
}

// ---------------------------------------------------------------------------------------------
// Shadow rendering

TEST_CASE("tmpl::shadow renders branches the values do not take as not live") {
    auto r = render1("a\n{{- if .Values.on }}\nyes\n{{- else }}\nno\n{{- end }}\n"
                     "{{- with .Values.m }}\nwith {{ .k }}\n{{- end }}\n",
                     "on: false\n");
    CHECK(live_text(r) == "a\nno\n");
    CHECK(shadow_text(r) == "\nyes\nwith ");
    r = render1("{{- if .Values.on }}\nyes\n{{- else }}\nno\n{{- end }}\n", "on: true");
    CHECK(live_text(r) == "\nyes\n");
    CHECK(shadow_text(r) == "\nno");
    // Both sides of conditions inside a shadow branch are rendered, as shadow.
    r = render1("{{- if .Values.off }}\n{{- if .Values.on }}\ninner-yes\n{{- else "
                "}}\ninner-no\n{{- end }}\n{{- end }}",
                "off: false\non: true");
    CHECK(live_text(r).empty());
    CHECK(shadow_text(r) == "\ninner-yes\ninner-no");
}

TEST_CASE("tmpl::shadow branches do not change variables or maps outside them") {
    auto r = render1("{{- $reg := \"docker.io\" }}{{ $d := dict \"k\" \"live\" }}"
                     "{{- if .Values.g }}{{ $reg = .Values.g }}{{ $_ := set $d \"k\" \"shadow\" }}{{ end -}}"
                     "{{ $reg }} {{ $d.k }}",
                     "g: ''");
    CHECK(live_text(r) == "docker.io live");
}

TEST_CASE("tmpl::shadow range over an empty collection renders its body once with unknown elements") {
    auto r = render1("containers:\n{{- range .Values.sidecars }}\n  - name: {{ .name }}\n    "
                     "image: {{ .image }}\n{{- end }}\n",
                     "sidecars: []\n");
    CHECK(live_text(r) == "containers:\n");
    auto images = scan_images(r);
    REQUIRE(images.size() == 1);
    CHECK_FALSE(images[0].live);
    CHECK(images[0].value.empty());
    CHECK(images[0].unevaluated.find("range .Values.sidecars") != std::string::npos);
    CHECK(paths(images[0].sources) == std::vector<std::string>{"sidecars"});
    // With elements, the body is live for each.
    r = render1("{{- range .Values.sidecars }}\n- image: {{ .image }}\n{{- else }}\n- image: "
                "none\n{{- end }}",
                "sidecars: [{image: a}, {image: b}]");
    images = scan_images(r);
    REQUIRE(images.size() == 3);
    CHECK(images[0].value == "a");
    CHECK(images[0].live);
    CHECK(images[1].value == "b");
    CHECK(images[2].value == "none");
    CHECK_FALSE(images[2].live);
}

TEST_CASE("tmpl::shadow a disabled chart renders everything as not live") {
    Demo d("image: nginx");
    d.add("t.yaml", "image: {{ .Values.image }}\n{{ required \"x\" .Values.none }}");
    auto r = d.render("t.yaml", true);
    CHECK(r.diagnostics.empty());
    for (const auto& p : r.pieces) CHECK_FALSE(p.live);
    auto images = scan_images(r);
    REQUIRE(images.size() == 1);
    CHECK(images[0].value == "nginx");
    CHECK_FALSE(images[0].live);
}

TEST_CASE("tmpl::shadow inline alternatives of a value are dropped") {
    // The `:tag` that is not set cannot be shown beside the value that is used.
    auto r =
        render1("image: {{ .Values.repo }}{{ if .Values.tag }}:{{ .Values.tag }}{{ end }}\n", "repo: nginx\ntag: ''");
    CHECK(r.text() == "image: nginx\n");
    auto images = scan_images(r);
    REQUIRE(images.size() == 1);
    CHECK(images[0].value == "nginx");
    CHECK(images[0].live);
}

// ---------------------------------------------------------------------------------------------
// Provenance

TEST_CASE("tmpl::provenance sources name the values a piece came from") {
    Demo d("image:\n  repository: nginx\n  tag: ''\nother: x\n");
    d.add("t.yaml", "a: {{ .Values.other }}\nb: \"{{ .Values.image.repository }}:{{ "
                    ".Values.image.tag | default .Chart.AppVersion }}\"\n"
                    "c: {{ printf \"%s-%s\" .Values.other \"lit\" | upper }}\n"
                    "{{- $m := dict \"r\" .Values.image.repository }}\nd: {{ $m.r }}\n");
    auto r = d.render("t.yaml");
    CHECK(r.diagnostics.empty());
    auto find = [&](const std::string& text) -> const Piece* {
        for (const auto& p : r.pieces)
            if (p.text == text) return &p;
        return nullptr;
    };
    const Piece* x = find("x");
    REQUIRE(x);
    REQUIRE(x->sources.size() == 1);
    CHECK(x->sources[0].values_path == "other");
    CHECK(x->sources[0].file == "charts/demo/values.yaml");
    CHECK(x->sources[0].line == 4);
    CHECK(x->line == 1);
    const Piece* app = find("4.5.6");
    REQUIRE(app);
    CHECK(app->line == 2);
    // default: the value used (Chart.yaml's appVersion) and the value tested (image.tag).
    REQUIRE(app->sources.size() == 2);
    bool tag = false, chart_yaml = false;
    for (const auto& o : app->sources) {
        tag = tag || (o.values_path == "image.tag" && o.line == 3);
        chart_yaml = chart_yaml || o.file == "charts/demo/Chart.yaml";
    }
    CHECK(tag);
    CHECK(chart_yaml);
    const Piece* up = find("X-LIT");
    REQUIRE(up);
    CHECK(paths(up->sources) == std::vector<std::string>{"other"});
    const Piece* fromdict = nullptr;
    for (const auto& p : r.pieces)
        if (p.text == "nginx" && p.line == 5) fromdict = &p;
    REQUIRE(fromdict);
    CHECK(paths(fromdict->sources) == std::vector<std::string>{"image.repository"});
}

TEST_CASE("tmpl::provenance survives include, tpl and toYaml") {
    Demo d("img: {repo: r, tag: t}\ntplval: 'x-{{ .Values.img.tag }}'\nextra:\n  - name: side\n    "
           "image: busybox\n");
    d.add("_h.tpl", "{{- define \"img\" -}}{{ .repo }}:{{ .tag }}{{- end -}}");
    d.add("t.yaml", "a: {{ include \"img\" .Values.img }}\nb: {{ tpl .Values.tplval . }}\ncontainers:\n"
                    "{{- toYaml .Values.extra | nindent 2 }}\n");
    auto r = d.render("t.yaml");
    auto images = scan_images(r);
    // `a: r:t` is built from img.repo and img.tag (image-shaped values): a reference too.
    REQUIRE(images.size() == 2);
    CHECK(images[0].value == "r:t");
    CHECK(images[0].found_in == "value");
    CHECK(images[1].value == "busybox");
    CHECK(images[1].line == 4);
    CHECK(paths(images[1].sources) == std::vector<std::string>{"extra[0].image"});
    std::vector<std::string> a_paths, b_paths;
    for (const auto& p : r.pieces) {
        if (p.line == 1)
            for (const auto& o : p.sources) a_paths.push_back(o.values_path);
        if (p.line == 2)
            for (const auto& o : p.sources) b_paths.push_back(o.values_path);
    }
    CHECK(a_paths == std::vector<std::string>{"img.repo", "img.tag"});
    // The tpl text's own characters come from `tplval`; the inner value from img.tag.
    CHECK(std::find(b_paths.begin(), b_paths.end(), "tplval") != b_paths.end());
    CHECK(std::find(b_paths.begin(), b_paths.end(), "img.tag") != b_paths.end());
    CHECK(live_text(r).find("b: x-t\n") != std::string::npos);
}

TEST_CASE("tmpl::provenance survives toYaml | fromYaml by line, and a chart file's keys") {
    // A merge through YAML text (a recursive merge helper's include ... | fromYaml) keeps each
    // value's own origins, not every origin of the text.
    Demo d("base: {registry: reg.example.io, repository: org/base, tag: '1'}\nover: {repository: org/api}\n");
    d.chart.files.push_back(
        File{"files/w.yaml", "charts/demo/files/w.yaml", "# worker\nimage:\n  repository: org/worker\n  tag: '2'\n"});
    d.add("t.yaml", "{{- $m := merge (deepCopy .Values.over) .Values.base | toYaml | fromYaml }}"
                    "{{- $w := .Files.Get \"files/w.yaml\" | fromYaml }}"
                    "a: {{ $m.registry }}/{{ $m.repository }}:{{ $m.tag }}\n"
                    "image: {{ .Values.base.registry }}/{{ $w.image.repository }}:{{ $w.image.tag }}\n");
    auto r = d.render("t.yaml");
    auto images = scan_images(r);
    REQUIRE(images.size() == 2);
    CHECK(images[0].value == "reg.example.io/org/api:1");
    auto sorted = [](std::vector<std::string> v) {
        std::sort(v.begin(), v.end());
        return v;
    };
    CHECK(sorted(paths(images[0].sources)) == std::vector<std::string>{"base.registry", "base.tag", "over.repository"});
    CHECK(images[1].value == "reg.example.io/org/worker:2");
    // The chart file's values name the file, their line in it and their key there.
    std::vector<std::string> keys;
    for (const auto& o : images[1].sources)
        if (o.chart_file) {
            CHECK(o.file == "charts/demo/files/w.yaml");
            CHECK(o.values_path.empty());
            keys.push_back(o.file_key + "@" + std::to_string(o.line));
        }
    CHECK(sorted(keys) == std::vector<std::string>{"image.repository@3", "image.tag@4"});
}

// ---------------------------------------------------------------------------------------------
// scan_images

TEST_CASE("tmpl::scan_images a bitnami-style image helper") {
    // The shape of bitnami's common.images.image: registry/repository and a tag or a digest,
    // with a global registry override.
    const std::string helper = R"({{- define "lib.image" -}}
{{- $registry := .imageRoot.registry -}}
{{- $repository := .imageRoot.repository -}}
{{- $separator := ":" -}}
{{- $termination := .imageRoot.tag | toString -}}
{{- if .global }}
    {{- if .global.imageRegistry }}
     {{- $registry = .global.imageRegistry -}}
    {{- end -}}
{{- end -}}
{{- if .imageRoot.digest }}
    {{- $separator = "@" -}}
    {{- $termination = .imageRoot.digest | toString -}}
{{- end -}}
{{- printf "%s/%s%s%s" $registry $repository $separator $termination -}}
{{- end -}}
)";
    const std::string deploy = R"(apiVersion: apps/v1
kind: StatefulSet
spec:
  template:
    spec:
      containers:
        - name: db
          image: {{ include "lib.image" (dict "imageRoot" .Values.image "global" .Values.global) }}
      {{- if .Values.metrics.enabled }}
        - name: metrics
          image: {{ include "lib.image" (dict "imageRoot" .Values.metrics.image "global" .Values.global) }}
      {{- end }}
)";
    const std::string values = "global:\n  imageRegistry: ''\nimage:\n  registry: docker.io\n  repository: "
                               "bitnami/mongodb\n"
                               "  tag: 6.0.3-debian-11-r9\n  digest: ''\nmetrics:\n  enabled: false\n  image:\n"
                               "    registry: docker.io\n    repository: bitnami/mongodb-exporter\n    tag: 0.35.0\n";
    Demo d(values);
    d.add("_images.tpl", helper);
    d.add("sts.yaml", deploy);
    auto r = d.render("sts.yaml");
    CHECK(r.diagnostics.empty());
    auto images = scan_images(r);
    REQUIRE(images.size() == 2);
    CHECK(images[0].value == "docker.io/bitnami/mongodb:6.0.3-debian-11-r9");
    CHECK(images[0].live);
    CHECK(images[0].line == 8);
    CHECK(images[0].file == "charts/demo/templates/sts.yaml");
    CHECK(paths(images[0].sources) == std::vector<std::string>{"image.registry", "image.repository", "image.tag"});
    CHECK(images[1].value == "docker.io/bitnami/mongodb-exporter:0.35.0");
    CHECK_FALSE(images[1].live);
    CHECK(images[1].line == 11);

    // A digest and a global registry.
    Demo d2(values);
    d2.co.values = parse_yaml("global:\n  imageRegistry: mirror.local\nimage:\n  registry: docker.io\n"
                              "  repository: bitnami/mongodb\n  tag: 6.0.3\n  digest: sha256:abc\nmetrics: "
                              "{enabled: true}\n",
                              "charts/demo/values.yaml");
    d2.add("_images.tpl", helper);
    d2.add("sts.yaml", deploy);
    images = scan_images(d2.render("sts.yaml"));
    REQUIRE(images.size() == 2);
    CHECK(images[0].value == "mirror.local/bitnami/mongodb@sha256:abc");
    CHECK(paths(images[0].sources) ==
          std::vector<std::string>{"global.imageRegistry", "image.repository", "image.digest"});
    CHECK(images[1].live); // metrics on, but its image map is missing
    CHECK(images[1].value.rfind("mirror.local/", 0) == 0);
}

TEST_CASE("tmpl::scan_images ingress-nginx style digest and chroot suffix") {
    const std::string helpers = R"({{- define "x.image" -}}
{{- if .chroot -}}
{{- printf "%s-chroot" .image -}}
{{- else -}}
{{- printf "%s" .image -}}
{{- end }}
{{- end -}}
{{- define "x.imageDigest" -}}
{{- if .chroot -}}
{{- if .digestChroot -}}
{{- printf "@%s" .digestChroot -}}
{{- end }}
{{- else -}}
{{ if .digest -}}
{{- printf "@%s" .digest -}}
{{- end -}}
{{- end -}}
{{- end -}}
)";
    const std::string deploy = R"(spec:
  containers:
    - name: controller
      {{- with .Values.controller.image }}
      image: "{{- if .repository -}}{{ .repository }}{{ else }}{{ .registry }}/{{ include "x.image" . }}{{- end -}}:{{ .tag }}{{ include "x.imageDigest" . }}"
      {{- end }}
)";
    auto values = [](const std::string& chroot, const std::string& digest) {
        return "controller:\n  image:\n    chroot: " + chroot +
               "\n    registry: registry.k8s.io\n    image: ingress-nginx/controller\n"
               "    tag: v1.5.1\n    digest: " +
               digest + "\n    digestChroot: sha256:cccc\n    repository: ''\n";
    };
    struct Case {
        std::string chroot, digest, want;
    };
    for (const auto& c : std::vector<Case>{
             {"false", "sha256:dddd", "registry.k8s.io/ingress-nginx/controller:v1.5.1@sha256:dddd"},
             {"false", "''", "registry.k8s.io/ingress-nginx/controller:v1.5.1"},
             {"true", "sha256:dddd", "registry.k8s.io/ingress-nginx/controller-chroot:v1.5.1@sha256:cccc"},
         }) {
        CAPTURE(c.want);
        Demo d(values(c.chroot, c.digest));
        d.add("_helpers.tpl", helpers);
        d.add("deploy.yaml", deploy);
        auto r = d.render("deploy.yaml");
        CHECK(r.diagnostics.empty());
        auto images = scan_images(r);
        REQUIRE(images.size() == 1);
        CHECK(images[0].value == c.want);
        CHECK(images[0].live);
        CHECK(images[0].line == 5);
        auto p = paths(images[0].sources);
        CHECK(std::find(p.begin(), p.end(), "controller.image.tag") != p.end());
    }
    // A repository override replaces registry/image.
    Demo d(values("false", "''") + "    repository: my.reg/ctrl\n");
    d.co.values = parse_yaml("controller:\n  image:\n    repository: my.reg/ctrl\n    tag: v1\n    "
                             "registry: r\n    image: i\n",
                             "charts/demo/values.yaml");
    d.add("_helpers.tpl", helpers);
    d.add("deploy.yaml", deploy);
    auto images = scan_images(d.render("deploy.yaml"));
    REQUIRE(images.size() == 1);
    CHECK(images[0].value == "my.reg/ctrl:v1");
}

TEST_CASE("tmpl::scan_images appVersion default, list items, quotes and comments") {
    const std::string t = R"(containers:
  - name: app
    image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
  - image: '{{ .Values.side }}'   # the sidecar
  - name: b
    image: plain/image:1 # trailing comment
    # image: commented/out:1
  - - image: nested/list:1
initContainers:
  - {name: x}
image:
  repository: not-a-reference
other:
  image: {}
  image2: no
  imagePullPolicy: Always
  "image": quoted/key:1
)";
    auto r = render1(t, "image: {repository: web, tag: ''}\nside: busybox:1.36\n");
    auto images = scan_images(r);
    REQUIRE(images.size() == 5);
    CHECK(images[0].value == "web:4.5.6");
    CHECK(images[0].line == 3);
    CHECK(images[1].value == "busybox:1.36");
    CHECK(images[1].line == 4);
    CHECK(paths(images[1].sources) == std::vector<std::string>{"side"});
    CHECK(images[2].value == "plain/image:1");
    CHECK(images[2].sources.empty());
    CHECK(images[3].value == "nested/list:1");
    CHECK(images[4].value == "quoted/key:1");
    for (const auto& i : images) {
        CHECK(i.live);
        CHECK_FALSE(i.test_hook);
        CHECK(i.file == "charts/demo/templates/t.yaml");
    }
}

TEST_CASE("tmpl::scan_images marks images of helm test documents") {
    const std::string t = R"(apiVersion: v1
kind: Pod
metadata:
  name: app
spec:
  containers:
    - image: app:1
---
apiVersion: v1
kind: Pod
metadata:
  annotations:
    "helm.sh/hook": test
spec:
  containers:
    - image: busybox:1
---
metadata:
  annotations:
    helm.sh/hook: "post-install, test-success"
spec:
  containers:
    - image: curl:1
--- # a comment after the separator
metadata:
  annotations:
    helm.sh/hook: pre-install
containers:
  - image: job:1
)";
    auto images = scan_images(render1(t));
    REQUIRE(images.size() == 4);
    CHECK_FALSE(images[0].test_hook);
    CHECK(images[1].test_hook);
    CHECK(images[2].test_hook);
    CHECK_FALSE(images[3].test_hook);
    CHECK(images[3].value == "job:1");
}

TEST_CASE("tmpl::scan_images lines of images inside included blocks") {
    Demo d("metrics: {enabled: false, image: exporter:1}\n");
    d.add("_c.tpl", "{{- define \"c.containers\" -}}\n- name: main\n  image: main:1\n"
                    "{{- if .Values.metrics.enabled }}\n- name: metrics\n  image: {{ "
                    ".Values.metrics.image }}\n{{- end }}\n"
                    "{{- end -}}");
    d.add("t.yaml", "kind: Deployment\nspec:\n  containers:\n    {{- include \"c.containers\" . | "
                    "nindent 4 }}\n");
    auto r = d.render("t.yaml");
    CHECK(r.text() == "kind: Deployment\nspec:\n  containers:\n    - name: main\n      image: main:1\n"
                      "    - name: metrics\n      image: exporter:1\n");
    auto images = scan_images(r);
    REQUIRE(images.size() == 2);
    CHECK(images[0].value == "main:1");
    CHECK(images[0].live);
    CHECK(images[0].line == 4);
    CHECK(images[1].value == "exporter:1");
    CHECK_FALSE(images[1].live);
    CHECK(images[1].line == 4);
    CHECK(paths(images[1].sources) == std::vector<std::string>{"metrics.image"});
}

// ---------------------------------------------------------------------------------------------
// The charts of the corpus, when it is there (../shared/corpus beside the repository).

namespace {

std::filesystem::path corpus_charts() {
    if (const char* env = std::getenv("AAS_CORPUS")) return std::filesystem::path(env) / "appstore-ai/k8s/charts";
    std::filesystem::path p = std::filesystem::absolute(__FILE__).parent_path();
    for (int i = 0; i < 6 && !p.empty(); ++i, p = p.parent_path()) {
        auto c = p / "shared/corpus/appstore-ai/k8s/charts";
        if (std::filesystem::is_directory(c)) return c;
        if (p == p.parent_path()) break;
    }
    return {};
}

void add_templates(TemplateSet& set, const Chart& c) {
    for (const auto& f : c.templates) set.add(f);
    for (const auto& s : c.subcharts) add_templates(set, s);
}

void collect(const TemplateSet& set, const Coalesced& co, bool shadow, std::vector<TemplateImage>& out,
             std::vector<std::string>& diags) {
    Context ctx;
    ctx.chart = &co;
    ctx.shadow = shadow || !co.enabled;
    for (const auto& f : co.chart->templates) {
        auto base = f.name.substr(f.name.rfind('/') + 1);
        if (base.rfind('_', 0) == 0 || base == "NOTES.txt") continue;
        auto r = set.render(f.display, ctx);
        diags.insert(diags.end(), r.diagnostics.begin(), r.diagnostics.end());
        for (auto& i : scan_images(r)) out.push_back(std::move(i));
    }
    for (const auto& s : co.subcharts) collect(set, s, ctx.shadow, out, diags);
}

const TemplateImage* find_image(const std::vector<TemplateImage>& images, const std::string& value, bool live) {
    for (const auto& i : images)
        if (i.value == value && i.live == live) return &i;
    return nullptr;
}

} // namespace

// Reported as skipped when ../shared/corpus/appstore-ai is absent.
TEST_CASE("tmpl::corpus images of the real charts" * doctest::skip(!std::filesystem::is_directory(corpus_charts()))) {
    auto root = corpus_charts();
    REQUIRE_MESSAGE(std::filesystem::is_directory(root), "corpus ../shared/corpus/appstore-ai/k8s/charts not found");
    struct Expect {
        std::string chart, image;
        bool live;
    };
    const std::vector<Expect> expects = {
        {"aas-frontend", "aas-frontend:1.2.2", true},
        {"dependencies/ingress-nginx",
         "registry.k8s.io/ingress-nginx/"
         "controller:v1.5.1@sha256:"
         "4ba73c697770664c1e00e9f968de14e08f606ff961c76e5d7033a4a9c593c629",
         true},
        {"dependencies/ingress-nginx", "registry.k8s.io/defaultbackend-amd64:1.5", false},
        {"dependencies/mongodb", "docker.io/bitnami/mongodb:6.0.3-debian-11-r9", true},
        {"dependencies/mongodb", "docker.io/bitnami/mongodb-exporter:0.35.0-debian-11-r14", false},
        {"dependencies/emissary-ingress", "docker.io/emissaryingress/emissary:3.4.0", true},
        {"dependencies/minio", "quay.io/minio/mc:RELEASE.2022-12-13T00-23-28Z", true},
    };
    for (const auto& e : expects) {
        CAPTURE(e.chart);
        CAPTURE(e.image);
        auto dir = root / e.chart;
        REQUIRE_MESSAGE(std::filesystem::exists(dir), "the corpus has no " << dir.string());
        Chart c = load_chart(dir, "charts/" + e.chart);
        Coalesced co = coalesce(c, {});
        TemplateSet set;
        add_templates(set, c);
        CHECK(set.diagnostics().empty());
        std::vector<TemplateImage> images;
        std::vector<std::string> diags;
        collect(set, co, false, images, diags);
        for (const auto& d : diags) MESSAGE(d);
        CHECK(diags.empty());
        const TemplateImage* img = find_image(images, e.image, e.live);
        CHECK(img);
        if (img) {
            CHECK(img->line > 0);
            CHECK_FALSE(img->sources.empty());
            CHECK(img->unevaluated.empty());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Functions, as sprig's and helm's documentation show them

TEST_CASE("tmpl::eval sprig and helm functions give their documented outputs") {
    struct Row {
        const char* tmpl;
        const char* out;
    };
    // Examples from sprig's docs (masterminds.github.io/sprig) and Go's regexp package.
    const Row rows[] = {
        {R"T({{ regexMatch "^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\\.[A-Za-z]{2,}$" "test@acme.com" }})T", "true"},
        {R"T({{ regexFindAll "[2,4,6,8]" "123456789" -1 }})T", "[2 4 6 8]"},
        {R"T({{ regexFindAll "[2,4,6,8]" "123456789" 2 }})T", "[2 4]"},
        {R"T({{ regexFind "[a-zA-Z][1-9]" "abcd1234" }})T", "d1"},
        {R"T({{ regexReplaceAll "a(x*)b" "-ab-axxb-" "${1}W" }})T", "-W-xxW-"},
        {R"T({{ regexReplaceAllLiteral "a(x*)b" "-ab-axxb-" "${1}" }})T", "-${1}-${1}-"},
        {R"T({{ regexSplit "z+" "pizza" -1 }})T", "[pi a]"},
        {R"T({{ regexSplit "a*" "abaabaccadaaae" 5 }})T", "[ b b c cadaaae]"},
        {R"T({{ regexQuoteMeta "1.2.3" }})T", "1\\.2\\.3"},
        {R"T({{ regexReplaceAll "a*" "baaac" "-" }})T", "-b-c-"},
        {R"T({{ regexReplaceAll "(?P<first>\\w+) (?P<last>\\w+)" "John Smith" "${last}, $first" }})T", "Smith, John"},
        {R"T({{ regexMatch "(?i)^ABC$" "abc" }})T", "true"},
        {R"T({{ regexReplaceAll "(?m)^x" "x1\nx2" "y" }})T", "y1\ny2"},
        {R"T({{ regexReplaceAll "\\s+" "a  b\tc" "_" }})T", "a_b_c"},
        {R"T({{ mustRegexReplaceAll "v(\\d+)" "v1 v22" "[$1]" }})T", "[1] [22]"},
        {R"T({{ list 1 1 2 3 3 | mustUniq }})T", "[1 2 3]"},
        {R"T({{ list 1 "" 2 | mustCompact }})T", "[1 2]"},
        {R"T({{ without (list 1 2 3) 2 }} {{ mustWithout (list 1 2 3) 1 3 }})T", "[1 3] [2]"},
        {R"T({{ mustHas 4 (list 1 2 3) }} {{ mustFirst (list 1 2) }} {{ mustLast (list 1 2) }})T", "false 1 2"},
        {R"T({{ mustRest (list 1 2 3) }} {{ mustInitial (list 1 2 3) }} {{ mustReverse (list 1 2 3) }})T",
         "[2 3] [1 2] [3 2 1]"},
        {R"T({{ mustPrepend (list 2) 1 }} {{ mustPush (list 1) 2 }})T", "[1 2] [1 2]"},
        {R"T({{ chunk 2 (list 1 2 3 4 5) }})T", "[[1 2] [3 4] [5]]"},
        {R"T({{ all 1 "a" true }} {{ all 1 "" }} {{ any 0 "" 1 }} {{ any 0 "" }})T", "true false true false"},
        {R"T({{ seq 5 }} / {{ seq 2 5 }} / {{ seq 0 2 10 }} / {{ seq 5 1 }})T",
         "1 2 3 4 5 / 2 3 4 5 / 0 2 4 6 8 10 / 5 4 3 2 1"},
        {R"T({{ maxf 1 2.5 3.5 }} {{ minf 1 2.5 }} {{ add1f 1.5 }} {{ biggest 1 5 3 }})T", "3.5 1 2.5 5"},
        {R"T({{ abbrev 5 "hello world" }} {{ abbrevboth 5 10 "1234 5678 9123" }})T", "he... ...5678..."},
        {R"T({{ initials "First Try" }} {{ swapcase "This Is A.Test" }})T", "FT tHIS iS a.tEST"},
        {R"T({{ plural "one anchovy" "many anchovies" 1 }}, {{ plural "one anchovy" "many anchovies" 2 }})T",
         "one anchovy, many anchovies"},
        {R"T({{ clean "foo/bar/../baz" }} {{ isAbs "/a" }} {{ osBase "/a/b.txt" }} {{ trimall "$" "$5.00$" }})T",
         "foo/baz true b.txt 5.00"},
        {R"T({{ dict "a" 1 | mustToPrettyJson }})T", "{\n  \"a\": 1\n}"},
        {R"T({{ dict "a" "<b>" | mustToRawJson }})T", "{\"a\":\"<b>\"}"},
        {R"T({{ dict "a" 1 "b" (dict "c" "x" "d" (list 1 2)) | toToml }})T",
         "a = 1\n\n[b]\n  c = \"x\"\n  d = [1, 2]\n"},
        {R"T({{ hello }})T", "Hello!"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.tmpl);
        Demo d;
        d.add("t.yaml", row.tmpl);
        auto r = d.render("t.yaml");
        CHECK(r.diagnostics.empty());
        CHECK(live_text(r) == row.out);
    }
}

TEST_CASE("tmpl::eval invalid Go regexps are errors with the expression") {
    auto r = render1(R"T({{ regexMatch "a(b" "ab" }})T");
    CHECK(has_diag(r.diagnostics, "error parsing regexp"));
    // RE2, like Go, has no backreferences.
    r = render1(R"T({{ regexMatch "(a)\\1" "aa" }})T");
    CHECK(has_diag(r.diagnostics, "error parsing regexp"));
}

TEST_CASE("tmpl::eval .Capabilities.KubeVersion text carries its origin") {
    Demo d;
    d.add("t.yaml", "image: registry.example.io/k/kubectl:{{ .Capabilities.KubeVersion.Version }}\n");
    Context ctx;
    ctx.chart = &d.co;
    ctx.kube_version = "v1.31.2";
    auto r = d.set.render("charts/demo/templates/t.yaml", ctx);
    auto images = scan_images(r);
    REQUIRE(images.size() == 1);
    CHECK(images[0].value == "registry.example.io/k/kubectl:v1.31.2");
    CHECK(std::any_of(images[0].sources.begin(), images[0].sources.end(),
                      [](const Origin& o) { return o.file == kube_version_origin; }));
}

// ---------------------------------------------------------------------------------------------
// References by provenance, outside image: fields

TEST_CASE("tmpl::scan_images finds references built from image-shaped values anywhere") {
    Demo d(R"(
images:
  cni: registry.example.io/net/cni:v1.1.1
  rdma: registry.example.io/net/rdma
collector:
  repository: registry.example.io/otel/collector
  tag: 0.158.0
image:
  repository: app/server
  tag: "2.0"
name: registry.example.io/not/animage:1.0
)");
    d.add("t.yaml", R"(apiVersion: v1
kind: Pod
metadata:
  annotations:
    example.io/version: "{{ .Values.image.tag }}"
spec:
  containers:
    - name: a
      image: {{ .Values.image.repository }}:{{ .Values.image.tag }}
      args:
        - --collector-image={{ .Values.collector.repository }}:{{ .Values.collector.tag }}
        - --repo
        - {{ .Values.collector.repository }}
        - --name={{ .Values.name }}
      env:
        - name: CNI_IMAGE
          value: {{ .Values.images.cni | quote }}
        - name: RDMA_IMAGE
          value: {{ .Values.images.rdma }}
        - name: LITERAL
          value: registry.example.io/lit/eral:1.0
)");
    auto r = d.render("t.yaml");
    auto images = scan_images(r);
    std::vector<std::string> values;
    for (const auto& i : images) values.push_back(i.value + (i.found_in.empty() ? "" : " (" + i.found_in + ")"));
    // The image: field; --flag=REF; the env values (the untagged one names a registry and is
    // the whole value). Not: the tag alone, the repository alone, a value that is not
    // image-shaped (`name`), literal text.
    CHECK(values == std::vector<std::string>{
                        "app/server:2.0",
                        "registry.example.io/otel/collector:0.158.0 (value)",
                        "registry.example.io/net/cni:v1.1.1 (value)",
                        "registry.example.io/net/rdma (value)",
                    });
    CHECK(paths(images[1].sources) == std::vector<std::string>{"collector.repository", "collector.tag"});
}

TEST_CASE("tmpl::scan_images composes split custom-resource fields") {
    Demo d(R"(
driver: {image: driver, repository: nvcr.example.io/nvidia, version: "550.1"}
plugin: {image: plugin, repository: nvcr.example.io/nvidia, version: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
exporter: {image: {registry: registry.example.io, repository: dcgm/exporter, tag: "3.3"}}
)");
    d.add("t.yaml", R"(apiVersion: example.io/v1
kind: ClusterPolicy
spec:
  driver:
    image: {{ .Values.driver.image }}
    repository: {{ .Values.driver.repository }}
    version: {{ .Values.driver.version | quote }}
  plugin:
    version: {{ .Values.plugin.version }}
    repository: {{ .Values.plugin.repository }}
    image: {{ .Values.plugin.image }}
  exporter:
    image:
      {{- toYaml .Values.exporter.image | nindent 6 }}
  pathed:
    repository: nvcr.example.io
    image: nvidia/toolkit
    version: v1.14.0
  other:
    image: busybox
)");
    auto images = scan_images(d.render("t.yaml"));
    std::vector<std::string> values;
    for (const auto& i : images) values.push_back(i.value);
    CHECK(values ==
          std::vector<std::string>{
              "nvcr.example.io/nvidia/driver:550.1",
              "nvcr.example.io/nvidia/plugin@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
              "registry.example.io/dcgm/exporter:3.3",
              "nvcr.example.io/nvidia/toolkit:v1.14.0",
              "busybox",
          });
}

TEST_CASE("tmpl::image_shaped_path") {
    bool tag = false;
    CHECK(image_shaped_path("image.repository", &tag));
    CHECK_FALSE(tag);
    CHECK(image_shaped_path("images.sriovCni", &tag));
    CHECK(image_shaped_path("defaultImageTag", &tag));
    CHECK(tag);
    CHECK(image_shaped_path("operator.registry", &tag));
    CHECK_FALSE(tag);
    CHECK_FALSE(image_shaped_path("image.pullPolicy"));
    CHECK_FALSE(image_shaped_path("imagePullSecrets[0].name"));
    CHECK_FALSE(image_shaped_path("service.name"));
    CHECK_FALSE(image_shaped_path(""));
}

TEST_CASE("tmpl::scan_images a literal registry name with its tag from image values") {
    Demo d("image: {tag: v2.5.2}\nversion: '9'\n");
    d.add("t.yaml", "args:\n  - --webhook-image=ghcr.io/org/webhook:{{ .Values.image.tag }}\n"
                    "  - --other=ghcr.io/org/other:{{ .Values.version }}\n"
                    "  - --short=org/short:{{ .Values.image.tag }}\n"
                    "  - --agent-image=ghcr.io/org/agent:{{ .Chart.AppVersion }}\n"
                    "  - --app-version={{ .Chart.AppVersion }}\n");
    auto images = scan_images(d.render("t.yaml"));
    // Not --other (`version` is not an image value) nor --short (a name without a registry is
    // not enough when only the tag comes from the values); the appVersion counts as a tag.
    REQUIRE(images.size() == 2);
    CHECK(images[0].value == "ghcr.io/org/webhook:v2.5.2");
    CHECK(images[1].value == "ghcr.io/org/agent:4.5.6");
}

TEST_CASE("tmpl::scan_images an untagged Docker Hub name that is a whole image value") {
    Demo d("modelServers:\n  OLlama:\n    images:\n      default: ollama/ollama\n      cpu: ollama\n");
    d.add("t.yaml", "data:\n  system.yaml: |\n    {{- toYaml .Values.modelServers | nindent 4 }}\n");
    auto images = scan_images(d.render("t.yaml"));
    // `ollama/ollama` (latest); the bare word `ollama` is not taken outside image: fields.
    REQUIRE(images.size() == 1);
    CHECK(images[0].value == "ollama/ollama");
}

TEST_CASE("tmpl::scan_images JSON members in ConfigMap text") {
    auto images = scan_images(render1("data:\n  agent: |-\n    {\n        \"image\" : \"kserve/agent:v0.11\",\n"
                                      "        \"memory\": \"1Gi\"\n    }\n"));
    REQUIRE(images.size() == 1);
    CHECK(images[0].value == "kserve/agent:v0.11");
}

TEST_CASE("tmpl::scan_images toJson keeps each value's origins") {
    Demo d("cfg:\n  cache: redis:6379\n  image: {repository: registry.example.io/j/app, tag: '1.0'}\n");
    d.add("t.yaml", "data:\n  config.json: {{ .Values.cfg | toJson | quote }}\n"
                    "  raw.json: {{ .Values.cfg | toRawJson | quote }}\n");
    auto images = scan_images(d.render("t.yaml"));
    // `redis:6379` is beside the image in the same JSON text, but is not an image value.
    for (const auto& i : images) CHECK(i.value.find("redis") == std::string::npos);
    CHECK(live_text(d.render("t.yaml")).find(R"({\"cache\":\"redis:6379\")") != std::string::npos);
}

TEST_CASE("tmpl::eval b64dec stops at the first '=' and drops a lone last character; sha256sum") {
    CHECK(eval("{{ b64dec \"YWJj=ZGVm\" }}|{{ b64dec \"YWJjZ\" }}|{{ b64dec \"\" }}|{{ b64enc \"\" }}") == "abc|abc||");
    CHECK(eval("{{ b64dec \"YW-j\" }}") == "illegal base64 data at input byte");
    CHECK(eval("{{ b64enc \"ab\" }} {{ b64enc \"a\" }} {{ sha256sum \"\" }}") ==
          "YWI= YQ== e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("tmpl::eval js and toJson escape text the two ways Go does") {
    const std::string values = "x: \"a<b='c'&\\x01\\u2028>\\t\\n\"\n";
    CHECK(eval("{{ js .Values.x }}", values) == "a\\u003Cb\\u003D\\'c\\'\\u0026\\u0001\xe2\x80\xa8\\u003E\\t\\n");
    CHECK(eval("{{ toJson .Values.x }}", values) == "\"a\\u003cb='c'\\u0026\\u0001\\u2028\\u003e\\t\\n\"");
}

TEST_CASE("tmpl::eval YAML numbers of values: prefixes, separators, signs, infinities") {
    const std::string values = "b: 0X1f\nc: -1_000\nd: .inf\ne: -.Inf\nf: 0b101\ng: 1e3\nh: !!int _-5\ni: 0o17\n";
    CHECK(eval("{{ .Values.b }} {{ .Values.c }} {{ .Values.d }} {{ .Values.e }} {{ .Values.f }} {{ .Values.g }} "
               "{{ .Values.h }} {{ .Values.i }} {{ -0b11 }} {{ 0X1_f }}",
               values) == "31 -1000 +Inf -Inf 5 1000 -5 15 -3 31");
}
