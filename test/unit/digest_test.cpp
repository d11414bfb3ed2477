#include "aas_bundle/oci/digest.hpp"

#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

using aas::oci::Algorithm;
using aas::oci::Digest;
using aas::oci::Hasher;

namespace {

// Well-known test vectors (FIPS 180-2 / NIST examples).
const std::string sha256_empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const std::string sha256_abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const std::string sha256_fox = "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592";
const std::string sha256_million_a = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
const std::string sha512_empty = "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
                                 "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e";
const std::string sha512_abc = "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                               "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";
const std::string fox = "The quick brown fox jumps over the lazy dog";

std::string error_of(std::string_view input) {
    try {
        (void)Digest::parse(input);
    } catch (const aas::Error& e) {
        return e.what();
    }
    return "<no error>";
}

} // namespace

TEST_CASE("oci::Digest parses valid sha256 and sha512 digests") {
    struct Case {
        std::string input;
        Algorithm alg;
        std::string hex;
    };
    const std::vector<Case> cases = {
        {"sha256:" + sha256_abc, Algorithm::sha256, sha256_abc},
        {"sha256:" + sha256_empty, Algorithm::sha256, sha256_empty},
        {"sha256:" + std::string(64, '0'), Algorithm::sha256, std::string(64, '0')},
        {"sha256:" + std::string(64, 'f'), Algorithm::sha256, std::string(64, 'f')},
        {"sha512:" + sha512_abc, Algorithm::sha512, sha512_abc},
        {"sha512:" + sha512_empty, Algorithm::sha512, sha512_empty},
    };
    for (const auto& c : cases) {
        CAPTURE(c.input);
        Digest d = Digest::parse(c.input);
        CHECK(d.algorithm() == c.alg);
        CHECK(d.hex() == c.hex);
        CHECK(d.str() == c.input);
        CHECK_FALSE(d.empty());
        // str() parses back to an equal digest.
        CHECK(Digest::parse(d.str()) == d);
    }
}

TEST_CASE("oci::Digest refuses malformed digests with a message naming the input and the reason") {
    struct Case {
        std::string input;
        std::string reason; // a fragment the message must contain
    };
    const std::vector<Case> cases = {
        // Wrong length.
        {"sha256:" + sha256_abc.substr(0, 63), "64 hex digits"},
        {"sha256:" + sha256_abc + "0", "64 hex digits"},
        {"sha256:", "64 hex digits"},
        {"sha512:" + sha256_abc, "128 hex digits"},
        {"sha512:" + sha512_abc.substr(1), "128 hex digits"},
        // Upper-case or non-hex characters.
        {"sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", "lower-case hex"},
        {"sha256:" + sha256_abc.substr(0, 63) + "A", "lower-case hex"},
        {"sha256:" + sha256_abc.substr(0, 63) + "g", "lower-case hex"},
        {"sha256:" + sha256_abc.substr(0, 32) + " " + sha256_abc.substr(33), "lower-case hex"},
        // Unknown or differently spelt algorithm.
        {"md5:d41d8cd98f00b204e9800998ecf8427e", "unsupported algorithm \"md5\""},
        {"sha384:" + std::string(96, 'a'), "unsupported algorithm \"sha384\""},
        {"SHA256:" + sha256_abc, "unsupported algorithm \"SHA256\""},
        {":" + sha256_abc, "unsupported algorithm"},
        // No colon at all.
        {sha256_abc, "expected \"sha256:<64 hex digits>\""},
        {"sha256" + sha256_abc, "expected \"sha256:<64 hex digits>\""},
        {"", "expected \"sha256:<64 hex digits>\""},
    };
    for (const auto& c : cases) {
        CAPTURE(c.input);
        CHECK_THROWS_AS((void)Digest::parse(c.input), aas::Error);
        std::string msg = error_of(c.input);
        CAPTURE(msg);
        CHECK(msg.find("invalid digest \"" + c.input + "\"") != std::string::npos);
        CHECK(msg.find(c.reason) != std::string::npos);
    }
}

TEST_CASE("oci::Digest::of computes well-known sha256 and sha512 vectors") {
    SUBCASE("sha256 of the empty string") {
        Digest d = Digest::of("");
        CHECK(d.algorithm() == Algorithm::sha256);
        CHECK(d.str() == "sha256:" + sha256_empty);
    }
    SUBCASE("sha256 of abc") {
        CHECK(Digest::of("abc").str() == "sha256:" + sha256_abc);
        CHECK(Digest::of("abc", Algorithm::sha256) == Digest::parse("sha256:" + sha256_abc));
    }
    SUBCASE("sha256 of a sentence") {
        CHECK(Digest::of(fox).hex() == sha256_fox);
    }
    SUBCASE("sha512 of abc") {
        Digest d = Digest::of("abc", Algorithm::sha512);
        CHECK(d.algorithm() == Algorithm::sha512);
        CHECK(d.str() == "sha512:" + sha512_abc);
    }
    SUBCASE("sha512 of the empty string") {
        CHECK(Digest::of("", Algorithm::sha512).hex() == sha512_empty);
    }
    SUBCASE("binary bytes including NUL are hashed, not truncated") {
        const std::string with_nul("a\0b", 3);
        CHECK(Digest::of(with_nul) != Digest::of("a"));
        CHECK(Digest::of(with_nul) != Digest::of("ab"));
        CHECK(Digest::of(with_nul) == Digest::of(std::string("a\0b", 3)));
    }
    SUBCASE("different inputs and algorithms differ") {
        CHECK(Digest::of("abc") != Digest::of("abd"));
        CHECK(Digest::of("abc") != Digest::of("abc", Algorithm::sha512));
    }
}

