#include "aas_bundle/bundle/format.hpp"

#include "aas_bundle/util/error.hpp"
#include "aas_bundle/util/strings.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <ctime>
#include <set>

namespace aas::bundle {
namespace {

using ojson = nlohmann::ordered_json;

// A relative archive path without "." or ".." parts, empty parts, backslashes or NUL.
bool safe_path(std::string_view p) {
    if (p.empty() || p.front() == '/' || p.back() == '/') return false;
    if (p.find('\0') != std::string_view::npos || p.find('\\') != std::string_view::npos) return false;
    std::size_t start = 0;
    while (start <= p.size()) {
        auto end = p.find('/', start);
        if (end == std::string_view::npos) end = p.size();
        auto part = p.substr(start, end - start);
        if (part.empty() || part == "." || part == "..") return false;
        start = end + 1;
    }
    return true;
}

std::string mode_str(unsigned mode) {
    return fmt::format("{:04o}", mode & 07777u);
}

// Field readers that name the field when it is missing or of the wrong type.
struct Reader {
    const std::string& where;

    [[noreturn]] void fail(const std::string& field, const std::string& what) const {
        throw Error(fmt::format("{}: {}: {}", where, field, what));
    }
    const ojson& get(const ojson& o, const char* key, const std::string& field) const {
        if (!o.is_object()) fail(field, "not an object");
        auto it = o.find(key);
        if (it == o.end()) fail(field + "." + key, "missing");
        return *it;
    }
    std::string str(const ojson& o, const char* key, const std::string& field, bool required = true) const {
        if (!required && (!o.is_object() || !o.contains(key))) return {};
        const auto& v = get(o, key, field);
        if (!v.is_string()) fail(field + "." + key, "not a string");
        return v.get<std::string>();
    }
    std::int64_t num(const ojson& o, const char* key, const std::string& field, bool required = true) const {
        if (!required && (!o.is_object() || !o.contains(key))) return 0;
        const auto& v = get(o, key, field);
        if (!v.is_number_integer() || v.get<std::int64_t>() < 0) fail(field + "." + key, "not a non-negative integer");
        return v.get<std::int64_t>();
    }
    oci::Digest digest(const ojson& o, const char* key, const std::string& field) const {
        auto s = str(o, key, field);
        try {
            return oci::Digest::parse(s);
        } catch (const Error& e) {
            fail(field + "." + key, e.what());
        }
    }
    std::vector<std::string> strings(const ojson& o, const char* key, const std::string& field) const {
        std::vector<std::string> out;
        if (!o.contains(key)) return out;
        const auto& v = o.at(key);
        if (!v.is_array()) fail(field + "." + key, "not a list");
        for (const auto& e : v) {
            if (!e.is_string()) fail(field + "." + key, "holds something that is not a string");
            out.push_back(e.get<std::string>());
        }
        return out;
    }
    const ojson& array(const ojson& o, const char* key) const {
        const auto& v = get(o, key, "");
        if (!v.is_array()) fail(key, "not a list");
        return v;
    }
};

} // namespace

std::string blob_path(const oci::Digest& d) {
    return fmt::format("images/blobs/{}/{}", d.algorithm() == oci::Algorithm::sha256 ? "sha256" : "sha512", d.hex());
}

std::string rfc3339(std::int64_t epoch_seconds) {
    std::time_t t = static_cast<std::time_t>(epoch_seconds);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

namespace {

ojson image_object(const ImageRecord& img) {
    ojson o;
    o["ref"] = img.ref;
    o["source"] = img.source;
    o["digest"] = img.digest.str();
    o["media_type"] = img.media_type;
    o["size"] = img.size;
    o["platforms"] = img.platforms;
    if (img.index_digest) o["index_digest"] = img.index_digest->str();
    if (img.filtered_index) o["filtered_index"] = true;
    o["class"] = img.cls;
    o["blob_bytes"] = img.blob_bytes;
    o["sites"] = ojson::array();
    for (const auto& s : img.sites) {
        ojson so;
        so["release"] = s.release;
        so["chart"] = s.chart;
        so["file"] = s.file;
        so["line"] = s.line;
        so["values_path"] = s.values_path;
        if (!s.written.empty()) so["written"] = s.written;
        if (!s.template_file.empty()) {
            so["template"] = s.template_file;
            so["template_line"] = s.template_line;
        }
        so["class"] = s.cls;
        if (!s.parts.empty()) {
            so["reference"] = s.reference;
            so["parts"] = ojson::array();
            for (const auto& p : s.parts) {
                ojson po;
                po["part"] = p.part;
                po["file"] = p.file;
                po["line"] = p.line;
                if (!p.values_path.empty()) po["values_path"] = p.values_path;
                if (!p.file_key.empty()) po["file_key"] = p.file_key;
                po["written"] = p.written;
                po["at"] = p.at;
                so["parts"].push_back(std::move(po));
            }
        }
        o["sites"].push_back(std::move(so));
    }
    return o;
}

} // namespace

std::string image_json(const ImageRecord& img) {
    return image_object(img).dump();
}

std::string BundleDoc::to_json() const {
    ojson j;
    j["format"] = format;
    j["name"] = name;
    j["version"] = version;
    j["tool"] = tool;
    j["created"] = created;
    j["signer"] = signer;
    j["platforms"] = platforms;
    j["releases"] = ojson::array();
    for (const auto& r : releases)
        j["releases"].push_back(
            {{"name", r.name}, {"chart", r.chart}, {"namespace", r.namespace_}, {"values", r.values}});
    j["plain_manifests"] = plain_manifests;
    j["images"] = ojson::array();
    for (const auto& img : images) j["images"].push_back(image_object(img));
    j["blobs"] = ojson::array();
    for (const auto& b : blobs)
        j["blobs"].push_back({{"digest", b.digest.str()},
                              {"size", b.size},
                              {"media_type", b.media_type},
                              {"kind", b.kind},
                              {"images", b.images}});
    j["files"] = ojson::array();
    for (const auto& f : files) {
        ojson o;
        o["path"] = f.path;
        o["type"] = f.type;
        if (f.type != "symlink") o["mode"] = mode_str(f.mode);
        if (f.type == "file") {
            o["size"] = f.size;
            o["sha256"] = f.sha256.str();
        }
        if (f.type == "symlink") o["target"] = f.target;
        j["files"].push_back(std::move(o));
    }
    if (!base.empty()) {
        j["base"] = ojson::array();
        for (const auto& b : base) {
            ojson o;
            o["kind"] = b.kind;
            o["sha256"] = b.sha256.str();
            if (b.kind == "inventory") {
                o["registry"] = b.registry;
                o["prefix"] = b.prefix;
            }
            j["base"].push_back(std::move(o));
        }
        j["assumed"] = ojson::array();
        for (const auto& a : assumed)
            j["assumed"].push_back({{"digest", a.digest.str()},
                                    {"size", a.size},
                                    {"media_type", a.media_type},
                                    {"images", a.images},
                                    {"base", a.base},
                                    {"repositories", a.repositories}});
    }
    return j.dump(2) + "\n";
}

namespace {

// The readers of bundle.json's parts, each naming the field it fails on.

void read_header(const Reader& r, const ojson& j, BundleDoc& d) {
    d.format = r.str(j, "format", "");
    if (d.format != format_name && d.format != format_v1)
        throw Error(fmt::format("{}: format \"{}\" is not {} or {} (a bundle from a newer aas-bundle, or not a bundle)",
                                r.where, d.format, format_name, format_v1));
    d.name = r.str(j, "name", "");
    d.version = r.str(j, "version", "");
    d.tool = r.str(j, "tool", "", false);
    d.created = r.str(j, "created", "", false);
    d.signer = r.str(j, "signer", "", false);
    d.platforms = r.strings(j, "platforms", "");
    d.plain_manifests = r.strings(j, "plain_manifests", "");
}

void read_releases(const Reader& r, const ojson& j, BundleDoc& d) {
    const auto& rels = r.array(j, "releases");
    for (std::size_t i = 0; i < rels.size(); ++i) {
        std::string f = fmt::format("releases[{}]", i);
        d.releases.push_back({r.str(rels[i], "name", f), r.str(rels[i], "chart", f), r.str(rels[i], "namespace", f),
                              r.strings(rels[i], "values", f)});
    }
}

// One part of a joined reference: its written text must stand in `reference` at its offset.
PartRecord read_part(const Reader& r, const ojson& po, const std::string& pf, const std::string& reference) {
    PartRecord p{r.str(po, "part", pf),
                 r.str(po, "file", pf),
                 static_cast<int>(r.num(po, "line", pf)),
                 r.str(po, "values_path", pf, false),
                 r.str(po, "file_key", pf, false),
                 r.str(po, "written", pf),
                 static_cast<std::size_t>(r.num(po, "at", pf))};
    if (p.part != "registry" && p.part != "repository" && p.part != "tag" && p.part != "digest")
        r.fail(pf + ".part", "not registry, repository, tag or digest");
    if (p.at > reference.size() || reference.compare(p.at, p.written.size(), p.written) != 0)
        r.fail(pf, "its written text is not in the site's reference at its offset");
    return p;
}

SiteRecord read_site(const Reader& r, const ojson& s, const std::string& sf) {
    SiteRecord rec{r.str(s, "release", sf, false),
                   r.str(s, "chart", sf, false),
                   r.str(s, "file", sf),
                   static_cast<int>(r.num(s, "line", sf, false)),
                   r.str(s, "values_path", sf, false),
                   r.str(s, "written", sf, false),
                   r.str(s, "template", sf, false),
                   static_cast<int>(r.num(s, "template_line", sf, false)),
                   r.str(s, "class", sf, false)};
    rec.reference = r.str(s, "reference", sf, false);
    if (s.contains("parts")) {
        const auto& parts = s.at("parts");
        if (!parts.is_array()) r.fail(sf + ".parts", "not a list");
        for (std::size_t m = 0; m < parts.size(); ++m)
            rec.parts.push_back(read_part(r, parts[m], fmt::format("{}.parts[{}]", sf, m), rec.reference));
    }
    return rec;
}

ImageRecord read_image(const Reader& r, const ojson& o, const std::string& f) {
    ImageRecord img;
    img.ref = r.str(o, "ref", f);
    img.source = r.str(o, "source", f, false);
    img.digest = r.digest(o, "digest", f);
    img.media_type = r.str(o, "media_type", f);
    img.size = r.num(o, "size", f);
    img.platforms = r.strings(o, "platforms", f);
    if (o.contains("index_digest")) img.index_digest = r.digest(o, "index_digest", f);
    img.filtered_index = o.value("filtered_index", false);
    img.cls = r.str(o, "class", f);
    img.blob_bytes = static_cast<std::uint64_t>(r.num(o, "blob_bytes", f, false));
    if (o.contains("sites")) {
        const auto& sites = o.at("sites");
        if (!sites.is_array()) r.fail(f + ".sites", "not a list");
        for (std::size_t k = 0; k < sites.size(); ++k)
            img.sites.push_back(read_site(r, sites[k], fmt::format("{}.sites[{}]", f, k)));
    }
    return img;
}

void read_blobs(const Reader& r, const ojson& j, BundleDoc& d) {
    const auto& blobs = r.array(j, "blobs");
    for (std::size_t i = 0; i < blobs.size(); ++i) {
        std::string f = fmt::format("blobs[{}]", i);
        BlobRecord b;
        b.digest = r.digest(blobs[i], "digest", f);
        b.size = r.num(blobs[i], "size", f);
        b.media_type = r.str(blobs[i], "media_type", f);
        b.kind = r.str(blobs[i], "kind", f);
        b.images = r.strings(blobs[i], "images", f);
        d.blobs.push_back(std::move(b));
    }
}

// A mode written in octal, at most 07777.
unsigned read_mode(const Reader& r, const ojson& o, const std::string& f) {
    auto m = r.str(o, "mode", f);
    try {
        std::size_t used = 0;
        unsigned long v = std::stoul(m, &used, 8);
        if (used != m.size() || v > 07777) throw std::invalid_argument(m);
        return static_cast<unsigned>(v);
    } catch (const std::exception&) {
        r.fail(f + ".mode", fmt::format("\"{}\" is not an octal mode", m));
    }
}

FileRecord read_file_record(const Reader& r, const ojson& o, const std::string& f) {
    FileRecord fr;
    fr.path = r.str(o, "path", f);
    if (!safe_path(fr.path)) r.fail(f + ".path", fmt::format("\"{}\" is not a safe relative path", fr.path));
    fr.type = r.str(o, "type", f);
    if (fr.type != "file" && fr.type != "dir" && fr.type != "symlink")
        r.fail(f + ".type", fmt::format("\"{}\" is not file, dir or symlink", fr.type));
    if (fr.type != "symlink") fr.mode = read_mode(r, o, f);
    if (fr.type == "file") {
        fr.size = static_cast<std::uint64_t>(r.num(o, "size", f));
        fr.sha256 = r.digest(o, "sha256", f);
    }
    if (fr.type == "symlink") fr.target = r.str(o, "target", f);
    return fr;
}

BaseRecord read_base(const Reader& r, const ojson& o, const std::string& f) {
    BaseRecord b;
    b.kind = r.str(o, "kind", f);
    if (b.kind != "inventory" && b.kind != "bundle")
        r.fail(f + ".kind", fmt::format("\"{}\" is not inventory or bundle", util::escape_control(b.kind)));
    b.sha256 = r.digest(o, "sha256", f);
    if (b.sha256.algorithm() != oci::Algorithm::sha256) r.fail(f + ".sha256", "not a sha256 digest");
    if (b.kind == "inventory") {
        b.registry = r.str(o, "registry", f);
        b.prefix = r.str(o, "prefix", f);
        if (b.registry.empty() || util::has_control(b.registry) || util::has_control(b.prefix))
            r.fail(f + ".registry", "empty, or holds a control character");
    }
    return b;
}

// What a delta bundle's assumed blobs are checked against: the blobs it stores, its
// images, and the assumed blobs read so far.
struct AssumedContext {
    std::size_t bases = 0;
    std::set<oci::Digest> stored;
    std::set<std::string> refs;
    std::set<oci::Digest> seen;
};

AssumedRecord read_assumed(const Reader& r, const ojson& o, const std::string& f, AssumedContext& ctx) {
    AssumedRecord a;
    a.digest = r.digest(o, "digest", f);
    a.size = r.num(o, "size", f);
    a.media_type = r.str(o, "media_type", f);
    const auto& base = r.get(o, "base", f);
    if (!base.is_number_unsigned() || base.get<std::uint64_t>() >= ctx.bases)
        r.fail(f + ".base", fmt::format("not an index into base (0 to {})", ctx.bases - 1));
    a.base = static_cast<std::size_t>(base.get<std::uint64_t>());
    if (!o.contains("images")) r.fail(f + ".images", "missing");
    a.images = r.strings(o, "images", f);
    if (!o.contains("repositories")) r.fail(f + ".repositories", "missing");
    a.repositories = r.strings(o, "repositories", f);
    if (ctx.stored.count(a.digest))
        r.fail(f, fmt::format("{} is assumed present, but the bundle stores it too", a.digest.str()));
    if (!ctx.seen.insert(a.digest).second) r.fail(f, fmt::format("{} is assumed twice", a.digest.str()));
    if (a.images.empty()) r.fail(f + ".images", fmt::format("{}: no image of the bundle needs it", a.digest.str()));
    for (const auto& ref : a.images)
        if (!ctx.refs.count(ref))
            r.fail(f + ".images", fmt::format("\"{}\" is not an image of the bundle", util::escape_control(ref)));
    for (const auto& repo : a.repositories)
        if (repo.empty() || util::has_control(repo) || repo.size() > 255)
            r.fail(f + ".repositories", "holds a name that is not a repository path");
    return a;
}

// A delta bundle's base and assumed lists (both or neither), read after its blobs and images.
void read_delta(const Reader& r, const ojson& j, BundleDoc& d) {
    if (j.contains("base") != j.contains("assumed"))
        r.fail(j.contains("base") ? "assumed" : "base", "missing (a delta bundle has both base and assumed)");
    if (!j.contains("base")) return;
    const auto& bases = r.array(j, "base");
    if (bases.empty()) r.fail("base", "an empty list (a delta bundle names at least one base)");
    for (std::size_t i = 0; i < bases.size(); ++i) d.base.push_back(read_base(r, bases[i], fmt::format("base[{}]", i)));
    AssumedContext ctx;
    ctx.bases = d.base.size();
    for (const auto& b : d.blobs) ctx.stored.insert(b.digest);
    for (const auto& img : d.images) ctx.refs.insert(img.ref);
    const auto& assumed = r.array(j, "assumed");
    for (std::size_t i = 0; i < assumed.size(); ++i)
        d.assumed.push_back(read_assumed(r, assumed[i], fmt::format("assumed[{}]", i), ctx));
}

} // namespace

BundleDoc BundleDoc::parse(std::string_view json, const std::string& where) {
    if (json.size() > max_bundle_json)
        throw Error(fmt::format("{}: {} bytes, more than the limit of {}", where, json.size(), max_bundle_json));
    util::refuse_deep_json(json, max_json_depth, where);
    ojson j = ojson::parse(json, nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw Error(fmt::format("{}: not a JSON object", where));
    Reader r{where};
    BundleDoc d;
    read_header(r, j, d);
    read_releases(r, j, d);
    const auto& imgs = r.array(j, "images");
    for (std::size_t i = 0; i < imgs.size(); ++i)
        d.images.push_back(read_image(r, imgs[i], fmt::format("images[{}]", i)));
    read_blobs(r, j, d);
    const auto& files = r.array(j, "files");
    for (std::size_t i = 0; i < files.size(); ++i)
        d.files.push_back(read_file_record(r, files[i], fmt::format("files[{}]", i)));
    read_delta(r, j, d);
    return d;
}

std::uint64_t BundleDoc::assumed_bytes() const {
    std::uint64_t n = 0;
    for (const auto& a : assumed) n += static_cast<std::uint64_t>(a.size);
    return n;
}

std::vector<FieldProblem> field_problems(const BundleDoc& d) {
    std::vector<FieldProblem> out;
    auto add = [&](std::string field, std::string msg) { out.push_back({std::move(field), std::move(msg)}); };
    auto text = [&](const std::string& field, const std::string& v) {
        if (util::has_control(v))
            add(field, fmt::format("bundle.json {} \"{}\" holds a control character; refused", field,
                                   util::escape_control(v)));
    };
    // A path inside the shipped k8s folder, as install.sh and the rewrite use it.
    auto k8s_path = [&](const std::string& field, const std::string& v, bool with_prefix) {
        std::string full = with_prefix ? std::string(k8s_dir) + "/" + v : v;
        if (!safe_path(full) || util::has_control(full) || (!with_prefix && full.rfind("k8s/", 0) != 0))
            add(field, fmt::format("bundle.json {} \"{}\" is not a relative path inside k8s/; refused", field,
                                   util::escape_control(v)));
    };
    text("name", d.name);
    text("version", d.version);
    for (std::size_t i = 0; i < d.releases.size(); ++i) {
        const auto& r = d.releases[i];
        std::string f = fmt::format("releases[{}]", i);
        if (auto why = util::helm_release_name_problem(r.name); !why.empty())
            add(f + ".name",
                fmt::format("bundle.json {}.name \"{}\": {}; refused", f, util::escape_control(r.name), why));
        if (auto why = util::dns1123_label_problem(r.namespace_); !why.empty())
            add(f + ".namespace", fmt::format("bundle.json {}.namespace \"{}\": {}; refused", f,
                                              util::escape_control(r.namespace_), why));
        k8s_path(f + ".chart", r.chart, true);
        for (std::size_t k = 0; k < r.values.size(); ++k)
            k8s_path(fmt::format("{}.values[{}]", f, k), r.values[k], true);
    }
    for (std::size_t i = 0; i < d.plain_manifests.size(); ++i)
        k8s_path(fmt::format("plain_manifests[{}]", i), d.plain_manifests[i], true);
    for (std::size_t i = 0; i < d.images.size(); ++i) {
        const auto& img = d.images[i];
        text(fmt::format("images[{}].ref", i), img.ref);
        for (std::size_t k = 0; k < img.sites.size(); ++k) // sites outside k8s/ (the manifest's) are never edited
            if (img.sites[k].file.rfind("k8s/", 0) == 0)
                k8s_path(fmt::format("images[{}].sites[{}].file", i, k), img.sites[k].file, false);
        for (std::size_t k = 0; k < img.sites.size(); ++k) // the files of a joined reference's parts are edited
            for (std::size_t m = 0; m < img.sites[k].parts.size(); ++m)
                k8s_path(fmt::format("images[{}].sites[{}].parts[{}].file", i, k, m), img.sites[k].parts[m].file,
                         false);
    }
    for (std::size_t i = 0; i < d.files.size(); ++i) {
        const auto& f = d.files[i];
        if (f.mode & 07000u)
            add(fmt::format("files[{}].mode", i),
                fmt::format("bundle.json files[{}] ({}) has mode {}: setuid, setgid and sticky bits are refused", i,
                            util::escape_control(f.path), mode_str(f.mode)));
    }
    return out;
}

} // namespace aas::bundle
