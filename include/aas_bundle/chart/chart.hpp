#pragma once
// Helm charts read without helm: from a folder or a packaged .tgz (nested .tgz subcharts
// included), and their values coalesced the way helm does.

#include "aas_bundle/chart/values.hpp"

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace aas::chart {

/// A file of a chart (template, helper, crd, values).
struct File {
    std::string name;    ///< path inside the chart: "templates/deployment.yaml"
    std::string display; ///< path shown to users: "charts/dependencies/mongodb/templates/deployment.yaml",
                         ///< or "charts/dependencies/metallb-0.13.7.tgz:metallb/templates/x.yaml"
    std::string text;
};

struct Dependency {
    std::string name;
    std::string alias; ///< empty when none
    std::string version;
    std::string repository;
    std::string condition; ///< "a.enabled,b.enabled" as written
    std::vector<std::string> tags;
    Value import_values; ///< as written (list of strings or of {child, parent} maps)
    /// The key under which the subchart's values live in the parent: alias or name.
    const std::string& key() const { return alias.empty() ? name : alias; }
};

struct Chart {
    std::string name;
    std::string version;
    std::string app_version;
    std::string api_version;
    std::string type;    ///< "application" or "library"
    std::string display; ///< the chart's path as shown to users (see File::display)
    std::map<std::string, std::string> annotations;
    Value values;                ///< values.yaml (origins: its file, paths relative to this chart)
    std::vector<File> templates; ///< every file under templates/ (including _helpers.tpl, tests/)
    std::vector<File> crds;      ///< files under crds/
    /// Every other file of the chart (what templates read with .Files: files/, config/, …),
    /// but Chart.yaml, values.yaml, requirements.yaml, templates/, charts/ and dot-folders.
    std::vector<File> files;
    std::vector<Dependency> dependencies; ///< from Chart.yaml (apiVersion v2) or requirements.yaml (v1)
    std::vector<Chart> subcharts;         ///< from charts/ (folders and .tgz), in name order
    std::vector<std::string> warnings;    ///< non-fatal problems found while loading

    /// The subchart a dependency refers to (matched by chart name), or nullptr.
    const Chart* subchart_for(const Dependency& d) const;
};

/// Loads a chart from a folder or a .tgz. `display` is how its path is shown (usually
/// relative to the k8s folder). Throws aas::Error naming the file on a missing or invalid
/// Chart.yaml, invalid YAML in values.yaml, or an unreadable archive. Archives are read in
/// memory with size limits (a chart over 64 MiB unpacked is refused).
Chart load_chart(const std::filesystem::path& path, const std::string& display);

/// One chart with the values it renders with, and its subcharts in the same form.
struct Coalesced {
    const Chart* chart = nullptr;
    std::string values_prefix; ///< "" for the top chart, "mongodb", "a.b" for nested subcharts
    bool enabled = true;       ///< false when a condition or tag switches the subchart off
    std::string disabled_by;   ///< e.g. "condition metrics.enabled is false"
    Value values;              ///< coalesced .Values for this chart
    std::vector<Coalesced> subcharts;
};

/// Coalesces values like `helm install --values f1 --values f2`: the user files merged in
/// order (later wins) over the chart's defaults; each subchart's values from the parent's
/// section under its alias or name over the subchart's defaults; `global` copied down to
/// every subchart; `import-values` applied; conditions and tags decide `enabled`
/// (a disabled subchart is still coalesced, so its images can be reported as optional).
/// Every value's origin keeps the file and line it came from and its release-level path.
Coalesced coalesce(const Chart& chart, const std::vector<Value>& user_values);

} // namespace aas::chart
