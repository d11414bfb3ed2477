#include "../../src/registry/http.hpp"
#include "http_server.hpp"

#include "aas_bundle/registry/client.hpp"
#include "aas_bundle/util/error.hpp"
#include "aas_bundle/util/log.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cstring>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace http = aas::registry::http;
using aas::registry::ErrorEntry;
using aas::registry::RegistryError;

namespace {

bool contains(const std::string& haystack, std::string_view needle) {
    return haystack.find(needle) != std::string::npos;
}

} // namespace

TEST_CASE("registry::http::resolve_url") {
    struct Case {
        std::string name, base, location, expected;
    };
    const std::vector<Case> cases = {
        {"absolute location on another host", "http://127.0.0.1:5000/v2/a/blobs/uploads/",
         "https://storage.example/upload/abc?sig=1", "https://storage.example/upload/abc?sig=1"},
        {"absolute location on the same host", "http://127.0.0.1:5000/v2/a/blobs/uploads/",
         "http://127.0.0.1:5000/v2/a/blobs/uploads/u1", "http://127.0.0.1:5000/v2/a/blobs/uploads/u1"},
        {"relative path with a leading slash", "http://127.0.0.1:5000/v2/a/blobs/uploads/",
         "/v2/x/blobs/uploads/uuid?_state=abc123", "http://127.0.0.1:5000/v2/x/blobs/uploads/uuid?_state=abc123"},
        {"relative path replaces the base's path and query", "https://reg.example/v2/a/blobs/uploads/old?_state=old",
         "/v2/a/blobs/uploads/new?_state=new", "https://reg.example/v2/a/blobs/uploads/new?_state=new"},
        {"relative without a leading slash, base ending in /", "http://h.example:5000/v2/a/blobs/uploads/",
         "uuid?_state=x", "http://h.example:5000/v2/a/blobs/uploads/uuid?_state=x"},
        {"relative without a leading slash, base not ending in /", "http://h.example/v2/a/blobs/uploads", "uuid",
         "http://h.example/v2/a/blobs/uuid"},
        {"percent-encoded query is kept", "http://h.example/v2/", "/v2/a/blobs/uploads/u?_state=ab%2Bcd%3D%3D&x=1",
         "http://h.example/v2/a/blobs/uploads/u?_state=ab%2Bcd%3D%3D&x=1"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.name);
        CHECK(http::resolve_url(c.base, c.location) == c.expected);
    }
}

TEST_CASE("registry::http::origin_of") {
    struct Case {
        std::string url, origin;
    };
    const std::vector<Case> cases = {
        {"http://127.0.0.1:5000/v2/", "http://127.0.0.1:5000"},
        {"http://127.0.0.1:5000", "http://127.0.0.1:5000"},
        {"https://a.example/x", "https://a.example:443"},
        {"https://a.example", "https://a.example:443"},
        {"http://a.example/x?y=1", "http://a.example:80"},
        {"https://a.example:8443/v2/", "https://a.example:8443"},
        {"https://A.Example/x", "https://a.example:443"},
        {"https://REGISTRY.EXAMPLE:443/v2/", "https://registry.example:443"},
        {"https://user:pw@a.example/x", "https://a.example:443"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.url);
        CHECK(http::origin_of(c.url) == c.origin);
    }
    SUBCASE("same origin comparisons") {
        CHECK(http::origin_of("https://Reg.Example/v2/") == http::origin_of("https://reg.example:443/token"));
        CHECK(http::origin_of("http://reg.example/") != http::origin_of("https://reg.example/"));
        CHECK(http::origin_of("https://reg.example/") != http::origin_of("https://reg.example:5000/"));
        CHECK(http::origin_of("https://reg.example/") != http::origin_of("https://auth.example/"));
    }
}

