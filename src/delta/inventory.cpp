#include "aas_bundle/delta/inventory.hpp"

#include "aas_bundle/oci/media_types.hpp"
#include "aas_bundle/oci/walk.hpp"
#include "aas_bundle/ref/reference.hpp"
#include "aas_bundle/signing/signing.hpp"
#include "aas_bundle/util/fs.hpp"
#include "aas_bundle/util/strings.hpp"
#include "aas_bundle/verify/verify.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <set>
#include <tuple>

namespace aas::delta {
namespace fs = std::filesystem;

namespace {

using ojson = nlohmann::ordered_json;

// The blobs, each with its repositories sorted, and the images sorted (the grammar's order).
void finish(Inventory& inv, std::map<oci::Digest, InventoryBlob>& blobs) {
    for (auto& [d, b] : blobs) {
        std::sort(b.repositories.begin(), b.repositories.end());
        inv.blobs.push_back(std::move(b));
    }
    std::sort(inv.images.begin(), inv.images.end(), [](const auto& a, const auto& b) {
        return std::tie(a.repository, a.tag, a.digest) < std::tie(b.repository, b.tag, b.digest);
    });
}

// A repository path as registries accept it: "/"-separated components, at most 255 bytes.
std::string repository_problem(std::string_view repo) {
    if (repo.empty()) return "empty";
    if (repo.size() > 255) return "longer than 255 characters";
    for (const auto& part : util::split(repo, '/'))
        if (auto why = ref::path_component_error(part); !why.empty()) return why;
    return {};
}

std::int64_t creation_time(std::int64_t given) {
    if (given >= 0) return given;
    if (const char* s = std::getenv("SOURCE_DATE_EPOCH"); s && *s) {
        if (auto v = util::parse_u64(s)) return static_cast<std::int64_t>(*v);
        throw UsageError(fmt::format("SOURCE_DATE_EPOCH=\"{}\" is not a number of seconds", s));
    }
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Untrusted JSON text that must hold an object, parsed after the nesting-depth guard.
ojson parse_object(std::string_view text, const std::string& where) {
    util::refuse_deep_json(text, bundle::max_json_depth, where);
    ojson j = ojson::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw Error(fmt::format("{}: not a JSON object", where));
    return j;
}

// Field readers naming the field: "WHERE: blobs[3].size: not a number".
struct Reader {
    const std::string& where;

    [[noreturn]] void fail(const std::string& field, const std::string& what) const {
        throw Error(fmt::format("{}: {}: {}", where, field, what));
    }
    const ojson& get(const ojson& o, const char* key, const std::string& field) const {
        if (!o.is_object()) fail(field.empty() ? "(top)" : field, "not an object");
        auto it = o.find(key);
        std::string f = field.empty() ? key : field + "." + key;
        if (it == o.end()) fail(f, "missing");
        return *it;
    }
    static std::string name(const std::string& field, const char* key) {
        return field.empty() ? key : field + "." + key;
    }
    std::string str(const ojson& o, const char* key, const std::string& field) const {
        const auto& v = get(o, key, field);
        if (!v.is_string()) fail(name(field, key), "not a string");
        auto s = v.get<std::string>();
        if (util::has_control(s)) fail(name(field, key), "holds a control character");
        return s;
    }
    std::int64_t size(const ojson& o, const char* key, const std::string& field) const {
        const auto& v = get(o, key, field);
        if (!v.is_number()) fail(name(field, key), "not a number");
        if (v.is_number_float() || (v.is_number_unsigned() && v.get<std::uint64_t>() > (std::uint64_t{1} << 62)) ||
            (v.is_number_integer() && v.get<std::int64_t>() < 0))
            fail(name(field, key), "not a non-negative integer of at most 2^62");
        return v.get<std::int64_t>();
    }
    oci::Digest digest(const ojson& v, const std::string& field) const {
        if (!v.is_string()) fail(field, "not a string");
        try {
            return oci::Digest::parse(v.get<std::string>());
        } catch (const Error& e) {
            fail(field, e.what());
        }
    }
    oci::Digest digest(const ojson& o, const char* key, const std::string& field) const {
        return digest(get(o, key, field), name(field, key));
    }
    const ojson& array(const ojson& o, const char* key, const std::string& field) const {
        const auto& v = get(o, key, field);
        if (!v.is_array()) fail(name(field, key), "not a list");
        return v;
    }
    std::string repository(const ojson& v, const std::string& field) const {
        if (!v.is_string()) fail(field, "not a string");
        auto s = v.get<std::string>();
        if (auto why = repository_problem(s); !why.empty())
            fail(field, fmt::format("\"{}\" is not a repository path: {}", util::escape_control(s), why));
        return s;
    }
};

} // namespace

std::pair<std::string, std::string> split_registry(const std::string& registry) {
    auto slash = registry.find('/');
    std::string host = registry.substr(0, slash);
    std::string prefix = slash == std::string::npos ? "" : registry.substr(slash + 1);
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
    return {host, prefix};
}

std::string Inventory::to_json() const {
    auto images_sorted = images;
    std::sort(images_sorted.begin(), images_sorted.end(), [](const auto& a, const auto& b) {
        return std::tie(a.repository, a.tag, a.digest) < std::tie(b.repository, b.tag, b.digest);
    });
    auto blobs_sorted = blobs;
    std::sort(blobs_sorted.begin(), blobs_sorted.end(),
              [](const auto& a, const auto& b) { return a.digest < b.digest; });
    ojson j;
    j["format"] = format;
    j["registry"] = registry;
    j["prefix"] = prefix;
    j["created"] = created;
    j["from"] = ojson::array();
    for (const auto& f : from) j["from"].push_back({{"kind", f.kind}, {"sha256", f.sha256.str()}, {"name", f.name}});
    j["images"] = ojson::array();
    for (const auto& i : images_sorted) {
        ojson o;
        o["repository"] = i.repository;
        o["tag"] = i.tag ? ojson(*i.tag) : ojson(nullptr);
        o["digest"] = i.digest.str();
        auto ms = i.manifests;
        std::sort(ms.begin(), ms.end());
        o["manifests"] = ojson::array();
        for (const auto& m : ms) o["manifests"].push_back(m.str());
        j["images"].push_back(std::move(o));
    }
    j["blobs"] = ojson::array();
    for (const auto& b : blobs_sorted) {
        auto repos = b.repositories;
        std::sort(repos.begin(), repos.end());
        j["blobs"].push_back({{"digest", b.digest.str()}, {"size", b.size}, {"repositories", repos}});
    }
    return j.dump(2) + "\n";
}

Inventory Inventory::parse(std::string_view json, const std::string& where) {
    if (json.size() > max_inventory)
        throw Error(fmt::format("{}: {} bytes, more than the limit of {}; refused", where, json.size(), max_inventory));
    ojson j = parse_object(json, where);
    Reader r{where};
    Inventory inv;
    inv.format = r.str(j, "format", "");
    if (inv.format != inventory_format)
        r.fail("format", fmt::format("\"{}\" is not {} (not an inventory, or one from a newer aas-bundle)",
                                     util::escape_control(inv.format), inventory_format));
    inv.registry = r.str(j, "registry", "");
    try {
        ref::validate_registry(inv.registry);
    } catch (const std::exception& e) {
        r.fail("registry", e.what());
    }
    inv.prefix = r.str(j, "prefix", "");
    if (!inv.prefix.empty()) r.repository(ojson(inv.prefix), "prefix");
    inv.created = r.str(j, "created", "");
    const auto& from = r.array(j, "from", "");
    for (std::size_t i = 0; i < from.size(); ++i) {
        std::string f = fmt::format("from[{}]", i);
        From x;
        x.kind = r.str(from[i], "kind", f);
        if (x.kind != "bundle" && x.kind != "lock") r.fail(f + ".kind", "not bundle or lock");
        x.sha256 = r.digest(from[i], "sha256", f);
        x.name = r.str(from[i], "name", f);
        inv.from.push_back(std::move(x));
    }
    const auto& images = r.array(j, "images", "");
    for (std::size_t i = 0; i < images.size(); ++i) {
        std::string f = fmt::format("images[{}]", i);
        const auto& o = images[i];
        InventoryImage img;
        img.repository = r.repository(r.get(o, "repository", f), f + ".repository");
        const auto& tag = r.get(o, "tag", f);
        if (!tag.is_null()) {
            if (!tag.is_string()) r.fail(f + ".tag", "not a string or null");
            auto t = tag.get<std::string>();
            if (auto why = ref::tag_error(t); !why.empty())
                r.fail(f + ".tag", fmt::format("\"{}\" is not a tag: {}", util::escape_control(t), why));
            img.tag = t;
        }
        img.digest = r.digest(o, "digest", f);
        const auto& ms = r.array(o, "manifests", f);
        for (std::size_t k = 0; k < ms.size(); ++k)
            img.manifests.push_back(r.digest(ms[k], fmt::format("{}.manifests[{}]", f, k)));
        inv.images.push_back(std::move(img));
    }
    const auto& blobs = r.array(j, "blobs", "");
    std::set<oci::Digest> seen;
    for (std::size_t i = 0; i < blobs.size(); ++i) {
        std::string f = fmt::format("blobs[{}]", i);
        const auto& o = blobs[i];
        InventoryBlob b;
        b.digest = r.digest(o, "digest", f);
        b.size = r.size(o, "size", f);
        const auto& repos = r.array(o, "repositories", f);
        for (std::size_t k = 0; k < repos.size(); ++k)
            b.repositories.push_back(r.repository(repos[k], fmt::format("{}.repositories[{}]", f, k)));
        if (!seen.insert(b.digest).second) r.fail(f + ".digest", fmt::format("{} is listed twice", b.digest.str()));
        inv.blobs.push_back(std::move(b));
    }
    return inv;
}

Inventory collect(registry::Client& client, const std::string& registry_with_prefix, const std::vector<Wanted>& wanted,
                  std::vector<From> from, std::int64_t created, std::vector<std::string>& warnings) {
    auto [host, prefix] = split_registry(registry_with_prefix);
    Inventory inv;
    inv.registry = host;
    inv.prefix = prefix;
    inv.created = bundle::rfc3339(creation_time(created));
    inv.from = std::move(from);
    std::map<oci::Digest, InventoryBlob> blobs;
    std::set<std::pair<std::string, oci::Digest>> asked; // (repository, blob) HEADs made
    std::set<std::tuple<std::string, std::string, oci::Digest>> images_seen;
    for (const auto& w : wanted) {
        auto head = client.head_manifest(w.repository, w.reference);
        std::string where = fmt::format("{}/{}{}{}", host, w.repository,
                                        w.reference.find(':') == std::string::npos ? ":" : "@", w.reference);
        if (!head) {
            warnings.push_back(fmt::format("{}: not in the registry; left out of the inventory", where));
            continue;
        }
        if (!w.expect.empty() && head->digest != w.expect) {
            warnings.push_back(fmt::format("{}: the registry holds {}, not {}; left out of the inventory", where,
                                           head->digest.str(), w.expect.str()));
            continue;
        }
        InventoryImage img;
        img.repository = w.repository;
        bool by_digest = w.reference.find(':') != std::string::npos;
        if (!by_digest) img.tag = w.reference;
        img.digest = head->digest;
        if (!images_seen.emplace(img.repository, img.tag.value_or(""), img.digest).second) continue;
        auto top = client.get_manifest(w.repository, head->digest.str());
        auto g =
            oci::walk(top, [&](const oci::Descriptor& c) { return client.get_manifest(w.repository, c.digest.str()); });
        img.manifests.push_back(top.digest);
        for (const auto& c : g.children) img.manifests.push_back(c.digest);
        for (const auto& b : g.blobs) {
            if (!asked.emplace(w.repository, b.digest).second) continue;
            if (!client.blob_exists(w.repository, b.digest)) {
                warnings.push_back(fmt::format("{}: blob {} is not in {}", where, b.digest.str(), w.repository));
                continue;
            }
            auto& e = blobs[b.digest];
            e.digest = b.digest;
            e.size = b.size;
            if (std::find(e.repositories.begin(), e.repositories.end(), w.repository) == e.repositories.end())
                e.repositories.push_back(w.repository);
        }
        inv.images.push_back(std::move(img));
    }
    finish(inv, blobs);
    return inv;
}

Inventory after_load(const bundle::BundleDoc& doc, const std::vector<Placed>& placed,
                     const std::string& registry_with_prefix, std::vector<From> from, std::string created) {
    auto [host, prefix] = split_registry(registry_with_prefix);
    Inventory inv;
    inv.registry = host;
    inv.prefix = prefix;
    inv.created = std::move(created);
    inv.from = std::move(from);
    auto uses = [](const std::vector<std::string>& images, const std::string& ref) {
        return std::find(images.begin(), images.end(), ref) != images.end();
    };
    std::map<oci::Digest, InventoryBlob> blobs;
    auto hold = [&](const oci::Digest& d, std::int64_t size, const std::string& repo) {
        auto& e = blobs[d];
        e.digest = d;
        e.size = size;
        if (!uses(e.repositories, repo)) e.repositories.push_back(repo);
    };
    std::set<std::tuple<std::string, std::optional<std::string>, oci::Digest>> seen;
    for (const auto& p : placed) {
        const auto& ref = p.image->ref;
        if (!seen.emplace(p.repository, p.tag, p.image->digest).second) continue;
        InventoryImage img{p.repository, p.tag, p.image->digest, {p.image->digest}};
        for (const auto& b : doc.blobs) {
            if (!uses(b.images, ref)) continue;
            if (b.kind == "index" || b.kind == "manifest") {
                if (b.digest != p.image->digest) img.manifests.push_back(b.digest);
            } else {
                hold(b.digest, b.size, p.repository);
            }
        }
        for (const auto& a : doc.assumed)
            if (uses(a.images, ref)) hold(a.digest, a.size, p.repository);
        std::sort(img.manifests.begin() + 1, img.manifests.end());
        inv.images.push_back(std::move(img));
    }
    finish(inv, blobs);
    return inv;
}

std::vector<Wanted> read_lock(const fs::path& lock_file, const std::string& registry_with_prefix, From& from) {
    const std::string where = lock_file.string();
    std::string text = util::read_file(lock_file, max_inventory);
    ojson j = parse_object(text, where);
    Reader r{where};
    auto [lock_host, lock_prefix] = split_registry(r.str(j, "registry", ""));
    auto [host, prefix] = split_registry(registry_with_prefix);
    from = {"lock", oci::Digest::of(text), lock_file.filename().string()};
    std::vector<Wanted> out;
    const auto& images = r.array(j, "images", "");
    for (std::size_t i = 0; i < images.size(); ++i) {
        std::string f = fmt::format("images[{}]", i);
        auto target = r.str(images[i], "target", f);
        std::optional<ref::Reference> t;
        try {
            t = ref::Reference::parse(target, ref::ParseMode::strict);
        } catch (const std::exception& e) {
            r.fail(f + ".target", e.what());
        }
        std::string repo = t->repository();
        if (!lock_prefix.empty()) {
            if (repo.rfind(lock_prefix + "/", 0) != 0)
                r.fail(f + ".target",
                       fmt::format("\"{}\" is not under the lock's registry prefix {}", target, lock_prefix));
            repo = repo.substr(lock_prefix.size() + 1);
        }
        if (!prefix.empty()) repo = prefix + "/" + repo;
        if (auto why = repository_problem(repo); !why.empty()) r.fail(f + ".target", why);
        Wanted w;
        w.repository = repo;
        w.expect = r.digest(images[i], "digest", f);
        w.reference = t->has_tag() ? t->tag() : t->digest();
        out.push_back(std::move(w));
    }
    return out;
}

void write(const fs::path& path, const Inventory& inv, const fs::path& private_key) {
    const std::string json = inv.to_json();
    fs::path sig = path.string() + std::string(signature_suffix);
    std::string signature;
    if (!private_key.empty()) signature = signing::sign(private_key, json); // fails before anything is written
    util::write_file_atomic(path, json);
    if (!private_key.empty()) {
        util::write_file_atomic(sig, signature);
    } else {
        std::error_code ec;
        fs::remove(sig, ec);
    }
}

Have read_have(const fs::path& path, const fs::path& public_key, std::vector<std::string>& warnings) {
    const std::string label = path.string();
    char first = 0;
    {
        std::ifstream in(path, std::ios::binary);
        if (!in) throw UsageError(fmt::format("--have {}: cannot be read", label));
        while (in.get(first) && std::isspace(static_cast<unsigned char>(first))) {}
    }
    Have h;
    h.label = label;
    bool inventory = first == '{';
    std::string text;
    if (inventory) {
        text = util::read_file(path, max_inventory);
        // A split bundle's parts index is JSON too: it names a bundle.
        if (!util::json_too_deep(text, bundle::max_json_depth)) {
            auto j = nlohmann::json::parse(text, nullptr, false);
            if (j.is_object() && j.contains("format") && j["format"] == "aas-bundle-parts/v1") inventory = false;
        }
    }
    if (inventory) {
        fs::path sig = label + std::string(signature_suffix);
        if (!public_key.empty()) {
            std::error_code ec;
            if (!fs::exists(sig, ec))
                throw Error(fmt::format("{}: no signature beside it ({}), and --have-key was given: carry the "
                                        "inventory's .sig across with it",
                                        label, sig.string()));
            std::string s = util::read_file(sig, 1024);
            if (!signing::verify(public_key, text, s))
                throw Error(fmt::format("{}: the signature does not match: it was altered, or signed with another "
                                        "key than {}",
                                        label, public_key.string()));
        } else {
            warnings.push_back(fmt::format("{}: the inventory's origin was not checked (give --have-key with the "
                                           "offline side's public key)",
                                           label));
        }
        auto inv = Inventory::parse(text, label);
        h.base = {"inventory", oci::Digest::of(text), inv.registry, inv.prefix};
        for (auto& b : inv.blobs) h.blobs.emplace(b.digest, std::move(b));
        return h;
    }
    // An old bundle: only bundle.json is read.
    verify::Inspection in;
    try {
        in = verify::inspect(path);
    } catch (const Error& e) {
        throw Error(fmt::format("--have {}: {}", label, e.what()));
    }
    warnings.push_back(fmt::format("{}: an old bundle's signature is not checked by --have; what it lists is only "
                                   "assumed present, and load checks every assumption in the registry first",
                                   label));
    h.base = {"bundle", in.bundle_json_digest, "", ""};
    for (const auto& b : in.doc.blobs)
        if (b.kind == "layer") h.blobs[b.digest] = {b.digest, b.size, {}};
    for (const auto& a : in.doc.assumed) h.blobs[a.digest] = {a.digest, a.size, a.repositories};
    return h;
}

} // namespace aas::delta
