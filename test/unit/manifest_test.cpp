#include "aas_bundle/oci/manifest.hpp"
#include "aas_bundle/oci/media_types.hpp"

#include <doctest/doctest.h>

#include <string>
#include <variant>
#include <vector>

using namespace aas::oci;
namespace mt = aas::oci::media_type;

namespace {

const std::string h_cfg = "b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7";
const std::string h_l1 = "4ba73c697770664c1e00e9f968de14e08f606ff961c76e5d7033a4a9c593c629";
const std::string h_l2 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const std::string h_m1 = "1111111111111111111111111111111111111111111111111111111111111111";
const std::string h_m2 = "2222222222222222222222222222222222222222222222222222222222222222";
const std::string h_m3 = "3333333333333333333333333333333333333333333333333333333333333333";

std::string image_manifest_json(std::string_view media_type_field) {
    std::string mt_line = media_type_field.empty() ? "" : "\"mediaType\":\"" + std::string(media_type_field) + "\",";
    return "{\"schemaVersion\":2," + mt_line +
           "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
           "\"digest\":\"sha256:" +
           h_cfg +
           "\",\"size\":1469},"
           "\"layers\":["
           "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:" +
           h_l1 +
           "\",\"size\":2814446,"
           "\"annotations\":{\"org.opencontainers.image.title\":\"layer1.tar.gz\",\"ignored\":5}},"
           "{\"mediaType\":\"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip\",\"digest\":\"sha256:" +
           h_l2 +
           "\",\"size\":0,"
           "\"urls\":[\"https://mcr.example/a\",\"https://mcr.example/b\"]}"
           "]}";
}

std::string index_json(std::string_view media_type_field) {
    std::string mt_line = media_type_field.empty() ? "" : "\"mediaType\":\"" + std::string(media_type_field) + "\",";
    return "{\"schemaVersion\":2," + mt_line +
           "\"manifests\":["
           "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:" +
           h_m1 +
           "\",\"size\":525,\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
           "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:" +
           h_m2 +
           "\",\"size\":526,\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}},"
           "{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"digest\":\"sha256:" +
           h_m3 +
           "\",\"size\":1234,\"platform\":{\"architecture\":\"amd64\",\"os\":\"windows\","
           "\"os.version\":\"10.0.17763.1234\"},\"annotations\":{\"k\":\"v\"}}"
           "]}";
}

std::string error_of_from_bytes(std::string bytes, std::string_view content_type) {
    try {
        (void)RawManifest::from_bytes(std::move(bytes), content_type);
    } catch (const aas::Error& e) {
        return e.what();
    }
    return "<no error>";
}

std::string error_of_parse(const RawManifest& raw) {
    try {
        (void)parse(raw);
    } catch (const aas::Error& e) {
        return e.what();
    }
    return "<no error>";
}

bool contains(const std::string& haystack, std::string_view needle) {
    return haystack.find(needle) != std::string::npos;
}

// A RawManifest built directly, bypassing from_bytes, to test parse() on its own.
RawManifest raw_of(std::string bytes, std::string_view media_type) {
    RawManifest r;
    r.digest = Digest::of(bytes);
    r.bytes = std::move(bytes);
    r.media_type = std::string(media_type);
    return r;
}

} // namespace

TEST_CASE("oci::media_type predicates") {
    struct Case {
        std::string_view mt;
        bool image, index, supported, schema1;
    };
    const std::vector<Case> cases = {
        {mt::oci_manifest, true, false, true, false},
        {mt::docker_manifest, true, false, true, false},
        {mt::oci_index, false, true, true, false},
        {mt::docker_manifest_list, false, true, true, false},
        {mt::docker_schema1, false, false, false, true},
        {mt::docker_schema1_signed, false, false, false, true},
        {mt::oci_config, false, false, false, false},
        {mt::oci_layer_gzip, false, false, false, false},
        {mt::docker_layer, false, false, false, false},
        {"application/json", false, false, false, false},
        {"", false, false, false, false},
        // Exact comparison: no parameters, no case folding.
        {"application/vnd.oci.image.manifest.v1+json; charset=utf-8", false, false, false, false},
        {"APPLICATION/VND.OCI.IMAGE.INDEX.V1+JSON", false, false, false, false},
    };
    for (const auto& c : cases) {
        CAPTURE(c.mt);
        CHECK(mt::is_image_manifest(c.mt) == c.image);
        CHECK(mt::is_index(c.mt) == c.index);
        CHECK(mt::is_supported_manifest(c.mt) == c.supported);
        CHECK(mt::is_schema1(c.mt) == c.schema1);
    }
}