TEST_CASE("registry::RegistryError message") {
    const std::string url = "https://reg.example/v2/library/app/manifests/latest";
    SUBCASE("an HTTP error with registry error codes") {
        RegistryError e("GET", url, 404,
                        {{"MANIFEST_UNKNOWN", "manifest unknown"}, {"NAME_UNKNOWN", "repository name not known"}}, "",
                        false);
        std::string msg = e.what();
        CAPTURE(msg);
        CHECK(msg.rfind("GET " + url, 0) == 0);
        CHECK(contains(msg, "HTTP 404"));
        CHECK(contains(msg, "MANIFEST_UNKNOWN"));
        CHECK(contains(msg, "manifest unknown"));
        CHECK(contains(msg, "NAME_UNKNOWN"));
        CHECK(contains(msg, "repository name not known"));
        CHECK(msg.find("MANIFEST_UNKNOWN") < msg.find("NAME_UNKNOWN"));
        CHECK(msg.find("HTTP 404") < msg.find("MANIFEST_UNKNOWN"));
        CHECK(e.method() == "GET");
        CHECK(e.url() == url);
        CHECK(e.status() == 404);
        REQUIRE(e.errors().size() == 2);
        CHECK(e.errors()[1].code == "NAME_UNKNOWN");
        CHECK_FALSE(e.temporary());
        CHECK(e.retry_after() == std::chrono::seconds(0));
    }
    SUBCASE("a detail is shown with the status") {
        RegistryError e("PUT", url, 400, {{"DIGEST_INVALID", ""}}, "sent 12 bytes", false);
        std::string msg = e.what();
        CAPTURE(msg);
        CHECK(contains(msg, "PUT " + url));
        CHECK(contains(msg, "HTTP 400"));
        CHECK(contains(msg, "DIGEST_INVALID"));
        CHECK(contains(msg, "sent 12 bytes"));
    }
    SUBCASE("status 0 shows the detail instead of an HTTP status") {
        RegistryError e("HEAD", url, 0, {}, "Connection refused", true);
        std::string msg = e.what();
        CAPTURE(msg);
        CHECK(contains(msg, "HEAD " + url));
        CHECK(contains(msg, "Connection refused"));
        CHECK_FALSE(contains(msg, "HTTP"));
        CHECK(e.status() == 0);
        CHECK(e.temporary());
    }
    SUBCASE("status 0 without a detail still says what happened") {
        RegistryError e("GET", url, 0, {}, "", true);
        std::string msg = e.what();
        CHECK(contains(msg, "GET " + url));
        CHECK(msg == "GET " + url + ": no answer");
    }
    SUBCASE("temporary flag and Retry-After") {
        RegistryError e("GET", url, 429, {{"TOOMANYREQUESTS", "slow down"}}, "", true, std::chrono::seconds(17));
        CHECK(e.temporary());
        CHECK(e.retry_after() == std::chrono::seconds(17));
        CHECK(contains(e.what(), "HTTP 429"));
        CHECK(contains(e.what(), "TOOMANYREQUESTS: slow down"));
    }
    SUBCASE("is an aas::Error") {
        bool caught = false;
        try {
            throw RegistryError("GET", url, 500, {}, "", true);
        } catch (const aas::Error& e) {
            caught = true;
            CHECK(contains(e.what(), "HTTP 500"));
        }
        CHECK(caught);
    }
}

TEST_CASE("registry::RegistryError::has_code") {
    RegistryError e("GET", "https://r.example/v2/a/blobs/sha256:00", 404,
                    {{"BLOB_UNKNOWN", "blob unknown to registry"}, {"NAME_UNKNOWN", ""}}, "", false);
    CHECK(e.has_code("BLOB_UNKNOWN"));
    CHECK(e.has_code("NAME_UNKNOWN"));
    CHECK_FALSE(e.has_code("MANIFEST_UNKNOWN"));
    CHECK_FALSE(e.has_code("blob_unknown"));
    CHECK_FALSE(e.has_code("BLOB"));
    CHECK_FALSE(e.has_code(""));
    RegistryError none("GET", "https://r.example/v2/", 500, {}, "", true);
    CHECK_FALSE(none.has_code("BLOB_UNKNOWN"));
}

TEST_CASE("registry::RegistryError never shows a registered secret") {
    const std::string secret = "tok-9f3a-RegistryError-secret";
    aas::log::add_secret(secret);

    SUBCASE("secret in the URL") {
        RegistryError e("GET", "https://reg.example/v2/a/blobs/uploads/u?token=" + secret + "&n=1", 401,
                        {{"UNAUTHORIZED", "authentication required"}}, "", false);
        std::string msg = e.what();
        CAPTURE(msg);
        CHECK_FALSE(contains(msg, secret));
        CHECK(contains(msg, "***"));
        CHECK(contains(msg, "HTTP 401"));
        CHECK(contains(msg, "UNAUTHORIZED"));
    }
    SUBCASE("secret as user info in the URL") {
        RegistryError e("GET", "https://bob:" + secret + "@reg.example/v2/", 0, {}, "Connection reset", true);
        std::string msg = e.what();
        CAPTURE(msg);
        CHECK_FALSE(contains(msg, secret));
        CHECK(contains(msg, "Connection reset"));
    }
    SUBCASE("secret in the detail, with and without a status") {
        for (long status : {0L, 403L}) {
            CAPTURE(status);
            RegistryError e("POST", "https://reg.example/v2/a/blobs/uploads/", status, {},
                            "sent Authorization: Bearer " + secret, true);
            std::string msg = e.what();
            CAPTURE(msg);
            CHECK_FALSE(contains(msg, secret));
            CHECK(contains(msg, "Authorization: Bearer ***"));
        }
    }
    SUBCASE("secret echoed in a registry error message") {
        RegistryError e("GET", "https://reg.example/v2/", 401, {{"DENIED", "bad token " + secret}}, "", false);
        std::string msg = e.what();
        CAPTURE(msg);
        CHECK_FALSE(contains(msg, secret));
        CHECK(contains(msg, "DENIED: bad token ***"));
    }
}

