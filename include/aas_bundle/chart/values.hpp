#pragma once
// Helm values as a tree that remembers where every value came from.
//
// A `Value` is what YAML holds (null, bool, number, string, map, list) plus its origin:
// the file and line it was read from and its values path ("image.repository",
// "baseImages.queue", "controller.extraArgs[2]"). Origins survive merging, so an image
// found after coalescing still names the file and line a user must edit.

#include "aas_bundle/util/error.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aas::chart {

/// Where a value was written.
struct Origin {
    std::string file;        ///< path shown to users, relative to the k8s folder when possible
    int line = 0;            ///< 1-based; 0 when unknown
    std::string values_path; ///< dotted path from the values root: "a.b", "list[0].c"
    /// The text of a chart file read through `.Files` (`file` is the chart file, values_path
    /// is empty): not a value a values file can set.
    bool chart_file = false;
    /// For a chart file parsed with fromYaml/fromJson as a whole: the dotted path of the
    /// value inside it ("image.repository"), `line` its line there. "" for the whole text.
    std::string file_key;
};

class Value {
public:
    enum class Kind { null, boolean, number, string, map, list };

    Value() = default;
    static Value make_null(Origin o = {});
    static Value make_bool(bool b, Origin o = {});
    static Value make_number(std::string text, Origin o = {}); ///< as written: "1", "1.5"
    static Value make_string(std::string s, Origin o = {});
    static Value make_map(Origin o = {});
    static Value make_list(Origin o = {});

    Kind kind() const { return kind_; }
    bool is_null() const { return kind_ == Kind::null; }
    bool is_map() const { return kind_ == Kind::map; }
    bool is_list() const { return kind_ == Kind::list; }
    bool is_string() const { return kind_ == Kind::string; }
    bool is_scalar() const { return kind_ != Kind::map && kind_ != Kind::list; }

    /// Scalar text: the string itself, "true"/"false", the number as written, "" for null.
    const std::string& text() const { return text_; }
    bool as_bool() const { return kind_ == Kind::boolean && text_ == "true"; }

    /// Helm/Go truthiness: false for null, false, 0, "", empty map or list.
    bool truthy() const;

    const Origin& origin() const { return origin_; }
    Origin& origin() { return origin_; }

    // Maps keep insertion order (the order of the file).
    const std::vector<std::pair<std::string, Value>>& entries() const { return entries_; }
    const Value* find(std::string_view key) const;
    Value* find(std::string_view key);
    /// Sets `key` (replacing an existing entry in place).
    Value& set(std::string key, Value v);
    bool erase(std::string_view key);

    const std::vector<Value>& items() const { return items_; }
    std::vector<Value>& items() { return items_; }
    void push_back(Value v) { items_.push_back(std::move(v)); }

    /// The value at a dotted path ("a.b.c"; list indices as "a[0].b"), or nullptr.
    const Value* at_path(std::string_view dotted) const;

    /// Prefixes every origin's values_path in this tree with `prefix` + "." (recursively):
    /// a subchart's own defaults get the release-level path its users write
    /// ("mongodb" subchart: "image.tag" becomes "mongodb.image.tag"). Paths always name
    /// the place in the release's values files.
    void prefix_paths(std::string_view prefix);

private:
    Value(Kind k, std::string text, Origin o);

    Kind kind_ = Kind::null;
    std::string text_;
    std::vector<std::pair<std::string, Value>> entries_;
    std::vector<Value> items_;
    Origin origin_;
};

/// Parses YAML text into a Value tree with origins (`file` is the name shown in origins
/// and errors). Only the first document is read. Throws aas::Error "FILE:LINE: ..." on
/// invalid YAML.
Value parse_yaml(std::string_view text, const std::string& file);

/// Every document of a multi-document YAML text ("---" separated), empty ones dropped.
std::vector<Value> parse_yaml_documents(std::string_view text, const std::string& file);

/// Helm's merge of values: keys of `top` win over `base`; maps merge recursively; a
/// null in `top` deletes the key (helm's way to remove a default). Origins come from
/// whichever side provided the value.
Value merge_values(const Value& base, const Value& top);

} // namespace aas::chart
