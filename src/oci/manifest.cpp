#include "aas_bundle/oci/manifest.hpp"
#include "aas_bundle/util/strings.hpp"

#include "aas_bundle/oci/media_types.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace aas::oci {
using json = nlohmann::json;

namespace {

json parse_json(std::string_view bytes, std::string_view where) {
    // The parser recurses per level: refuse deep nesting (manifests come from bundles and
    // registries nobody vouches for) before it can exhaust the stack.
    if (auto why = util::json_depth_problem(bytes, 64)) throw Error(fmt::format("{}: JSON {}; refused", where, *why));
    try {
        return json::parse(bytes.begin(), bytes.end());
    } catch (const json::parse_error& e) {
        throw Error(fmt::format("{}: invalid JSON at byte {}: {}", where, e.byte, e.what()));
    }
}

std::string string_field(const json& obj, const char* key, std::string_view where, bool required) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) {
        if (required) throw Error(fmt::format("{}: missing \"{}\"", where, key));
        return {};
    }
    if (!it->is_string()) throw Error(fmt::format("{}: \"{}\" is not a string", where, key));
    return it->get<std::string>();
}

Descriptor parse_descriptor(const json& j, std::string_view where) {
    if (!j.is_object()) throw Error(fmt::format("{}: a descriptor is not a JSON object", where));
    Descriptor d;
    d.media_type = string_field(j, "mediaType", where, true);
    auto digest = string_field(j, "digest", where, true);
    try {
        d.digest = Digest::parse(digest);
    } catch (const Error& e) {
        throw Error(fmt::format("{}: {}", where, e.what()));
    }
    auto size = j.find("size");
    if (size == j.end() || !size->is_number_integer() || size->get<std::int64_t>() < 0)
        throw Error(fmt::format("{}: descriptor {} has no valid \"size\"", where, digest));
    d.size = size->get<std::int64_t>();
    if (auto p = j.find("platform"); p != j.end() && p->is_object()) {
        Platform pl;
        pl.os = string_field(*p, "os", where, false);
        pl.architecture = string_field(*p, "architecture", where, false);
        pl.variant = string_field(*p, "variant", where, false);
        pl.os_version = string_field(*p, "os.version", where, false);
        d.platform = pl;
    }
    if (auto u = j.find("urls"); u != j.end() && u->is_array()) {
        for (const auto& x : *u)
            if (x.is_string()) d.urls.push_back(x.get<std::string>());
    }
    if (auto a = j.find("annotations"); a != j.end() && a->is_object()) {
        for (const auto& [k, v] : a->items())
            if (v.is_string()) d.annotations[k] = v.get<std::string>();
    }
    return d;
}

std::string schema1_message(std::string_view where) {
    return fmt::format("{}: Docker schema 1 manifests are not supported (deprecated since 2017); "
                       "push the image again with a current client to get a schema 2 or OCI manifest",
                       where);
}

} // namespace

RawManifest RawManifest::from_bytes(std::string bytes, std::string_view content_type) {
    RawManifest m;
    m.digest = Digest::of(bytes);
    std::string where = fmt::format("manifest {}", m.digest.str());
    std::string ct(content_type.substr(0, content_type.find(';')));
    while (!ct.empty() && ct.back() == ' ') ct.pop_back();
    if (media_type::is_schema1(ct)) throw Error(schema1_message(where));
    json j = parse_json(bytes, where);
    if (!j.is_object()) throw Error(fmt::format("{}: not a JSON object", where));
    std::string declared = string_field(j, "mediaType", where, false);
    if (auto sv = j.find("schemaVersion"); sv != j.end() && sv->is_number_integer() && sv->get<std::int64_t>() == 1)
        throw Error(schema1_message(where));
    if (media_type::is_supported_manifest(ct)) {
        m.media_type = ct;
    } else if (media_type::is_supported_manifest(declared)) {
        m.media_type = declared;
    } else if (declared.empty() && j.contains("manifests")) {
        m.media_type = media_type::oci_index; // OCI allows mediaType to be omitted
    } else if (declared.empty() && j.contains("config") && j.contains("layers")) {
        m.media_type = media_type::oci_manifest;
    } else {
        throw Error(fmt::format("{}: unsupported media type \"{}\"", where, ct.empty() ? declared : ct));
    }
    m.bytes = std::move(bytes);
    return m;
}

Parsed parse(const RawManifest& raw) {
    std::string where = fmt::format("manifest {}", raw.digest.str());
    if (media_type::is_schema1(raw.media_type)) throw Error(schema1_message(where));
    json j = parse_json(raw.bytes, where);
    if (!j.is_object()) throw Error(fmt::format("{}: not a JSON object", where));
    if (auto sv = j.find("schemaVersion"); sv == j.end() || !sv->is_number_integer() || sv->get<std::int64_t>() != 2) {
        if (sv != j.end() && sv->is_number_integer() && sv->get<std::int64_t>() == 1)
            throw Error(schema1_message(where));
        throw Error(fmt::format("{}: \"schemaVersion\" must be 2", where));
    }
    if (media_type::is_index(raw.media_type)) {
        Index idx;
        idx.media_type = raw.media_type;
        auto ms = j.find("manifests");
        if (ms == j.end() || !ms->is_array()) throw Error(fmt::format("{}: missing \"manifests\" array", where));
        std::size_t i = 0;
        for (const auto& d : *ms)
            idx.manifests.push_back(parse_descriptor(d, fmt::format("{} manifests[{}]", where, i++)));
        return idx;
    }
    if (media_type::is_image_manifest(raw.media_type)) {
        ImageManifest m;
        m.media_type = raw.media_type;
        auto c = j.find("config");
        if (c == j.end()) throw Error(fmt::format("{}: missing \"config\"", where));
        m.config = parse_descriptor(*c, fmt::format("{} config", where));
        auto ls = j.find("layers");
        if (ls == j.end() || !ls->is_array()) throw Error(fmt::format("{}: missing \"layers\" array", where));
        std::size_t i = 0;
        for (const auto& d : *ls) m.layers.push_back(parse_descriptor(d, fmt::format("{} layers[{}]", where, i++)));
        return m;
    }
    throw Error(fmt::format("{}: unsupported media type \"{}\"", where, raw.media_type));
}

std::vector<Descriptor> blobs_of(const ImageManifest& m) {
    std::vector<Descriptor> out;
    out.reserve(m.layers.size() + 1);
    out.push_back(m.config);
    out.insert(out.end(), m.layers.begin(), m.layers.end());
    return out;
}

bool is_foreign(const Descriptor& d) {
    if (d.urls.empty()) return false;
    std::string_view mt = d.media_type;
    return mt == media_type::docker_foreign_layer ||
           mt.rfind("application/vnd.oci.image.layer.nondistributable.v1.tar", 0) == 0;
}

} // namespace aas::oci
