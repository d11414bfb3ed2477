#include "aas_bundle/util/error.hpp"
#include "aas_bundle/util/strings.hpp"

#include <doctest/doctest.h>

using namespace aas::util;

TEST_CASE("util::split keeps empty fields") {
    CHECK(split("a,,b", ',') == std::vector<std::string>{"a", "", "b"});
    CHECK(split("", ',') == std::vector<std::string>{""});
}

TEST_CASE("util::trim") {
    CHECK(trim("  x y\t\r\n") == "x y");
    CHECK(trim("") == "");
}

TEST_CASE("util::parse_u64") {
    CHECK(parse_u64("0") == 0u);
    CHECK(parse_u64("18446744073709551615") == 18446744073709551615ull);
    CHECK_FALSE(parse_u64("18446744073709551616"));
    CHECK_FALSE(parse_u64("12a"));
    CHECK_FALSE(parse_u64(""));
    CHECK_FALSE(parse_u64("-1"));
}

TEST_CASE("util::edit_distance") {
    CHECK(edit_distance("copy", "cpy") == 1);
    CHECK(edit_distance("", "abc") == 3);
    CHECK(edit_distance("kitten", "sitting") == 3);
}

TEST_CASE("util::human_bytes") {
    CHECK(human_bytes(0) == "0 B");
    CHECK(human_bytes(1536) == "1.5 KiB");
    CHECK(human_bytes(3ull << 30) == "3.0 GiB");
}

TEST_CASE("util::url_encode") {
    CHECK(url_encode("repository:a/b:pull,push") == "repository%3Aa%2Fb%3Apull%2Cpush");
    CHECK(url_encode("AZaz09-_.~") == "AZaz09-_.~");
}

TEST_CASE("util::json_too_deep counts nesting outside strings") {
    CHECK_FALSE(aas::util::json_too_deep(R"({"a":[1,{"b":[]}]})", 4));
    CHECK(aas::util::json_too_deep(R"({"a":[1,{"b":[]}]})", 3) == std::optional<std::size_t>(13));
    CHECK(aas::util::json_too_deep(R"({"a":[1,{"b":[]}]})", 2) == std::optional<std::size_t>(8));
    CHECK_FALSE(aas::util::json_too_deep(R"({"s":"[[[[[[\"[[[["})", 1)); // brackets inside strings
    CHECK(aas::util::json_too_deep(std::string(100000, '['), 64) == std::optional<std::size_t>(64));
}

TEST_CASE("util::json_too_deep: brackets and escaped quotes inside strings do not count") {
    // Closing brackets in a string do not lower the depth: the third "[" is at byte 9.
    CHECK(json_too_deep(R"([["]]]]",[1]]])", 2) == std::optional<std::size_t>(9));
    CHECK_FALSE(json_too_deep(R"([["]]]]",[1]]])", 3));
    // An escaped quote does not end the string; an escaped backslash before a quote does.
    CHECK_FALSE(json_too_deep(R"(["a\"[[[{{{", "b"])", 1));
    CHECK(json_too_deep(R"(["\\", [[]]])", 2) == std::optional<std::size_t>(8));
    CHECK_FALSE(json_too_deep(R"(["\\", [[]]])", 3));
    // Keys are strings too.
    CHECK(json_too_deep(R"({"[[[":{"]]]":1}})", 1) == std::optional<std::size_t>(7));
    CHECK_FALSE(json_too_deep(R"({"[[[":{"]]]":1}})", 2));
}

TEST_CASE("util::json_depth_problem and refuse_deep_json name the limit and the byte") {
    CHECK(json_depth_problem("[[1]]", 1) == std::optional<std::string>("nested more than 1 levels deep at byte 1"));
    CHECK_FALSE(json_depth_problem("[[1]]", 2));
    CHECK_FALSE(json_depth_problem(R"(["[[", "\"])", 1));
    CHECK_THROWS_WITH_AS(refuse_deep_json(R"({"a":[{"b":[]}]})", 3, "inventory.json"),
                         "inventory.json: nested more than 3 levels deep at byte 11; refused", aas::Error);
    CHECK_NOTHROW(refuse_deep_json(R"({"a":[{"b":[]}]})", 4, "inventory.json"));
}

TEST_CASE("util::escape_control") {
    CHECK_FALSE(aas::util::has_control("1.0.0 plain"));
    CHECK(aas::util::has_control("1.0.0\ntouch /tmp/x"));
    CHECK(aas::util::has_control(std::string("a\0b", 3)));
    CHECK(aas::util::escape_control("1.0.0\ntouch\t\x1b[31m\\") == "1.0.0\\ntouch\\t\\x1b[31m\\\\");
}

TEST_CASE("util: Kubernetes and Helm name rules") {
    using aas::util::dns1123_label_problem;
    using aas::util::helm_release_name_problem;
    CHECK(dns1123_label_problem("ai-appstore").empty());
    CHECK(dns1123_label_problem("a1").empty());
    CHECK_FALSE(dns1123_label_problem("").empty());
    CHECK(dns1123_label_problem("Upper").find("'U'") != std::string::npos);
    CHECK_FALSE(dns1123_label_problem("-x").empty());
    CHECK_FALSE(dns1123_label_problem("a.b").empty());
    CHECK_FALSE(dns1123_label_problem(std::string(64, 'a')).empty());
    CHECK(dns1123_label_problem("x\ny").find("control") != std::string::npos);
    CHECK(helm_release_name_problem("mongodb").empty());
    CHECK(helm_release_name_problem("my.release-1").empty());
    CHECK_FALSE(helm_release_name_problem("x'; touch /tmp/p; '").empty());
    CHECK_FALSE(helm_release_name_problem("a..b").empty());
    CHECK_FALSE(helm_release_name_problem(std::string(54, 'a')).empty());
}

TEST_CASE("util::base64 RFC 4648 section 10 test vectors") {
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
    };
    for (const auto& c : cases) {
        CAPTURE(c.encoded);
        CHECK(base64_encode(c.plain) == c.encoded);
        for (auto alphabet : {Base64Alphabet::standard, Base64Alphabet::standard_or_url_safe}) {
            auto decoded = base64_decode(c.encoded, alphabet);
            REQUIRE(decoded.has_value());
            CHECK(*decoded == c.plain);
        }
    }
    CHECK(base64_encode("\xfb\xff") == "+/8=");
}

TEST_CASE("util::base64_decode: the alphabets, padding and a lone last character") {
    CHECK(base64_decode("-_8") == std::string("\xfb\xff"));
    CHECK(base64_decode("+/8", Base64Alphabet::standard) == std::string("\xfb\xff"));
    CHECK_FALSE(base64_decode("-_8", Base64Alphabet::standard));
    CHECK(base64_decode("Zm9vYg") == std::string("foob"));
    CHECK_FALSE(base64_decode("Zm=9v"));
    CHECK_FALSE(base64_decode("Zm9vY"));
    CHECK(base64_decode("Zm9vY", Base64Alphabet::standard, true) == std::string("foo"));
    CHECK_FALSE(base64_decode("Zm9v!", Base64Alphabet::standard, true));
    CHECK_FALSE(base64_decode(std::string_view("Zm9\0", 4)));
}
