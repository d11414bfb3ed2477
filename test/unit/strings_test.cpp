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
