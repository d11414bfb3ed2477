// copy::copy_image against a test HTTP server acting as both registries.

#include "http_server.hpp"

#include "aas_bundle/copy/copy.hpp"
#include "aas_bundle/oci/media_types.hpp"

#include <doctest/doctest.h>

#include <mutex>
#include <string>
#include <vector>

namespace {

using aas::testing::HttpServer;

bool contains(const std::string& haystack, std::string_view needle) {
    return haystack.find(needle) != std::string::npos;
}

// An image manifest: a config, one layer, and a foreign layer (with its download URL).
std::string image_with_foreign_layer() {
    auto blob = [](std::string_view media_type, char hex, const std::string& extra = "") {
        return "{\"mediaType\":\"" + std::string(media_type) + "\",\"digest\":\"sha256:" + std::string(64, hex) +
               "\",\"size\":20" + extra + "}";
    };
    return "{\"schemaVersion\":2,\"mediaType\":\"" + std::string(aas::oci::media_type::docker_manifest) +
           "\",\"config\":" + blob(aas::oci::media_type::docker_config, 'c') + ",\"layers\":[" +
           blob(aas::oci::media_type::docker_foreign_layer, 'f', ",\"urls\":[\"https://example.invalid/base\"]") + "," +
           blob(aas::oci::media_type::docker_layer, '1') + "]}";
}

} // namespace

TEST_CASE("copy::copy_image returns the warning for a foreign layer and does not copy it") {
    const std::string manifest = image_with_foreign_layer();
    std::mutex mu;
    std::vector<std::string> asked; // "METHOD target" of every request after the ping
    std::string put;                // the manifest the target received
    HttpServer server([&](const HttpServer::Request& req) {
        HttpServer::Response resp;
        if (req.target == "/v2/") return resp;
        std::lock_guard lock(mu);
        asked.push_back(req.method + " " + req.target);
        if (req.method == "GET" && req.target == "/v2/from/img/manifests/1.0") {
            resp.headers.emplace_back("Content-Type", std::string(aas::oci::media_type::docker_manifest));
            resp.body = manifest;
        } else if (req.method == "HEAD" && contains(req.target, "/v2/to/img/blobs/")) {
            // the target has every blob it is asked for: nothing to upload
        } else if (req.method == "PUT" && req.target == "/v2/to/img/manifests/1.0") {
            put = req.body;
            resp.status = 201;
        } else {
            resp.status = 404;
        }
        return resp;
    });
    aas::registry::Options options;
    options.plain_http = true;
    options.max_attempts = 1;
    aas::registry::Client src(server.host(), options);
    aas::registry::Client dst(server.host(), options);
    auto from = aas::ref::Reference::parse(server.host() + "/from/img:1.0");
    auto to = aas::ref::Reference::parse(server.host() + "/to/img:1.0");

    auto r = aas::copy::copy_image(src, from, dst, to, aas::copy::CopyOptions{});
    REQUIRE(r.warnings.size() == 1);
    CAPTURE(r.warnings[0]);
    CHECK(contains(r.warnings[0], "non-distributable foreign layer"));
    CHECK(contains(r.warnings[0], "https://example.invalid/base"));
    CHECK(contains(r.warnings[0], "it is not copied"));
    CHECK(r.blobs_skipped == 2); // the config and the layer, not the foreign layer
    CHECK(r.manifests == 1);
    CHECK(put == manifest);
    for (const auto& a : asked) CHECK_FALSE(contains(a, std::string(64, 'f')));
}