TEST_CASE("oci::media_type::manifest_accept_header lists the supported types before schema 1") {
    const std::string accept(mt::manifest_accept_header());
    for (auto t : {mt::oci_manifest, mt::oci_index, mt::docker_manifest, mt::docker_manifest_list}) {
        CAPTURE(t);
        auto pos = accept.find(t);
        REQUIRE(pos != std::string::npos);
        // Listed as a whole entry (followed by ',' or the end, not a longer type) and without q=.
        auto end = pos + t.size();
        CHECK((end == accept.size() || accept[end] == ','));
        // Preferred over schema 1, which only comes as a fallback.
        CHECK(pos < accept.find(mt::docker_schema1));
        CHECK(pos < accept.find(mt::docker_schema1_signed));
    }
    // Schema 1 is only accepted with a lower quality so that it can be refused clearly.
    auto s1 = accept.find(mt::docker_schema1);
    REQUIRE(s1 != std::string::npos);
    CHECK(accept.compare(s1 + mt::docker_schema1.size(), 6, ";q=0.1") == 0);
}

TEST_CASE("oci::RawManifest::from_bytes takes the media type from Content-Type") {
    struct Case {
        std::string bytes;
        std::string content_type;
        std::string_view expected;
    };
    const std::vector<Case> cases = {
        {image_manifest_json(mt::oci_manifest), std::string(mt::oci_manifest), mt::oci_manifest},
        {image_manifest_json(mt::docker_manifest), std::string(mt::docker_manifest), mt::docker_manifest},
        {index_json(mt::oci_index), std::string(mt::oci_index), mt::oci_index},
        {index_json(mt::docker_manifest_list), std::string(mt::docker_manifest_list), mt::docker_manifest_list},
        // The header wins over a document without mediaType.
        {image_manifest_json(""), std::string(mt::docker_manifest), mt::docker_manifest},
        {index_json(""), std::string(mt::docker_manifest_list), mt::docker_manifest_list},
        // Parameters after ';' and trailing spaces are ignored.
        // (documents without mediaType, so that only the header can give these answers).
        {image_manifest_json(""), std::string(mt::docker_manifest) + "; charset=utf-8", mt::docker_manifest},
        {index_json(""), std::string(mt::docker_manifest_list) + " ;foo=bar", mt::docker_manifest_list},
    };
    for (const auto& c : cases) {
        CAPTURE(c.content_type);
        RawManifest m = RawManifest::from_bytes(c.bytes, c.content_type);
        CHECK(m.media_type == c.expected);
        CHECK(m.bytes == c.bytes);
        CHECK(m.digest == Digest::of(c.bytes));
    }
}

