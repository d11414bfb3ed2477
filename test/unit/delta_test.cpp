#include "testing.hpp"

#include "aas_bundle/bundle/format.hpp"
#include "aas_bundle/delta/inventory.hpp"
#include "aas_bundle/signing/signing.hpp"
#include "aas_bundle/util/error.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>

namespace fs = std::filesystem;
using aas::bundle::BundleDoc;
using aas::delta::Inventory;
using aas::oci::Digest;
using aas::testing::TempDir;
using json = nlohmann::ordered_json;

namespace {

std::string hex(char c) {
    return std::string(64, c);
}
std::string dg(char c) {
    return "sha256:" + hex(c);
}

json good_inventory() {
    return json::parse(fmt::format(R"({{
  "format": "aas-bundle-inventory/v1",
  "registry": "127.0.0.1:5000",
  "prefix": "apps",
  "created": "2026-01-01T00:00:00Z",
  "from": [{{"kind": "bundle", "sha256": "{}", "name": "app 1"}}],
  "images": [{{"repository": "apps/library/web", "tag": "1.0", "digest": "{}", "manifests": ["{}"]}},
             {{"repository": "apps/library/db", "tag": null, "digest": "{}", "manifests": ["{}"]}}],
  "blobs": [{{"digest": "{}", "size": 10, "repositories": ["apps/library/web"]}},
            {{"digest": "{}", "size": 20, "repositories": ["apps/library/web", "apps/library/db"]}}]
}})",
                                   dg('0'), dg('1'), dg('1'), dg('2'), dg('2'), dg('a'), dg('b')));
}

std::string parse_error(const json& j) {
    try {
        Inventory::parse(j.dump(), "inventory.json");
    } catch (const aas::Error& e) {
        return e.what();
    }
    return "(no error)";
}

// A delta bundle.json: one image, one stored manifest and config, one assumed layer.
json good_delta() {
    return json::parse(fmt::format(R"({{
  "format": "aas-bundle/v2", "name": "app", "version": "2", "releases": [],
  "images": [{{"ref": "docker.io/library/web:2", "digest": "{}", "media_type": "application/vnd.oci.image.manifest.v1+json",
              "size": 300, "class": "required"}}],
  "blobs": [{{"digest": "{}", "size": 300, "media_type": "application/vnd.oci.image.manifest.v1+json", "kind": "manifest",
             "images": ["docker.io/library/web:2"]}},
            {{"digest": "{}", "size": 50, "media_type": "application/vnd.oci.image.config.v1+json", "kind": "config",
             "images": ["docker.io/library/web:2"]}}],
  "files": [],
  "base": [{{"kind": "inventory", "sha256": "{}", "registry": "127.0.0.1:5000", "prefix": "apps"}}],
  "assumed": [{{"digest": "{}", "size": 1000, "media_type": "application/vnd.oci.image.layer.v1.tar+gzip",
               "images": ["docker.io/library/web:2"], "base": 0, "repositories": ["apps/library/web"]}}]
}})",
                                   dg('1'), dg('1'), dg('2'), dg('9'), dg('a')));
}

std::string doc_error(const json& j) {
    try {
        BundleDoc::parse(j.dump(), "bundle.json");
    } catch (const aas::Error& e) {
        return e.what();
    }
    return "(no error)";
}

} // namespace

TEST_CASE("delta::Inventory round-trips and sorts for reproducibility") {
    auto inv = Inventory::parse(good_inventory().dump(), "inventory.json");
    CHECK(inv.registry == "127.0.0.1:5000");
    CHECK(inv.prefix == "apps");
    REQUIRE(inv.images.size() == 2);
    CHECK(!inv.images[1].tag.has_value());
    REQUIRE(inv.blobs.size() == 2);
    CHECK(inv.blobs[1].size == 20);
    CHECK(inv.blobs[1].repositories.size() == 2);
    auto text = inv.to_json();
    auto again = Inventory::parse(text, "again");
    CHECK(again.to_json() == text);
    // Sorted: images by repository (db before web), repositories within a blob.
    auto j = json::parse(text);
    CHECK(j["images"][0]["repository"] == "apps/library/db");
    CHECK(j["images"][0]["tag"].is_null());
    CHECK(j["blobs"][1]["repositories"][0] == "apps/library/db");
    // Another order of the same content gives the same bytes.
    auto shuffled = good_inventory();
    std::swap(shuffled["blobs"][0], shuffled["blobs"][1]);
    std::swap(shuffled["images"][0], shuffled["images"][1]);
    CHECK(Inventory::parse(shuffled.dump(), "x").to_json() == text);
}

