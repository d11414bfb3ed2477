#include "aas_bundle/auth/auth.hpp"

#include "aas_bundle/util/error.hpp"
#include "aas_bundle/util/log.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

using namespace aas::auth;
namespace fs = std::filesystem;

namespace {

/// A fresh directory under the system temp dir, removed with everything in it.
class TempDir {
public:
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "aas-auth-test-XXXXXX").string();
        char* made = ::mkdtemp(tmpl.data());
        REQUIRE(made != nullptr);
        path_ = made;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const fs::path& path() const { return path_; }

    fs::path write(const fs::path& relative, const std::string& text) const {
        fs::path p = path_ / relative;
        fs::create_directories(p.parent_path());
        std::ofstream out(p, std::ios::binary);
        out << text;
        out.close();
        REQUIRE(out.good());
        return p;
    }

private:
    fs::path path_;
};

/// Sets an environment variable for the scope and restores its previous value (or absence).
class EnvGuard {
public:
    EnvGuard(const char* name, const std::optional<std::string>& value) : name_(name) {
        if (const char* old = std::getenv(name)) old_ = old;
        if (value)
            ::setenv(name, value->c_str(), 1);
        else
            ::unsetenv(name);
    }
    ~EnvGuard() {
        if (old_)
            ::setenv(name_.c_str(), old_->c_str(), 1);
        else
            ::unsetenv(name_.c_str());
    }
    EnvGuard(const EnvGuard&) = delete;
    EnvGuard& operator=(const EnvGuard&) = delete;

private:
    std::string name_;
    std::optional<std::string> old_;
};

std::string load_error(const fs::path& p) {
    try {
        (void)DockerConfig::load(p);
    } catch (const aas::Error& e) {
        return e.what();
    }
    return "<no error>";
}

bool contains(const std::string& haystack, std::string_view needle) {
    return haystack.find(needle) != std::string::npos;
}

} // namespace

TEST_CASE("auth::base64 RFC 4648 test vectors") {
    struct Case {
        std::string plain, encoded;
    };
    const std::vector<Case> cases = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
        {"user:password", "dXNlcjpwYXNzd29yZA=="},
        {std::string("\0\x01\x02", 3), "AAEC"},
        {"\xfb\xff", "+/8="},
    };
    for (const auto& c : cases) {
        CAPTURE(c.encoded);
        CHECK(base64_encode(c.plain) == c.encoded);
        auto decoded = base64_decode(c.encoded);
        REQUIRE(decoded.has_value());
        CHECK(*decoded == c.plain);
    }
}

TEST_CASE("auth::base64 round-trips every byte value and length") {
    std::string all;
    for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
    for (std::size_t len = 0; len <= all.size(); len += 1) {
        std::string part = all.substr(all.size() - len);
        std::string enc = base64_encode(part);
        CHECK(enc.size() == (len + 2) / 3 * 4);
        auto dec = base64_decode(enc);
        REQUIRE(dec.has_value());
        CHECK(*dec == part);
    }
}

TEST_CASE("auth::base64_decode accepts URL-safe input and missing padding") {
    struct Case {
        std::string encoded, plain;
    };
    const std::vector<Case> cases = {
        {"-_8", "\xfb\xff"},
        {"-_8=", "\xfb\xff"},
        {"_-__", "\xff\xef\xff"},
        {"Zg", "f"},
        {"Zm8", "fo"},
        {"Zm9vYg", "foob"},
        {"dXNlcjpwYXNzd29yZA", "user:password"},
        {"Pz8_", "???"},
        {"Pz8/", "???"},
        {"Pj4-", ">>>"},
        {"Pj4+", ">>>"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.encoded);
        auto d = base64_decode(c.encoded);
        REQUIRE(d.has_value());
        CHECK(*d == c.plain);
    }
}

TEST_CASE("auth::base64_decode refuses invalid input") {
    for (std::string bad : {"Z", "Z===", "Zm9vY", "Zm9v!", "Zm 9v", "Zm9v\n", "Zm=9v", "Zm9v.", "é", "%%%%"}) {
        CAPTURE(bad);
        CHECK_FALSE(base64_decode(bad).has_value());
    }
}