TEST_CASE("oci::RawManifest::from_bytes falls back to the document's mediaType") {
    const std::vector<std::string> generic = {"", "application/json", "text/plain",
                                              "application/octet-stream; charset=x"};
    SUBCASE("each declared media type") {
        for (const auto& ct : generic) {
            CAPTURE(ct);
            for (auto declared : {mt::oci_manifest, mt::docker_manifest}) {
                CAPTURE(declared);
                CHECK(RawManifest::from_bytes(image_manifest_json(declared), ct).media_type == declared);
            }
            for (auto declared : {mt::oci_index, mt::docker_manifest_list}) {
                CAPTURE(declared);
                CHECK(RawManifest::from_bytes(index_json(declared), ct).media_type == declared);
            }
        }
    }
    SUBCASE("an OCI document without mediaType is recognised by its shape") {
        for (const auto& ct : generic) {
            CAPTURE(ct);
            CHECK(RawManifest::from_bytes(image_manifest_json(""), ct).media_type == mt::oci_manifest);
            CHECK(RawManifest::from_bytes(index_json(""), ct).media_type == mt::oci_index);
        }
    }
    SUBCASE("a document that is neither a manifest nor an index is refused") {
        for (const auto& ct : generic) {
            CAPTURE(ct);
            std::string msg = error_of_from_bytes("{\"schemaVersion\":2,\"layers\":[]}", ct);
            CHECK(contains(msg, "unsupported media type"));
            msg = error_of_from_bytes("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.example+json\"}", ct);
            CHECK(contains(msg, "unsupported media type"));
            CHECK(contains(msg, "manifest sha256:"));
        }
    }
}

TEST_CASE("oci::RawManifest::from_bytes refuses Docker schema 1") {
    const std::string schema1_doc = "{\"schemaVersion\":1,\"name\":\"library/busybox\",\"tag\":\"latest\","
                                    "\"architecture\":\"amd64\",\"fsLayers\":[],\"history\":[]}";
    SUBCASE("by Content-Type") {
        for (auto ct : {mt::docker_schema1, mt::docker_schema1_signed}) {
            CAPTURE(ct);
            // Even when the body would otherwise be a valid schema 2 manifest.
            for (const std::string& body : {schema1_doc, image_manifest_json("")}) {
                CHECK_THROWS_AS((void)RawManifest::from_bytes(body, ct), aas::Error);
                std::string msg = error_of_from_bytes(body, ct);
                CAPTURE(msg);
                CHECK(contains(msg, "schema 1"));
                CHECK(contains(msg, Digest::of(body).str()));
            }
        }
        std::string with_param = std::string(mt::docker_schema1_signed) + "; charset=utf-8";
        CHECK(contains(error_of_from_bytes(image_manifest_json(""), with_param), "schema 1"));
    }
    SUBCASE("by schemaVersion 1 in the document") {
        for (const std::string& ct :
             {std::string(), std::string("application/json"), std::string(mt::docker_manifest)}) {
            CAPTURE(ct);
            std::string msg = error_of_from_bytes(schema1_doc, ct);
            CAPTURE(msg);
            CHECK(contains(msg, "schema 1"));
            CHECK(contains(msg, "manifest " + Digest::of(schema1_doc).str()));
        }
    }
}

TEST_CASE("oci::RawManifest::from_bytes reports invalid JSON with the digest") {
    const std::vector<std::string> bad = {"", "{", "not json", "{\"schemaVersion\":2,}", "{\"a\":1} trailing"};
    for (const auto& b : bad) {
        CAPTURE(b);
        CHECK_THROWS_AS((void)RawManifest::from_bytes(b, mt::oci_manifest), aas::Error);
        std::string msg = error_of_from_bytes(b, mt::oci_manifest);
        CAPTURE(msg);
        CHECK(contains(msg, "manifest " + Digest::of(b).str()));
        CHECK(contains(msg, "invalid JSON"));
    }
    SUBCASE("JSON that is not an object") {
        for (std::string b : {"[]", "2", "\"x\"", "null"}) {
            CAPTURE(b);
            std::string msg = error_of_from_bytes(b, mt::oci_manifest);
            CHECK(contains(msg, "not a JSON object"));
            CHECK(contains(msg, Digest::of(b).str()));
        }
    }
}