TEST_CASE("oci::Digest default value, comparison and short_str") {
    SUBCASE("a default digest is empty") {
        Digest d;
        CHECK(d.empty());
        CHECK(d.hex().empty());
        CHECK(d.algorithm() == Algorithm::sha256);
    }
    SUBCASE("short_str keeps the algorithm and the first 12 hex digits") {
        CHECK(Digest::of("abc").short_str() == "sha256:ba7816bf8f01");
        CHECK(Digest::of("").short_str() == "sha256:e3b0c44298fc");
        CHECK(Digest::of("abc", Algorithm::sha512).short_str() == "sha512:ddaf35a19361");
    }
    SUBCASE("ordering follows the string form") {
        Digest a = Digest::parse("sha256:" + std::string(64, '0'));
        Digest b = Digest::parse("sha256:" + std::string(64, '1'));
        Digest c = Digest::parse("sha512:" + std::string(128, '0'));
        CHECK(a < b);
        CHECK(b < c);
        CHECK_FALSE(b < a);
        CHECK(a == Digest::parse("sha256:" + std::string(64, '0')));
    }
}

TEST_CASE("oci::Hasher incremental hashing") {
    SUBCASE("updates in pieces equal the one-shot digest") {
        for (std::size_t piece :
             {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{7}, std::size_t{64}, std::size_t{1000}}) {
            CAPTURE(piece);
            Hasher h;
            for (std::size_t i = 0; i < fox.size(); i += piece) h.update(std::string_view(fox).substr(i, piece));
            CHECK(h.finish().hex() == sha256_fox);

            Hasher h512(Algorithm::sha512);
            const std::string abc = "abc";
            for (std::size_t i = 0; i < abc.size(); i += piece) h512.update(std::string_view(abc).substr(i, piece));
            CHECK(h512.finish().hex() == sha512_abc);
        }
    }
    SUBCASE("one million 'a' in 4096-byte chunks (NIST long vector)") {
        Hasher h;
        const std::string chunk(4096, 'a');
        std::size_t left = 1000000;
        while (left > 0) {
            std::size_t n = left < chunk.size() ? left : chunk.size();
            h.update(chunk.data(), n);
            left -= n;
        }
        CHECK(h.finish().hex() == sha256_million_a);
    }
    SUBCASE("pointer + length and empty updates") {
        Hasher h;
        h.update(nullptr, 0);
        h.update("");
        h.update("ab", 1);
        h.update("bcd", 2);
        CHECK(h.finish().hex() == sha256_abc);
    }
    SUBCASE("algorithm() reports the configured algorithm") {
        CHECK(Hasher().algorithm() == Algorithm::sha256);
        CHECK(Hasher(Algorithm::sha512).algorithm() == Algorithm::sha512);
        Hasher h(Algorithm::sha512);
        h.update("abc");
        CHECK(h.finish().algorithm() == Algorithm::sha512);
    }
    SUBCASE("reset() drops what was hashed so far") {
        Hasher h;
        h.update("garbage that must not count");
        h.reset();
        h.update("abc");
        CHECK(h.finish().hex() == sha256_abc);

        Hasher h512(Algorithm::sha512);
        h512.update("xyz");
        h512.reset();
        CHECK(h512.finish().hex() == sha512_empty);
    }
    SUBCASE("finish() restarts the hasher") {
        Hasher h;
        h.update("abc");
        CHECK(h.finish().hex() == sha256_abc);
        // Nothing hashed since: the digest of the empty string.
        CHECK(h.finish().hex() == sha256_empty);
        h.update("a");
        h.update("bc");
        CHECK(h.finish().hex() == sha256_abc);
    }
    SUBCASE("a moved hasher keeps its state") {
        Hasher h;
        h.update("ab");
        Hasher moved(std::move(h));
        moved.update("c");
        CHECK(moved.finish().hex() == sha256_abc);

        Hasher assigned(Algorithm::sha512);
        assigned = std::move(moved);
        CHECK(assigned.algorithm() == Algorithm::sha256);
        assigned.update("abc");
        CHECK(assigned.finish().hex() == sha256_abc);
    }
}
