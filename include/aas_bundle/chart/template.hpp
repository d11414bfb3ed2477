#pragma once
// Go text/template, as helm uses it, evaluated far enough to find images.
//
// The engine renders a chart's templates with the coalesced values, and tracks for every
// piece of output which values it came from (origins) and whether it was produced on a
// path the values take ("live") or inside a branch that the values switch off
// ("shadow": the false side of an `if`/`with`, or a disabled subchart). Both sides of a
// condition are rendered, so an image behind a switch that is off is still found and can
// be reported as optional. What the engine cannot evaluate (an unknown function, `lookup`,
// `.Files`) becomes a placeholder piece that says why, so callers can report
// "beyond what is evaluated" at file:line instead of guessing.
//
// Supported: text, comments, trim markers `{{-` `-}}`; pipelines, variables (`$x :=`,
// `$x =`, `$`), fields and `.Values.a.b`, method-less chains; `if`/`else if`/`else`,
// `with`/`else`, `range` (lists, maps, `$i, $v :=`), `define`, `template`, `block`,
// `include`; functions: the Go builtins (and, or, not, eq, ne, lt, le, gt, ge, len, index,
// slice, print, printf, println, html, js, urlquery, call) and sprig's and helm's function map
// (template_funcs.cpp's table: strings, lists, maps, numbers, semver, encodings, toYaml,
// toJson, toToml, fromYaml, tpl, required, regular expressions by RE2, …). Functions whose
// results are random, time-dependent, cryptographic or from the cluster (`lookup`) are
// placeholders. `.Files` reads the chart's other files (Get, GetBytes, Lines, Glob,
// AsConfig, AsSecrets).

#include "aas_bundle/chart/chart.hpp"
#include "aas_bundle/chart/values.hpp"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace aas::chart::tmpl {

/// What `helm template` (v3.14, the .Capabilities.HelmVersion) assumes without --kube-version.
inline constexpr std::string_view default_kube_version = "v1.29.0";

/// The origin of text that comes from .Capabilities.KubeVersion (Origin::file).
inline constexpr std::string_view kube_version_origin = ".Capabilities.KubeVersion";

/// What `.Release`, `.Chart`, `.Capabilities` and `.Values` are while rendering.
struct Context {
    const Coalesced* chart = nullptr; ///< `.Values` is chart->values, `.Chart` is chart->chart
    std::string release_name = "release";
    std::string release_namespace = "default";
    /// .Capabilities.KubeVersion(.Version): helm 3.14's `helm template` default (its client-go).
    std::string kube_version = std::string(default_kube_version);
    bool shadow = false; ///< render everything as shadow (a disabled subchart)
};

/// One piece of rendered output.
struct Piece {
    std::string text;
    bool live = true;            ///< false: produced inside a branch the values switch off
    std::vector<Origin> sources; ///< the values this text came from (empty for template text)
    int line = 0;                ///< line in the template file that produced it
    std::string unevaluated;     ///< non-empty: placeholder for an expression not evaluated; why
};

struct Rendered {
    std::string file; ///< the template's display name
    std::vector<Piece> pieces;
    std::vector<std::string> diagnostics; ///< "FILE:LINE: message" for parse/evaluation problems
    /// Non-empty when an evaluation limit (steps, time, output, nesting) cut the render
    /// short: what stopped it. Images past that point are missing.
    std::string incomplete;
    /// The whole output text (pieces concatenated).
    std::string text() const;
};

/// The templates of one release (a chart and its subcharts): `define`s are shared by
/// name across all of them, as in helm.
class TemplateSet {
public:
    TemplateSet();
    ~TemplateSet();
    TemplateSet(TemplateSet&&) noexcept;
    TemplateSet& operator=(TemplateSet&&) noexcept;

    /// Parses `file` (a chart template or helper) and registers its `define`s. Parse errors
    /// are kept and reported by render() of that file (and in diagnostics()).
    void add(const File& file);

    /// Renders the template file added under `display` name (File::display).
    /// Never throws for template problems: they become diagnostics or placeholder pieces.
    /// Evaluation is bounded (nesting depth 256, 5,000,000 steps, 3 s, output size, loop
    /// iterations); a render cut short says so in Rendered::incomplete.
    Rendered render(const std::string& display, const Context& ctx) const;

    /// Parse problems of every file added so far.
    const std::vector<std::string>& diagnostics() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

/// Where a piece of output with origin `origin` lands in TemplateImage::value: at
/// [begin, end) (the piece clipped to the value: quotes `quote` adds are not in it).
struct SourceSpan {
    Origin origin;
    std::size_t begin = 0;
    std::size_t end = 0;
};

/// An `image:` value found in rendered output (YAML key `image` at any depth, in a list
/// item or a map).
struct TemplateImage {
    std::string value;           ///< the reference as rendered (quotes removed, trimmed)
    std::string file;            ///< template display name
    int line = 0;                ///< template line that produced the `image:` key
    bool live = true;            ///< every piece of the value was live
    bool test_hook = false;      ///< in a document annotated helm.sh/hook: test (or test-success)
    std::vector<Origin> sources; ///< origins of the values the reference was built from
    /// The pieces of `value` that have origins, in order of output (empty for a value
    /// composed from split fields or an image map, whose text is not the output's).
    std::vector<SourceSpan> spans;
    std::string unevaluated; ///< non-empty when part of the value could not be evaluated
    /// Where it was found: "" for an `image:` field; otherwise the kind of place a
    /// reference built from image-shaped values landed ("value", "argument", "text").
    std::string found_in;
};

/// Whether a values path names an image or part of one: some key contains "image"
/// (`image.repository`, `images.sriovCni`, `defaultImageRegistry`), or the last key is
/// `repository`, `repo` or `registry`. `tag_part` tells whether the last key is a tag,
/// version or digest (`tag`, `defaultImageTag`, `version`), which names no image by itself.
bool image_shaped_path(const std::string& values_path, bool* tag_part = nullptr);

/// Finds every `image:` in rendered output (documents separated by `---`; commented lines
/// ignored). A document's hook annotations decide `test_hook`.
///
/// An `image:` whose value is a bare name beside `repository:` and `version:`/`tag:` keys of
/// the same map (NVIDIA's NicClusterPolicy / ClusterPolicy style) is composed the way those
/// operators do: `repository/image:version` (`@version` when the version is a digest).
///
/// Besides `image:` fields, every other reference-shaped word of the output (an env value,
/// a `--flag=REF` or the argument after a flag, a command item, ConfigMap text in any
/// format, a custom-resource field, an annotation) is a reference when its name part comes
/// from image-shaped values (see image_shaped_path) and it carries a tag or digest, or it
/// has a path (org/name) and is the whole of an image-shaped value; or its name is a
/// registry-qualified literal and its tag comes from an image tag value or the appVersion. Literal text is never
/// taken this way (it has no provenance).
std::vector<TemplateImage> scan_images(const Rendered& r);

} // namespace aas::chart::tmpl