TEST_CASE("oci::RawManifest::from_bytes hashes the exact bytes and keeps them verbatim") {
    const std::string compact = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
                                "\"manifests\":[]}";
    const std::string spaced =
        "{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"application/vnd.oci.image.index.v1+json\",\n"
        "  \"manifests\": []\n}\n";
    const std::string reordered = "{\"manifests\":[],\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
                                  "\"schemaVersion\":2}";
    RawManifest a = RawManifest::from_bytes(compact, "");
    RawManifest b = RawManifest::from_bytes(spaced, "");
    RawManifest c = RawManifest::from_bytes(reordered, "");
    CHECK(a.bytes == compact);
    CHECK(b.bytes == spaced);
    CHECK(c.bytes == reordered);
    CHECK(a.digest == Digest::of(compact));
    CHECK(b.digest == Digest::of(spaced));
    CHECK(c.digest == Digest::of(reordered));
    CHECK(a.digest != b.digest);
    CHECK(a.digest != c.digest);
    CHECK(b.digest != c.digest);
    // Known digest of a fixed document, so that the hashed text is pinned down byte for byte.
    CHECK(RawManifest::from_bytes("{\"manifests\":[]}", "").digest.str() ==
          "sha256:27b7a2ad77ebd6c3663a9dc5d493a96943c48d8c7c77b3c123d2f6712f1ff7ed");
    // All three parse to the same (empty) index.
    for (const RawManifest* r : {&a, &b, &c}) {
        Parsed p = parse(*r);
        REQUIRE(std::holds_alternative<Index>(p));
        CHECK(std::get<Index>(p).manifests.empty());
    }
}

TEST_CASE("oci::parse of an image manifest") {
    for (auto media : {mt::oci_manifest, mt::docker_manifest}) {
        CAPTURE(media);
        RawManifest raw = RawManifest::from_bytes(image_manifest_json(media), media);
        Parsed p = parse(raw);
        REQUIRE(std::holds_alternative<ImageManifest>(p));
        const auto& m = std::get<ImageManifest>(p);
        CHECK(m.media_type == media);

        CHECK(m.config.media_type == mt::oci_config);
        CHECK(m.config.digest.str() == "sha256:" + h_cfg);
        CHECK(m.config.size == 1469);
        CHECK_FALSE(m.config.platform.has_value());
        CHECK(m.config.urls.empty());
        CHECK(m.config.annotations.empty());

        REQUIRE(m.layers.size() == 2);
        CHECK(m.layers[0].media_type == mt::oci_layer_gzip);
        CHECK(m.layers[0].digest.hex() == h_l1);
        CHECK(m.layers[0].size == 2814446);
        CHECK(m.layers[0].urls.empty());
        // Non-string annotation values are skipped.
        CHECK(m.layers[0].annotations ==
              std::map<std::string, std::string>{{"org.opencontainers.image.title", "layer1.tar.gz"}});

        CHECK(m.layers[1].media_type == mt::docker_foreign_layer);
        CHECK(m.layers[1].digest.hex() == h_l2);
        CHECK(m.layers[1].size == 0);
        CHECK(m.layers[1].urls == std::vector<std::string>{"https://mcr.example/a", "https://mcr.example/b"});
        CHECK(m.layers[1].annotations.empty());
    }
    SUBCASE("a large size beyond 32 bits") {
        std::string doc = "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:" + h_cfg +
                          "\",\"size\":2},\"layers\":[{\"mediaType\":\"y\",\"digest\":\"sha256:" + h_l1 +
                          "\",\"size\":10000000000}]}";
        auto m = std::get<ImageManifest>(parse(RawManifest::from_bytes(doc, "")));
        REQUIRE(m.layers.size() == 1);
        CHECK(m.layers[0].size == 10000000000LL);
    }
    SUBCASE("an image without layers") {
        std::string doc = "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:" + h_cfg +
                          "\",\"size\":2},\"layers\":[]}";
        auto m = std::get<ImageManifest>(parse(RawManifest::from_bytes(doc, mt::oci_manifest)));
        CHECK(m.layers.empty());
        CHECK(m.config.size == 2);
    }
}