TEST_CASE("log::redact_url on user info and token parameters") {
    struct Case {
        std::string in, out;
    };
    const std::vector<Case> cases = {
        {"https://user:password@reg.example/v2/a/manifests/latest", "https://***@reg.example/v2/a/manifests/latest"},
        {"https://user:password@reg.example:5000/token?service=reg&token=abc.def.ghi&scope=repository:a:pull",
         "https://***@reg.example:5000/token?service=reg&token=***&scope=repository:a:pull"},
        {"https://auth.example/token?access_token=xyz", "https://auth.example/token?access_token=***"},
        {"https://auth.example/token?Token=xyz&password=p4ss", "https://auth.example/token?Token=***&password=***"},
        {"https://reg.example/v2/a/blobs/uploads/u?token=", "https://reg.example/v2/a/blobs/uploads/u?token=***"},
        // Only the authority holds user info: an '@' later in the URL stays.
        {"https://reg.example/v2/a@b/manifests/x?y=1", "https://reg.example/v2/a@b/manifests/x?y=1"},
        {"https://reg.example/v2/?mytoken=keep", "https://reg.example/v2/?mytoken=keep"},
        {"https://reg.example/v2/", "https://reg.example/v2/"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.in);
        CHECK(aas::log::redact_url(c.in) == c.out);
    }
}

TEST_CASE("registry::Client hands its retry notices to Options::on_warning") {
    int requests = 0;
    aas::testing::HttpServer server([&](const aas::testing::HttpServer::Request& req) {
        aas::testing::HttpServer::Response resp;
        if (req.target == "/v2/" && requests++ == 0) resp.status = 503; // once: a temporary failure
        return resp;
    });
    aas::registry::Options options;
    options.plain_http = true;
    options.max_attempts = 3;
    options.base_delay = std::chrono::milliseconds(1);
    std::mutex mu;
    std::vector<std::string> warnings;
    options.on_warning = [&](const std::string& text) {
        std::lock_guard lock(mu);
        warnings.push_back(text);
    };
    aas::registry::Client client(server.host(), options);
    client.ping();
    CHECK(requests == 2);
    REQUIRE(warnings.size() == 1);
    CAPTURE(warnings[0]);
    CHECK(contains(warnings[0], "contacting " + server.host()));
    CHECK(contains(warnings[0], "503"));
    CHECK(contains(warnings[0], "(retry 1 of 2 in "));
}

namespace {

// A registry on 127.0.0.1 (over aas::testing::HttpServer) that holds blobs by repository,
// answers HEAD, cross-repository mounts and monolithic-or-chunked uploads, and records
// every request ("METHOD PATH").
class FakeRegistry {
public:
    FakeRegistry() : server_([this](const Request& req) { return respond(req.method, req.target); }) {}

    std::string host() const { return server_.host(); }
    void hold(const std::string& repo, const std::string& digest) {
        std::lock_guard lock(mu_);
        blobs_.emplace(repo, digest);
    }
    bool holds(const std::string& repo, const std::string& digest) {
        std::lock_guard lock(mu_);
        return blobs_.count({repo, digest}) > 0;
    }
    std::size_t count(std::string_view method) {
        std::lock_guard lock(mu_);
        std::size_t n = 0;
        for (const auto& r : requests_) n += r.rfind(std::string(method) + " ", 0) == 0;
        return n;
    }

private:
    using Request = aas::testing::HttpServer::Request;
    using Response = aas::testing::HttpServer::Response;

    static Response reply(int status, const std::string& location = {}) {
        Response r;
        r.status = status;
        if (!location.empty()) r.headers.emplace_back("Location", location);
        return r;
    }

    static std::string param(const std::string& target, const std::string& name) {
        auto at = target.find(name + "=");
        if (at == std::string::npos) return {};
        auto from = at + name.size() + 1;
        std::string v = target.substr(from, target.find('&', from) - from);
        for (std::size_t i; (i = v.find("%3A")) != std::string::npos;) v.replace(i, 3, ":");
        for (std::size_t i; (i = v.find("%2F")) != std::string::npos;) v.replace(i, 3, "/");
        return v;
    }

