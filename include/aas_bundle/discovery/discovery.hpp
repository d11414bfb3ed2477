#pragma once
// Image discovery: every image a deployment needs, found by reading its charts, values
// and plain manifests the way helm would render them, without helm.
//
// For each release, in install order: the chart (folder or .tgz, subcharts included) is
// loaded, its values coalesced with the release's values files, and every template
// rendered with both sides of each condition (see chart/template.hpp). Each `image:` is
// then a site of an image:
//   required  rendered on the path the values take;
//   optional  rendered only behind a switch that is off (a false `if`, a disabled
//             subchart, `enabled: false`);
//   test      in a helm test hook (templates/tests/, `helm.sh/hook: test`).
// An image found at several sites is one image; its class is the strongest of its sites
// (required, then test, then optional).
//
// Placeholders: a values string that begins with `<REGISTRY>` names where the image will
// live in the private registry. Its upstream source is the chart default at the same
// values path (registry and path), with the tag or digest the values file gives; the
// default must name the same repository path. Without such a default the bundle manifest
// must name the source (`images: - ref: …, from: …`); until it does, the site is reported
// as unresolved.

#include "aas_bundle/manifest/manifest.hpp"
#include "aas_bundle/ref/reference.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace aas::discovery {

enum class Class { required, test, optional };
const char* to_string(Class c);

/// One value a reference joined from several places is built from (Site::parts).
struct Part {
    std::string part; ///< which part of the reference its text is: "registry", "repository", "tag", "digest"
    std::string file; ///< where it is written: a values file, or a chart file read through .Files
    int line = 0;
    std::string values_path; ///< release-level values path; "" for a chart file's value
    std::string file_key;    ///< a chart file's value: its key path in that file ("image.repository")
    std::string written;     ///< its text, as it is in the reference (and in the file)
    std::size_t at = 0;      ///< where that text starts in Site::reference
};

/// One place an image is referenced.
struct Site {
    std::string release; ///< release name ("" when scanning a folder without a manifest)
    std::string chart;   ///< chart display path ("k8s/charts/dependencies/mongodb"), "" for plain manifests
    std::string file;    ///< the file to edit: a values file, or the template / manifest itself
    int line = 0;
    std::string values_path;   ///< release-level values path of the image ("image", "baseImages.queue");
                               ///< for plain manifests the YAML path ("spec.template.spec.containers[0].image")
    std::string written;       ///< the value as written there (e.g. "<REGISTRY>/emissaryingress/emissary")
    std::string template_file; ///< the template that renders it ("" for plain manifests)
    int template_line = 0;
    Class cls = Class::required;
    /// A reference whose name is joined from values that are not one value or one map's
    /// (`{{ .Values.defaultImageRegistry }}/{{ .Values.defaultImageRepository }}/{{ .name }}`,
    /// a default registry beside a component's repository, a repository from a chart file):
    /// the reference as rendered, and every value written as it is in it, in order. Empty
    /// otherwise (values_path then says all there is to edit).
    std::string reference;
    std::vector<Part> parts;
};

struct Image {
    ref::Reference ref;
    bool kube_version_dependent = false; ///< its text comes partly from .Capabilities.KubeVersion
    Class cls = Class::required;
    std::string source; ///< where to get it: "" (its registry), or the manifest's `from`
    std::vector<Site> sites;
};

/// A value that looks like an image but is not in an `image:` field (container args and
/// env, ConfigMap data): reported, not packed.
struct Possible {
    std::string value;
    std::string chart;
    std::string file;
    int line = 0;
    std::string why;
};

struct Problem {
    std::string file;
    int line = 0;
    std::string values_path;
    std::string message;
};

/// A `<REGISTRY>` placeholder whose upstream source the manifest must name.
struct Unresolved {
    std::string release;
    std::string chart;
    std::string file;
    int line = 0;
    std::string values_path;
    std::string target; ///< e.g. "<REGISTRY>/ai-appstore/aas-frontend:1.2.2"
    std::string message;
};

struct Result {
    std::vector<Image> images; ///< sorted by reference
    std::vector<Possible> possible;
    std::vector<Problem> errors; ///< invalid references and values problems
    std::vector<Unresolved> unresolved;
    std::vector<std::string> warnings; ///< annotation cross-checks, expressions not evaluated
    /// "CHART: TEMPLATE: why" for every render an evaluation limit cut short: the result
    /// may miss images of those templates (also a warning).
    std::vector<std::string> incomplete;
    bool ok() const { return errors.empty() && unresolved.empty(); }
};

/// Discovers the images of a manifest's releases, plain manifests and extra images.
/// `k8s_override` (when not empty) replaces the manifest's k8s folder.
/// Throws aas::Error for what stops discovery altogether (missing k8s folder, a chart that
/// cannot be loaded); everything else is collected into the result.
/// `kube_version` (when not empty) is .Capabilities.KubeVersion, as helm's --kube-version
/// (default chart::tmpl::default_kube_version).
Result discover(const manifest::Manifest& m, const std::filesystem::path& k8s_override = {},
                const std::string& kube_version = {});

/// Discovers the images of a whole folder (every chart and plain manifest in it, with
/// chart defaults), or of one chart folder or .tgz.
Result discover_path(const std::filesystem::path& path, const std::string& kube_version = {});

} // namespace aas::discovery