TEST_CASE("oci::parse of an index with platforms") {
    for (auto media : {mt::oci_index, mt::docker_manifest_list}) {
        CAPTURE(media);
        RawManifest raw = RawManifest::from_bytes(index_json(media), media);
        Parsed p = parse(raw);
        REQUIRE(std::holds_alternative<Index>(p));
        const auto& idx = std::get<Index>(p);
        CHECK(idx.media_type == media);
        REQUIRE(idx.manifests.size() == 3);

        const auto& d0 = idx.manifests[0];
        CHECK(d0.media_type == mt::oci_manifest);
        CHECK(d0.digest.hex() == h_m1);
        CHECK(d0.size == 525);
        REQUIRE(d0.platform.has_value());
        CHECK(d0.platform->os == "linux");
        CHECK(d0.platform->architecture == "amd64");
        CHECK(d0.platform->variant.empty());
        CHECK(d0.platform->os_version.empty());

        const auto& d1 = idx.manifests[1];
        CHECK(d1.digest.hex() == h_m2);
        REQUIRE(d1.platform.has_value());
        CHECK(d1.platform->str() == "linux/arm64/v8");
        CHECK(d1.platform->variant == "v8");

        const auto& d2 = idx.manifests[2];
        CHECK(d2.media_type == mt::docker_manifest);
        CHECK(d2.digest.hex() == h_m3);
        CHECK(d2.size == 1234);
        REQUIRE(d2.platform.has_value());
        CHECK(d2.platform->os == "windows");
        CHECK(d2.platform->os_version == "10.0.17763.1234");
        CHECK(d2.annotations.at("k") == "v");
    }
    SUBCASE("a descriptor without platform") {
        std::string doc =
            "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
            "\"digest\":\"sha256:" +
            h_m1 + "\",\"size\":1}]}";
        auto idx = std::get<Index>(parse(RawManifest::from_bytes(doc, "")));
        REQUIRE(idx.manifests.size() == 1);
        CHECK_FALSE(idx.manifests[0].platform.has_value());
    }
}