    // /v2/REPO/blobs/DIGEST, /v2/REPO/blobs/uploads/..., with REPO one or more path parts.
    Response respond(const std::string& method, const std::string& target) {
        std::lock_guard lock(mu_);
        requests_.push_back(method + " " + target);
        if (target == "/v2/") return reply(200);
        auto blobs = target.find("/blobs/");
        std::string repo = target.substr(4, blobs - 4);
        std::string rest = target.substr(blobs + 7);
        if (method == "HEAD") return reply(blobs_.count({repo, rest}) ? 200 : 404);
        std::string upload = "/v2/" + repo + "/blobs/uploads/session";
        if (method == "POST") {
            std::string mount = param(rest, "mount");
            if (!mount.empty() && blobs_.count({param(rest, "from"), mount})) {
                blobs_.emplace(repo, mount);
                return reply(201);
            }
            return reply(202, upload);
        }
        if (method == "PATCH") return reply(202, upload);
        if (method == "PUT") {
            blobs_.emplace(repo, param(rest, "digest"));
            return reply(201);
        }
        return reply(method == "DELETE" ? 204 : 405);
    }

    std::mutex mu_;
    std::set<std::pair<std::string, std::string>> blobs_;
    std::vector<std::string> requests_;
    aas::testing::HttpServer server_; ///< last: stopped before the state it answers from goes
};

struct StringSource : aas::registry::BlobSource {
    std::string bytes;
    explicit StringSource(std::string b) : bytes(std::move(b)) {}
    std::uint64_t size() const override { return bytes.size(); }
    std::size_t read_at(void* out, std::size_t n, std::uint64_t offset) const override {
        if (offset >= bytes.size()) return 0;
        n = std::min<std::size_t>(n, bytes.size() - offset);
        std::memcpy(out, bytes.data() + offset, n);
        return n;
    }
};

aas::registry::Client fake_client(const FakeRegistry& reg) {
    aas::registry::Options o;
    o.plain_http = true;
    o.max_attempts = 1;
    return aas::registry::Client(reg.host(), o);
}

} // namespace

TEST_CASE("registry::Client::push_blob of a blob the registry lacks: one HEAD, then the upload") {
    using aas::registry::PushOutcome;
    FakeRegistry reg;
    auto client = fake_client(reg);
    StringSource src("layer bytes");
    aas::oci::Descriptor blob{"application/octet-stream",
                              aas::oci::Digest::of(src.bytes),
                              static_cast<std::int64_t>(src.bytes.size()),
                              {},
                              {},
                              {}};
    CHECK(client.push_blob("team/app", blob, src) == PushOutcome::uploaded);
    CHECK(reg.count("HEAD") == 1);
    CHECK(reg.count("POST") == 1);
    CHECK(reg.count("PUT") == 1);
    CHECK(reg.holds("team/app", blob.digest.str()));
    // Pushed again: the HEAD finds it, nothing else is sent.
    CHECK(client.push_blob("team/app", blob, src) == PushOutcome::skipped);
    CHECK(reg.count("HEAD") == 2);
    CHECK(reg.count("POST") == 1);
}

TEST_CASE("registry::Client::place_blob") {
    using aas::registry::PushOutcome;
    FakeRegistry reg;
    auto client = fake_client(reg);
    aas::oci::Descriptor blob{"application/octet-stream", aas::oci::Digest::of("base layer"), 10, {}, {}, {}};
    reg.hold("team/base", blob.digest.str());

    SUBCASE("mounts from the repository of mount_from that holds it") {
        CHECK(client.place_blob("team/app", blob, {"team/other", "team/base"}) == PushOutcome::mounted);
        CHECK(reg.holds("team/app", blob.digest.str()));
        CHECK(reg.count("HEAD") == 1);
        CHECK(reg.count("POST") == 2);   // the mount from team/other opened an upload ...
        CHECK(reg.count("DELETE") == 1); // ... which was cancelled
        CHECK(reg.count("PUT") == 0);
    }
    SUBCASE("skips a blob the repository holds, with one HEAD and no mount") {
        CHECK(client.place_blob("team/base", blob, {"team/other"}) == PushOutcome::skipped);
        CHECK(reg.count("HEAD") == 1);
        CHECK(reg.count("POST") == 0);
    }
    SUBCASE("nullopt when no repository holds it: the bytes must be uploaded") {
        CHECK(client.place_blob("team/app", blob, {"team/other"}) == std::nullopt);
        CHECK(reg.count("HEAD") == 1);
        CHECK_FALSE(reg.holds("team/app", blob.digest.str()));
    }
}