TEST_CASE("delta::Inventory::parse refuses hostile input, naming the file and the field") {
    auto j = good_inventory();
    j["blobs"][1]["size"] = "20";
    CHECK(parse_error(j) == "inventory.json: blobs[1].size: not a number");
    j = good_inventory();
    j["blobs"][0]["size"] = -1;
    CHECK(parse_error(j).find("inventory.json: blobs[0].size: not a non-negative integer") == 0);
    j = good_inventory();
    j["blobs"][0]["size"] = 18446744073709551615ull;
    CHECK(parse_error(j).find("blobs[0].size: not a non-negative integer") != std::string::npos);
    j = good_inventory();
    j["blobs"][0]["size"] = 1.5;
    CHECK(parse_error(j).find("blobs[0].size: not a non-negative integer") != std::string::npos);
    j = good_inventory();
    j["blobs"][0]["digest"] = "sha256:XYZ";
    CHECK(parse_error(j).find("inventory.json: blobs[0].digest: ") == 0);
    j = good_inventory();
    j["blobs"][1]["digest"] = dg('a');
    CHECK(parse_error(j).find("blobs[1].digest: sha256:" + hex('a') + " is listed twice") != std::string::npos);
    j = good_inventory();
    j["blobs"][0]["repositories"] = json::array({"apps/../etc"});
    CHECK(parse_error(j).find("blobs[0].repositories[0]: \"apps/../etc\" is not a repository path") !=
          std::string::npos);
    j = good_inventory();
    j["blobs"][0]["repositories"] = json::array({"Upper/Case"});
    CHECK(parse_error(j).find("blobs[0].repositories[0]") != std::string::npos);
    j = good_inventory();
    j["blobs"][0]["repositories"] = "apps/library/web";
    CHECK(parse_error(j) == "inventory.json: blobs[0].repositories: not a list");
    j = good_inventory();
    j["images"][0]["tag"] = 5;
    CHECK(parse_error(j) == "inventory.json: images[0].tag: not a string or null");
    j = good_inventory();
    j["images"][0]["tag"] = "bad tag";
    CHECK(parse_error(j).find("images[0].tag: \"bad tag\" is not a tag") != std::string::npos);
    j = good_inventory();
    j["images"][0].erase("manifests");
    CHECK(parse_error(j) == "inventory.json: images[0].manifests: missing");
    j = good_inventory();
    j["format"] = "aas-bundle-inventory/v9";
    CHECK(parse_error(j).find("inventory.json: format: ") == 0);
    j = good_inventory();
    j["registry"] = "bad host!";
    CHECK(parse_error(j).find("inventory.json: registry: ") == 0);
    j = good_inventory();
    j["blobs"] = json::object();
    CHECK(parse_error(j) == "inventory.json: blobs: not a list");
    j = good_inventory();
    j["created"] = std::string("2026\n");
    CHECK(parse_error(j).find("created: holds a control character") != std::string::npos);
    CHECK_THROWS_AS(Inventory::parse("[1,2]", "x"), aas::Error);
    CHECK_THROWS_AS(Inventory::parse("{", "x"), aas::Error);
    CHECK_THROWS_AS(Inventory::parse(std::string(100, '[') + std::string(100, ']'), "x"), aas::Error);
    CHECK_THROWS_WITH_AS(Inventory::parse(std::string((64u << 20) + 1, ' '), "big.json"),
                         doctest::Contains("big.json: 67108865 bytes, more than the limit"), aas::Error);
}

TEST_CASE("delta::read_have checks an inventory's signature when a key is given") {
    TempDir t;
    aas::signing::generate_keypair(t.path / "offline");
    aas::signing::generate_keypair(t.path / "other");
    auto inv = Inventory::parse(good_inventory().dump(), "x");
    auto file = t.path / "inventory.json";
    aas::delta::write(file, inv, t.path / "offline.key");
    REQUIRE(fs::exists(t.path / "inventory.json.sig"));
    std::vector<std::string> warns;
    auto h = aas::delta::read_have(file, t.path / "offline.pub", warns);
    CHECK(warns.empty());
    CHECK(h.base.kind == "inventory");
    CHECK(h.base.sha256 == Digest::of(aas::testing::slurp(file)));
    CHECK(h.base.registry == "127.0.0.1:5000");
    CHECK(h.blobs.size() == 2);
    CHECK(h.blobs.at(Digest::parse(dg('b'))).size == 20);
    // Wrong key.
    CHECK_THROWS_WITH_AS(aas::delta::read_have(file, t.path / "other.pub", warns),
                         doctest::Contains("the signature does not match: it was altered, or signed with another key"),
                         aas::Error);
    // Without a key: read, with a warning.
    warns.clear();
    aas::delta::read_have(file, {}, warns);
    REQUIRE(warns.size() == 1);
    CHECK(warns[0].find("origin was not checked") != std::string::npos);
    // One byte changed.
    std::string text = aas::testing::slurp(file);
    text[text.find("\"size\": 20") + 9] = '1';
    { std::ofstream(file, std::ios::binary | std::ios::trunc) << text; }
    CHECK_THROWS_WITH_AS(aas::delta::read_have(file, t.path / "offline.pub", warns),
                         doctest::Contains("the signature does not match"), aas::Error);
    // No .sig at all.
    fs::remove(t.path / "inventory.json.sig");
    CHECK_THROWS_WITH_AS(aas::delta::read_have(file, t.path / "offline.pub", warns),
                         doctest::Contains("no signature beside it"), aas::Error);
    // Writing without a key removes a stale .sig.
    aas::delta::write(file, inv, t.path / "offline.key");
    aas::delta::write(file, inv);
    CHECK(!fs::exists(t.path / "inventory.json.sig"));
}