TEST_CASE("oci::parse errors name the manifest digest and the problem") {
    const std::string cfg = "{\"mediaType\":\"x\",\"digest\":\"sha256:" + h_cfg + "\",\"size\":2}";
    const std::string lay = "{\"mediaType\":\"y\",\"digest\":\"sha256:" + h_l1 + "\",\"size\":3}";
    struct Case {
        std::string name;
        std::string bytes;
        std::string_view media;
        std::vector<std::string> fragments;
    };
    const std::vector<Case> cases = {
        {"missing config", "{\"schemaVersion\":2,\"layers\":[" + lay + "]}", mt::oci_manifest, {"missing \"config\""}},
        {"missing layers",
         "{\"schemaVersion\":2,\"config\":" + cfg + "}",
         mt::oci_manifest,
         {"missing \"layers\" array"}},
        {"layers not an array",
         "{\"schemaVersion\":2,\"config\":" + cfg + ",\"layers\":{}}",
         mt::docker_manifest,
         {"missing \"layers\" array"}},
        {"missing manifests", "{\"schemaVersion\":2}", mt::oci_index, {"missing \"manifests\" array"}},
        {"bad digest in config",
         "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:abc\",\"size\":2},\"layers\":[]}",
         mt::oci_manifest,
         {"config", "invalid digest \"sha256:abc\"", "64 hex digits"}},
        {"bad digest in a layer",
         "{\"schemaVersion\":2,\"config\":" + cfg + ",\"layers\":[" + lay +
             ",{\"mediaType\":\"y\",\"digest\":\"md5:00\",\"size\":3}]}",
         mt::oci_manifest,
         {"layers[1]", "invalid digest \"md5:00\""}},
        {"bad digest in an index entry",
         "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"m\",\"digest\":\"sha256:" + h_cfg.substr(0, 63) +
             "X\",\"size\":1}]}",
         mt::oci_index,
         {"manifests[0]", "lower-case hex"}},
        {"missing digest",
         "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"size\":2},\"layers\":[]}",
         mt::oci_manifest,
         {"config", "missing \"digest\""}},
        {"missing mediaType in a descriptor",
         "{\"schemaVersion\":2,\"config\":{\"digest\":\"sha256:" + h_cfg + "\",\"size\":2},\"layers\":[]}",
         mt::oci_manifest,
         {"config", "missing \"mediaType\""}},
        {"negative size",
         "{\"schemaVersion\":2,\"config\":" + cfg + ",\"layers\":[{\"mediaType\":\"y\",\"digest\":\"sha256:" + h_l1 +
             "\",\"size\":-1}]}",
         mt::oci_manifest,
         {"layers[0]", "sha256:" + h_l1, "no valid \"size\""}},
        {"missing size",
         "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:" + h_cfg + "\"},\"layers\":[]}",
         mt::oci_manifest,
         {"config", "no valid \"size\""}},
        {"fractional size",
         "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:" + h_cfg +
             "\",\"size\":1.5},\"layers\":[]}",
         mt::oci_manifest,
         {"config", "no valid \"size\""}},
        {"string size",
         "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"m\",\"digest\":\"sha256:" + h_m1 +
             "\",\"size\":\"12\"}]}",
         mt::oci_index,
         {"manifests[0]", "no valid \"size\""}},
        {"descriptor not an object",
         "{\"schemaVersion\":2,\"manifests\":[42]}",
         mt::oci_index,
         {"manifests[0]", "not a JSON object"}},
        {"schemaVersion 3",
         "{\"schemaVersion\":3,\"config\":" + cfg + ",\"layers\":[]}",
         mt::oci_manifest,
         {"\"schemaVersion\" must be 2"}},
        {"schemaVersion missing",
         "{\"config\":" + cfg + ",\"layers\":[]}",
         mt::oci_manifest,
         {"\"schemaVersion\" must be 2"}},
        {"schemaVersion as a string",
         "{\"schemaVersion\":\"2\",\"manifests\":[]}",
         mt::oci_index,
         {"\"schemaVersion\" must be 2"}},
        {"schemaVersion 1", "{\"schemaVersion\":1,\"fsLayers\":[]}", mt::docker_manifest, {"schema 1"}},
        {"schema 1 media type", "{\"schemaVersion\":2,\"manifests\":[]}", mt::docker_schema1_signed, {"schema 1"}},
        {"unsupported media type",
         "{\"schemaVersion\":2,\"manifests\":[]}",
         mt::oci_config,
         {"unsupported media type \"application/vnd.oci.image.config.v1+json\""}},
        {"invalid JSON", "{\"schemaVersion\":2,", mt::oci_index, {"invalid JSON"}},
    };
    for (const auto& c : cases) {
        CAPTURE(c.name);
        RawManifest raw = raw_of(c.bytes, c.media);
        CHECK_THROWS_AS((void)parse(raw), aas::Error);
        std::string msg = error_of_parse(raw);
        CAPTURE(msg);
        CHECK(contains(msg, "manifest " + raw.digest.str()));
        for (const auto& f : c.fragments) {
            CAPTURE(f);
            CHECK(contains(msg, f));
        }
    }
}

TEST_CASE("oci::blobs_of lists the config first, then the layers in order") {
    RawManifest raw = RawManifest::from_bytes(image_manifest_json(mt::oci_manifest), "");
    auto m = std::get<ImageManifest>(parse(raw));
    auto blobs = blobs_of(m);
    REQUIRE(blobs.size() == 3);
    CHECK(blobs[0].digest.hex() == h_cfg);
    CHECK(blobs[0].size == 1469);
    CHECK(blobs[1].digest.hex() == h_l1);
    CHECK(blobs[1].size == 2814446);
    CHECK(blobs[2].digest.hex() == h_l2);
    CHECK(blobs[2].urls.size() == 2);

    SUBCASE("no layers: just the config") {
        ImageManifest only_config;
        only_config.config.digest = Digest::of("cfg");
        only_config.config.size = 3;
        auto b = blobs_of(only_config);
        REQUIRE(b.size() == 1);
        CHECK(b[0].digest == Digest::of("cfg"));
    }
}