TEST_CASE("auth::basic_authorization") {
    // RFC 7617 section 2 example.
    CHECK(basic_authorization({"Aladdin", "open sesame"}) == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    CHECK(basic_authorization({"user", "pass"}) == "Basic dXNlcjpwYXNz");
    // A colon in the password is kept; the username ends at the first colon.
    CHECK(basic_authorization({"u", "a:b"}) == "Basic " + base64_encode("u:a:b"));
    CHECK(basic_authorization({"", ""}) == "Basic Og==");
}

TEST_CASE("auth::parse_www_authenticate") {
    SUBCASE("Bearer with realm, service and a scope holding commas") {
        auto cs = parse_www_authenticate(
            R"(Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push")");
        REQUIRE(cs.size() == 1);
        CHECK(cs[0].scheme == "bearer");
        CHECK(cs[0].params.size() == 3);
        CHECK(cs[0].params.at("realm") == "https://auth.example/token");
        CHECK(cs[0].params.at("service") == "registry.example");
        CHECK(cs[0].params.at("scope") == "repository:a/b:pull,push");
    }
    SUBCASE("Basic with a realm containing a space") {
        auto cs = parse_www_authenticate(R"(Basic realm="Registry Realm")");
        REQUIRE(cs.size() == 1);
        CHECK(cs[0].scheme == "basic");
        CHECK(cs[0].params == std::map<std::string, std::string>{{"realm", "Registry Realm"}});
    }
    SUBCASE("several challenges in one header, in order") {
        auto cs = parse_www_authenticate(
            R"(Basic realm="r1", Bearer realm="https://a.example/t",service="s", Negotiate, Digest realm="d", nonce="n1")");
        REQUIRE(cs.size() == 4);
        CHECK(cs[0].scheme == "basic");
        CHECK(cs[0].params == std::map<std::string, std::string>{{"realm", "r1"}});
        CHECK(cs[1].scheme == "bearer");
        CHECK(cs[1].params == std::map<std::string, std::string>{{"realm", "https://a.example/t"}, {"service", "s"}});
        CHECK(cs[2].scheme == "negotiate");
        CHECK(cs[2].params.empty());
        CHECK(cs[3].scheme == "digest");
        CHECK(cs[3].params == std::map<std::string, std::string>{{"realm", "d"}, {"nonce", "n1"}});
    }
    SUBCASE("quoted strings with escaped quotes, backslashes and commas") {
        auto cs = parse_www_authenticate(
            R"(Bearer realm="a \"quoted\" realm, with comma",service="back\\slash",scope="repository:x:pull,push")");
        REQUIRE(cs.size() == 1);
        CHECK(cs[0].params.at("realm") == R"(a "quoted" realm, with comma)");
        CHECK(cs[0].params.at("service") == R"(back\slash)");
        CHECK(cs[0].params.at("scope") == "repository:x:pull,push");
    }
    SUBCASE("scheme and keys are lower-cased, values are not") {
        auto cs = parse_www_authenticate(R"(BEARER Realm="https://Auth.Example/Token",SERVICE="Registry.Example")");
        REQUIRE(cs.size() == 1);
        CHECK(cs[0].scheme == "bearer");
        CHECK(cs[0].params.count("realm") == 1);
        CHECK(cs[0].params.count("Realm") == 0);
        CHECK(cs[0].params.at("realm") == "https://Auth.Example/Token");
        CHECK(cs[0].params.at("service") == "Registry.Example");
    }
    SUBCASE("error=\"insufficient_scope\"") {
        auto cs = parse_www_authenticate(
            R"(Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push",error="insufficient_scope")");
        REQUIRE(cs.size() == 1);
        CHECK(cs[0].params.at("error") == "insufficient_scope");
        CHECK(cs[0].params.at("scope") == "repository:a/b:pull,push");
        CHECK(cs[0].params.size() == 4);
    }
    SUBCASE("unquoted values and white space around separators") {
        auto cs = parse_www_authenticate("Bearer  realm = https://auth.example/token ,\tservice=reg , scope=\"x\"");
        REQUIRE(cs.size() == 1);
        CHECK(cs[0].params.at("realm") == "https://auth.example/token");
        CHECK(cs[0].params.at("service") == "reg");
        CHECK(cs[0].params.at("scope") == "x");
    }
    SUBCASE("empty values") {
        auto cs = parse_www_authenticate(R"(Bearer realm="",service=)");
        REQUIRE(cs.size() == 1);
        CHECK(cs[0].params.at("realm").empty());
        CHECK(cs[0].params.at("service").empty());
    }
    SUBCASE("empty or blank header") {
        CHECK(parse_www_authenticate("").empty());
        CHECK(parse_www_authenticate("   ").empty());
        CHECK(parse_www_authenticate(" , ,").empty());
    }
}

TEST_CASE("auth::Scopes merge actions per resource") {
    SUBCASE("pull + push gives pull,push") {
        Scopes s;
        CHECK(s.empty());
        s.add("repository:a/b:pull");
        s.add("repository:a/b:push");
        CHECK_FALSE(s.empty());
        CHECK(s.strings() == std::vector<std::string>{"repository:a/b:pull,push"});
    }
    SUBCASE("actions are sorted and deduplicated") {
        Scopes s;
        s.add("repository:a/b:push,pull");
        s.add("repository:a/b:pull");
        s.add("repository:a/b:push,,pull");
        CHECK(s.strings() == std::vector<std::string>{"repository:a/b:pull,push"});
        s.add("repository:a/b:delete");
        CHECK(s.strings() == std::vector<std::string>{"repository:a/b:delete,pull,push"});
    }
    SUBCASE("add_repository builds repository scopes") {
        Scopes s;
        s.add_repository("library/busybox", "pull");
        s.add_repository("library/busybox", "push");
        CHECK(s.strings() == std::vector<std::string>{"repository:library/busybox:pull,push"});
    }
    SUBCASE("a registry port inside the name: actions follow the last colon") {
        Scopes s;
        s.add("repository:localhost:5000/team/app:pull");
        s.add_repository("localhost:5000/team/app", "push");
        CHECK(s.strings() == std::vector<std::string>{"repository:localhost:5000/team/app:pull,push"});
        Scopes other;
        other.add("repository:localhost:5000/team/app:push");
        CHECK(s.covers(other));
        // A different port is a different resource.
        Scopes port5001;
        port5001.add("repository:localhost:5001/team/app:pull");
        CHECK_FALSE(s.covers(port5001));
    }
    SUBCASE("several space-separated scopes in one string, output sorted") {
        Scopes s;
        s.add("repository:zeta/app:pull  repository:alpha/app:push repository:alpha/app:pull");
        s.add("registry:catalog:*");
        CHECK(s.strings() == std::vector<std::string>{"registry:catalog:*", "repository:alpha/app:pull,push",
                                                      "repository:zeta/app:pull"});
    }
    SUBCASE("malformed scope strings are ignored") {
        Scopes s;
        s.add("");
        s.add("repository");
        s.add("repository:a");
        s.add("   ");
        CHECK(s.empty());
        CHECK(s.strings().empty());
    }
}

TEST_CASE("auth::Scopes::covers") {
    Scopes held;
    held.add("repository:a/b:pull,push repository:c/d:pull");
    struct Case {
        std::string wanted;
        bool covered;
    };
    const std::vector<Case> cases = {
        {"repository:a/b:pull", true},
        {"repository:a/b:push", true},
        {"repository:a/b:push,pull", true},
        {"repository:a/b:pull repository:c/d:pull", true},
        {"repository:a/b:delete", false},
        {"repository:a/b:pull,delete", false},
        {"repository:c/d:push", false},
        {"repository:e/f:pull", false},
        {"repository:a/b:pull repository:e/f:pull", false},
        {"registry:catalog:*", false},
        {"", true}, // nothing wanted
    };
    for (const auto& c : cases) {
        CAPTURE(c.wanted);
        Scopes w;
        w.add(c.wanted);
        CHECK(held.covers(w) == c.covered);
    }
    SUBCASE("an empty set covers only the empty set") {
        Scopes none;
        CHECK(none.covers(Scopes{}));
        CHECK_FALSE(none.covers(held));
        CHECK(held.covers(held));
    }
}

TEST_CASE("auth::Scopes::key is canonical") {
    Scopes a;
    a.add("repository:x/y:push");
    a.add("repository:a/b:pull");
    a.add("repository:x/y:pull");
    Scopes b;
    b.add("repository:x/y:pull,push repository:a/b:pull");
    CHECK(a.key() == b.key());
    CHECK(a.strings() == b.strings());
    CHECK(contains(a.key(), "repository:a/b:pull"));
    CHECK(contains(a.key(), "repository:x/y:pull,push"));
    CHECK(a.key().find("repository:a/b:pull") < a.key().find("repository:x/y:pull,push"));

    Scopes c;
    c.add("repository:x/y:pull repository:a/b:pull");
    CHECK(c.key() != a.key());
    CHECK(Scopes{}.key() != a.key());
}

TEST_CASE("auth::DockerConfig::load reads auths entries") {
    TempDir dir;
    const std::string hub_pass = "hub-Pa55-8e1f0c7a";
    const std::string local_pass = "local-Pa55-77ab12";
    const std::string colon_pass = "with:colon-Pa55-9d";
    const std::string text = R"({
  "auths": {
    "https://index.docker.io/v1/": {"auth": ")" +
                             base64_encode("hubuser:" + hub_pass) + R"("},
    "http://127.0.0.1:5000": {"username": "localuser", "password": ")" +
                             local_pass + R"("},
    "Registry.Example.COM": {"auth": ")" +
                             base64_encode("cuser:" + colon_pass) + R"(", "email": "x@example"},
    "empty.example": {},
    "blank-auth.example": {"auth": "", "username": "bu", "password": "bp-Pa55-0101"}
  },
  "HttpHeaders": {"User-Agent": "x"}
})";
    fs::path file = dir.write("config.json", text);
    DockerConfig cfg = DockerConfig::load(file);
    std::vector<std::string> warnings; // no credential helper: none expected

    SUBCASE("Docker Hub under https://index.docker.io/v1/") {
        for (auto name : {"docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/"}) {
            CAPTURE(name);
            auto c = cfg.find(name, warnings);
            REQUIRE(c.has_value());
            CHECK(c->username == "hubuser");
            CHECK(c->password == hub_pass);
        }
    }
    SUBCASE("scheme and port in the key, username + password") {
        auto c = cfg.find("127.0.0.1:5000", warnings);
        REQUIRE(c.has_value());
        CHECK(c->username == "localuser");
        CHECK(c->password == local_pass);
        CHECK_FALSE(cfg.find("127.0.0.1", warnings).has_value());
        CHECK_FALSE(cfg.find("127.0.0.1:5001", warnings).has_value());
    }
    SUBCASE("auth splits at the first colon; host names are case-insensitive") {
        auto c = cfg.find("registry.example.com", warnings);
        REQUIRE(c.has_value());
        CHECK(c->username == "cuser");
        CHECK(c->password == colon_pass);
        CHECK(cfg.find("REGISTRY.example.com", warnings).has_value());
    }
    SUBCASE("an empty auth falls back to username + password") {
        auto c = cfg.find("blank-auth.example", warnings);
        REQUIRE(c.has_value());
        CHECK(c->username == "bu");
        CHECK(c->password == "bp-Pa55-0101");
    }
    SUBCASE("missing registries and entries without credentials") {
        CHECK_FALSE(cfg.find("missing.example", warnings).has_value());
        CHECK_FALSE(cfg.find("empty.example", warnings).has_value());
        CHECK_FALSE(cfg.find("", warnings).has_value());
        CHECK(cfg.entries().size() == 4);
        CHECK(warnings.empty());
    }
    SUBCASE("passwords are registered as secrets") {
        CHECK(aas::log::redact_secrets("a " + hub_pass + " b") == "a *** b");
        CHECK(aas::log::redact_secrets(local_pass) == "***");
        CHECK(aas::log::redact_secrets(colon_pass) == "***");
    }
}

TEST_CASE("auth::DockerConfig::load normalises keys with a path") {
    TempDir dir;
    fs::path file =
        dir.write("cfg.json", R"({"auths": {"127.0.0.1:5000/v2/": {"username": "u", "password": "pw-Pa55-4242"}}})");
    DockerConfig cfg = DockerConfig::load(file);
    std::vector<std::string> warnings;
    auto c = cfg.find("127.0.0.1:5000", warnings);
    REQUIRE(c.has_value());
    CHECK(c->username == "u");
    CHECK(c->password == "pw-Pa55-4242");
    // A lookup key is normalised the same way as the file's keys.
    CHECK(cfg.find("http://127.0.0.1:5000/v2/", warnings).has_value());
    CHECK_FALSE(cfg.find("docker.io", warnings).has_value());
    CHECK(warnings.empty());
}

TEST_CASE("auth::DockerConfig::load without auths, or with credential helpers only") {
    TempDir dir;
    CHECK(DockerConfig::load(dir.write("a.json", "{}")).entries().empty());
    DockerConfig helpers = DockerConfig::load(dir.write(
        "b.json",
        R"({"credsStore": "desktop", "auths": {"r.example": {"username": "x", "password": "hp-Pa55-3131"}}})"));
    EnvGuard path("PATH", dir.path().string()); // no docker-credential-desktop on it
    std::vector<std::string> warnings;
    auto c = helpers.find("r.example", warnings);
    REQUIRE(c.has_value());
    CHECK(c->username == "x");
    // The helper that is not installed is a warning handed back, not printed.
    REQUIRE(warnings.size() == 1);
    CHECK(contains(warnings[0], "docker-credential-desktop"));
    CHECK(contains(warnings[0], "using the auths entries"));
}

TEST_CASE("auth::DockerConfig::load errors name the file") {
    TempDir dir;
    struct Case {
        std::string name;
        std::string text;
        std::vector<std::string> fragments;
    };
    const std::vector<Case> cases = {
        {"invalid JSON", R"({"auths": {)", {"invalid JSON"}},
        {"not an object", R"([1, 2])", {"not a JSON object"}},
        {"auths not an object", R"({"auths": []})", {"\"auths\" is not an object"}},
        {"auth that is not base64",
         R"({"auths": {"r.example": {"auth": "!!!not base64!!!"}}})",
         {"auths[\"r.example\"].auth", "not base64"}},
        {"auth without a colon",
         R"({"auths": {"r.example": {"auth": ")" + base64_encode("justauser") + R"("}}})",
         {"auths[\"r.example\"].auth", "user:password"}},
    };
    int n = 0;
    for (const auto& c : cases) {
        CAPTURE(c.name);
        fs::path file = dir.write("config-" + std::to_string(n++) + ".json", c.text);
        CHECK_THROWS_AS((void)DockerConfig::load(file), aas::Error);
        std::string msg = load_error(file);
        CAPTURE(msg);
        CHECK(contains(msg, file.string()));
        for (const auto& f : c.fragments) {
            CAPTURE(f);
            CHECK(contains(msg, f));
        }
    }
    SUBCASE("a missing file") {
        fs::path missing = dir.path() / "does-not-exist.json";
        CHECK_THROWS_AS((void)DockerConfig::load(missing), aas::Error);
        CHECK(contains(load_error(missing), missing.string()));
    }
}

TEST_CASE("auth::DockerConfig::load_default honours $DOCKER_CONFIG, then $HOME") {
    TempDir dir;
    dir.write("dc/config.json", R"({"auths": {"dc.example": {"username": "dcuser", "password": "dc-Pa55-5151"}}})");
    dir.write("home/.docker/config.json",
              R"({"auths": {"home.example": {"username": "homeuser", "password": "home-Pa55-6161"}}})");

    SUBCASE("$DOCKER_CONFIG") {
        EnvGuard dc("DOCKER_CONFIG", (dir.path() / "dc").string());
        EnvGuard home("HOME", (dir.path() / "home").string());
        DockerConfig cfg = DockerConfig::load_default();
        std::vector<std::string> warnings;
        auto c = cfg.find("dc.example", warnings);
        REQUIRE(c.has_value());
        CHECK(c->username == "dcuser");
        CHECK_FALSE(cfg.find("home.example", warnings).has_value());
    }
    SUBCASE("$DOCKER_CONFIG without a config.json gives an empty config") {
        EnvGuard dc("DOCKER_CONFIG", (dir.path() / "nothing-here").string());
        EnvGuard home("HOME", (dir.path() / "home").string());
        CHECK(DockerConfig::load_default().entries().empty());
    }
    SUBCASE("~/.docker/config.json when $DOCKER_CONFIG is unset or empty") {
        EnvGuard home("HOME", (dir.path() / "home").string());
        for (std::optional<std::string> dc_value : {std::optional<std::string>{}, std::optional<std::string>{""}}) {
            EnvGuard dc("DOCKER_CONFIG", dc_value);
            DockerConfig cfg = DockerConfig::load_default();
            std::vector<std::string> warnings;
            auto c = cfg.find("home.example", warnings);
            REQUIRE(c.has_value());
            CHECK(c->username == "homeuser");
        }
    }
}

TEST_CASE("auth::Scopes ignores a scope without actions") {
    aas::auth::Scopes s;
    s.add("repository:a:");
    CHECK(s.empty());
    CHECK(s.strings().empty());
}

TEST_CASE("auth::parse_www_authenticate stops unquoted values at a tab") {
    auto c = aas::auth::parse_www_authenticate("Bearer realm=\"x\",\tservice=a\tscope=b");
    REQUIRE(c.size() == 1);
    CHECK(c[0].params["service"] == "a");
    CHECK(c[0].params["scope"] == "b");
}