TEST_CASE("bundle::BundleDoc reads and writes a delta's base and assumed") {
    auto d = BundleDoc::parse(good_delta().dump(), "bundle.json");
    CHECK(d.is_delta());
    REQUIRE(d.base.size() == 1);
    CHECK(d.base[0].registry == "127.0.0.1:5000");
    REQUIRE(d.assumed.size() == 1);
    CHECK(d.assumed[0].size == 1000);
    CHECK(d.assumed_bytes() == 1000);
    auto again = BundleDoc::parse(d.to_json(), "again");
    CHECK(again.to_json() == d.to_json());
    // A full bundle has neither field.
    auto full = good_delta();
    full.erase("base");
    full.erase("assumed");
    auto f = BundleDoc::parse(full.dump(), "bundle.json");
    CHECK(!f.is_delta());
    CHECK(f.to_json().find("\"assumed\"") == std::string::npos);
}

TEST_CASE("bundle::BundleDoc::parse refuses a hostile base or assumed, naming the entry") {
    auto j = good_delta();
    j["assumed"][0]["base"] = 1;
    CHECK(doc_error(j).find("bundle.json: assumed[0].base: not an index into base") == 0);
    j = good_delta();
    j["assumed"][0]["base"] = -1;
    CHECK(doc_error(j).find("assumed[0].base: not an index") != std::string::npos);
    j = good_delta();
    j["assumed"][0]["base"] = "0";
    CHECK(doc_error(j).find("assumed[0].base: not an index") != std::string::npos);
    j = good_delta();
    j["assumed"][0]["digest"] = dg('2'); // the stored config
    CHECK(doc_error(j).find("bundle.json: assumed[0]: sha256:" + hex('2') +
                            " is assumed present, but the bundle stores it too") == 0);
    j = good_delta();
    j["assumed"][0]["images"] = json::array();
    CHECK(doc_error(j).find("assumed[0].images: sha256:" + hex('a') + ": no image of the bundle needs it") !=
          std::string::npos);
    j = good_delta();
    j["assumed"][0]["images"] = json::array({"docker.io/library/other:1"});
    CHECK(doc_error(j).find("assumed[0].images: \"docker.io/library/other:1\" is not an image of the bundle") !=
          std::string::npos);
    j = good_delta();
    j["assumed"].push_back(j["assumed"][0]);
    CHECK(doc_error(j).find("assumed[1]: sha256:" + hex('a') + " is assumed twice") != std::string::npos);
    j = good_delta();
    j["assumed"][0]["size"] = "1000";
    CHECK(doc_error(j).find("assumed[0].size: not a non-negative integer") != std::string::npos);
    j = good_delta();
    j["assumed"][0]["size"] = 18446744073709551615ull;
    CHECK(doc_error(j).find("assumed[0].size: not a non-negative integer") != std::string::npos);
    j = good_delta();
    j["assumed"][0]["digest"] = "sha256:abc";
    CHECK(doc_error(j).find("assumed[0].digest") != std::string::npos);
    j = good_delta();
    j["base"][0]["kind"] = "rumour";
    CHECK(doc_error(j).find("base[0].kind: \"rumour\" is not inventory or bundle") != std::string::npos);
    j = good_delta();
    j["base"] = json::array();
    CHECK(doc_error(j).find("bundle.json: base: an empty list") == 0);
    j = good_delta();
    j.erase("base");
    CHECK(doc_error(j).find("bundle.json: base: missing") == 0);
    j = good_delta();
    j["assumed"] = json::object();
    CHECK(doc_error(j) == "bundle.json: assumed: not a list");
    j = good_delta();
    j["assumed"][0]["repositories"] = json::array({1});
    CHECK(doc_error(j).find("assumed[0].repositories: holds something that is not a string") != std::string::npos);
    j = good_delta();
    j["assumed"][0].erase("repositories");
    CHECK(doc_error(j) == "bundle.json: assumed[0].repositories: missing");
}