TEST_CASE("oci::parse refuses a schemaVersion beyond int range") {
    auto raw = aas::oci::RawManifest::from_bytes(
        R"({"schemaVersion":4294967298,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]})",
        "application/vnd.oci.image.index.v1+json");
    CHECK_THROWS_WITH_AS(aas::oci::parse(raw), doctest::Contains("\"schemaVersion\" must be 2"), aas::Error);
}

// ---------------------------------------------------------------------------------------
// oci::walk and oci::pick_platforms: the one graph walk of pack, copy and load.

#include "aas_bundle/oci/walk.hpp"
#include "aas_bundle/util/error.hpp"

#include <map>

namespace {

std::string hexof(char c) {
    return std::string(64, c);
}

std::string image_json(const std::string& cfg, const std::vector<std::string>& layers, bool foreign_last = false) {
    std::string s = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
                    "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:" +
                    cfg + "\",\"size\":10},\"layers\":[";
    for (std::size_t i = 0; i < layers.size(); ++i) {
        bool foreign = foreign_last && i + 1 == layers.size();
        s += std::string(i ? "," : "") + "{\"mediaType\":\"" +
             (foreign ? "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
                      : "application/vnd.oci.image.layer.v1.tar+gzip") +
             "\",\"digest\":\"sha256:" + layers[i] + "\",\"size\":20" +
             (foreign ? ",\"urls\":[\"https://example.invalid/l\"]" : "") + "}";
    }
    return s + "]}";
}

struct Store {
    std::map<Digest, RawManifest> by_digest;
    std::vector<std::string> fetched;
    RawManifest add(const std::string& json, std::string_view media_type) {
        auto raw = RawManifest::from_bytes(json, media_type);
        by_digest[raw.digest] = raw;
        return raw;
    }
    std::string index_json(const std::vector<std::pair<RawManifest, std::string>>& children) {
        std::string s =
            "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[";
        for (std::size_t i = 0; i < children.size(); ++i) {
            const auto& [m, plat] = children[i];
            s += std::string(i ? "," : "") + "{\"mediaType\":\"" + m.media_type + "\",\"digest\":\"" + m.digest.str() +
                 "\",\"size\":" + std::to_string(m.bytes.size());
            if (!plat.empty()) {
                auto slash = plat.find('/');
                s += ",\"platform\":{\"os\":\"" + plat.substr(0, slash) + "\",\"architecture\":\"" +
                     plat.substr(slash + 1) + "\"}";
            }
            s += "}";
        }
        return s + "]}";
    }
    FetchManifest fetch() {
        return [this](const Descriptor& d) {
            fetched.push_back(d.digest.str());
            return by_digest.at(d.digest);
        };
    }
};

} // namespace

TEST_CASE("oci::walk: an index's children before it, every blob once, foreign layers apart") {
    Store st;
    auto amd = st.add(image_json(hexof('c'), {hexof('1'), hexof('2')}), mt::oci_manifest);
    auto arm = st.add(image_json(hexof('d'), {hexof('1'), hexof('3'), hexof('f')}, true), mt::oci_manifest);
    auto inner = st.add(st.index_json({{arm, "linux/arm64"}}), mt::oci_index);
    auto top = st.add(st.index_json({{amd, "linux/amd64"}, {inner, ""}}), mt::oci_index);
    auto g = walk(top, st.fetch());
    REQUIRE(g.children.size() == 3);
    CHECK(g.children[0].digest == amd.digest);
    CHECK(g.children[1].digest == arm.digest); // the nested index's child before it
    CHECK(g.children[2].digest == inner.digest);
    std::vector<std::string> blobs;
    for (const auto& b : g.blobs) blobs.push_back(b.digest.hex().substr(0, 1));
    CHECK(blobs == std::vector<std::string>{"c", "1", "2", "d", "3"});
    REQUIRE(g.foreign.size() == 1);
    CHECK(g.foreign[0].digest.hex() == hexof('f'));
    CHECK(g.platforms == std::vector<std::string>{"linux/amd64", "linux/arm64"});
    // An image manifest: its blobs, nothing fetched.
    st.fetched.clear();
    auto single = walk(amd, st.fetch());
    CHECK(single.children.empty());
    CHECK(single.blobs.size() == 3);
    CHECK(st.fetched.empty());
}

