#include "testing.hpp"

#include "aas_bundle/signing/signing.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using aas::testing::slurp;
using aas::testing::TempDir;

namespace {} // namespace

TEST_CASE("signing: keygen, sign, verify, tamper") {
    TempDir d;
    auto fp = aas::signing::generate_keypair(d.path / "k");
    CHECK(fp.rfind("sha256:", 0) == 0);
    CHECK(fp.size() == 7 + 64);
    CHECK(aas::signing::fingerprint(d.path / "k.pub") == fp);
    CHECK(aas::signing::fingerprint(d.path / "k.key") == fp);
    CHECK((fs::status(d.path / "k.key").permissions() & fs::perms::all) ==
          (fs::perms::owner_read | fs::perms::owner_write));
    CHECK(slurp(d.path / "k.key").rfind("-----BEGIN PRIVATE KEY-----", 0) == 0);
    CHECK(slurp(d.path / "k.pub").rfind("-----BEGIN PUBLIC KEY-----", 0) == 0);

    std::string data = "{\"name\":\"ai-appstore\"}\n";
    auto sig = aas::signing::sign(d.path / "k.key", data);
    CHECK(sig.size() == 64);
    CHECK(aas::signing::verify(d.path / "k.pub", data, sig));
    std::string changed = data;
    changed[3] ^= 1;
    CHECK_FALSE(aas::signing::verify(d.path / "k.pub", changed, sig));
    std::string bad_sig = sig;
    bad_sig[10] ^= 1;
    CHECK_FALSE(aas::signing::verify(d.path / "k.pub", data, bad_sig));
    CHECK_FALSE(aas::signing::verify(d.path / "k.pub", data, sig.substr(0, 10)));

    aas::signing::generate_keypair(d.path / "other");
    CHECK_FALSE(aas::signing::verify(d.path / "other.pub", data, sig));
}

TEST_CASE("signing: existing keys are not replaced without overwrite") {
    TempDir d;
    aas::signing::generate_keypair(d.path / "k");
    auto before = slurp(d.path / "k.key");
    CHECK_THROWS_WITH_AS(aas::signing::generate_keypair(d.path / "k"), doctest::Contains("already exists"),
                         aas::UsageError);
    CHECK(slurp(d.path / "k.key") == before);
    aas::signing::generate_keypair(d.path / "k", true);
    CHECK(slurp(d.path / "k.key") != before);
}

TEST_CASE("signing: wrong files are named") {
    TempDir d;
    std::ofstream(d.path / "junk.pub") << "not a key\n";
    CHECK_THROWS_WITH_AS(aas::signing::verify(d.path / "junk.pub", "x", "y"), doctest::Contains("junk.pub: not a PEM"),
                         aas::Error);
    // An RSA key is refused as not Ed25519.
    std::string cmd = "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out '" +
                      (d.path / "rsa.key").string() + "' 2>/dev/null";
    REQUIRE(std::system(cmd.c_str()) == 0);
    CHECK_THROWS_WITH_AS(aas::signing::sign(d.path / "rsa.key", "x"), doctest::Contains("not Ed25519"), aas::Error);
}

TEST_CASE("signing: signatures verify with stock openssl, and openssl's with ours") {
    TempDir d;
    aas::signing::generate_keypair(d.path / "k");
    std::string data = "bundle.json bytes\n";
    std::ofstream(d.path / "data", std::ios::binary) << data;
    std::ofstream(d.path / "data.sig", std::ios::binary) << aas::signing::sign(d.path / "k.key", data);
    std::string verify_cmd = "openssl pkeyutl -verify -rawin -pubin -inkey '" + (d.path / "k.pub").string() +
                             "' -in '" + (d.path / "data").string() + "' -sigfile '" + (d.path / "data.sig").string() +
                             "' >/dev/null 2>&1";
    CHECK(std::system(verify_cmd.c_str()) == 0);
    std::string sign_cmd = "openssl pkeyutl -sign -rawin -inkey '" + (d.path / "k.key").string() + "' -in '" +
                           (d.path / "data").string() + "' -out '" + (d.path / "openssl.sig").string() +
                           "' 2>/dev/null";
    REQUIRE(std::system(sign_cmd.c_str()) == 0);
    CHECK(aas::signing::verify(d.path / "k.pub", data, slurp(d.path / "openssl.sig")));
}