TEST_CASE("oci::walk refuses indexes nested past the limit and a child with another digest") {
    Store st;
    auto m = st.add(image_json(hexof('c'), {hexof('1')}), mt::oci_manifest);
    RawManifest cur = m;
    for (int depth = 0; depth < max_index_depth; ++depth) cur = st.add(st.index_json({{cur, ""}}), mt::oci_index);
    CHECK_NOTHROW(walk(cur, st.fetch())); // max_index_depth indexes
    auto deeper = st.add(st.index_json({{cur, ""}}), mt::oci_index);
    CHECK_THROWS_WITH_AS(walk(deeper, st.fetch()), doctest::Contains("indexes nested more than 4 deep"), aas::Error);
    auto other = st.add(image_json(hexof('e'), {hexof('2')}), mt::oci_manifest);
    auto top = st.add(st.index_json({{m, ""}}), mt::oci_index);
    CHECK_THROWS_WITH_AS(walk(top, [&](const Descriptor&) { return other; }), doctest::Contains("came back as"),
                         aas::Error);
}

TEST_CASE("oci::pick_platforms: the matching entries in index order, or what the index has") {
    Store st;
    auto a = st.add(image_json(hexof('a'), {}), mt::oci_manifest);
    auto b = st.add(image_json(hexof('b'), {}), mt::oci_manifest);
    auto top = st.add(st.index_json({{a, "linux/amd64"}, {b, "linux/arm64"}}), mt::oci_index);
    auto parsed = parse(top);
    const auto& idx = std::get<Index>(parsed);
    auto picked = pick_platforms(idx, {Platform::parse("linux/arm64"), Platform::parse("linux/amd64")}, "x");
    REQUIRE(picked.size() == 2);
    CHECK(picked[0]->digest == a.digest); // index order, not the order asked
    CHECK_THROWS_WITH_AS(pick_platforms(idx, {Platform::parse("linux/s390x")}, "img"),
                         doctest::Contains("img: no image for platform linux/s390x in the index (it has: linux/amd64, "
                                           "linux/arm64)"),
                         aas::Error);
}

TEST_CASE("oci::visit reports and goes on where walk throws") {
    Store st;
    auto good = st.add(image_json(hexof('c'), {hexof('1')}), mt::oci_manifest);
    auto other = st.add(image_json(hexof('d'), {hexof('2')}), mt::oci_manifest);
    auto top = st.add(st.index_json({{good, "linux/amd64"}, {other, "linux/arm64"}}), mt::oci_index);
    std::vector<std::string> seen, bad;
    Visitor v;
    v.child = [&](const Descriptor& c, const RawManifest& parent) -> std::optional<RawManifest> {
        CHECK(parent.digest == top.digest);
        if (c.digest == good.digest) return std::nullopt; // "missing": reported by the caller, the walk goes on
        return st.by_digest.at(c.digest);
    };
    v.blob = [&](const Descriptor& b, const RawManifest& m) {
        CHECK(m.digest == other.digest);
        seen.push_back(b.digest.hex().substr(0, 1));
    };
    v.bad = [&](const RawManifest& m, const std::string& why) { bad.push_back(m.digest.str() + ": " + why); };
    visit(top, v);
    CHECK(seen == std::vector<std::string>{"d", "2"});
    CHECK(bad.empty());
    // A manifest that does not parse goes to `bad`, and the walk does not throw.
    RawManifest broken{"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\"}",
                       std::string(mt::oci_index), Digest::of("x")};
    visit(broken, v);
    REQUIRE(bad.size() == 1);
    CHECK(bad[0].find(Digest::of("x").str()) == 0);
}
