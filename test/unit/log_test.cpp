#include "aas_bundle/util/log.hpp"

#include <doctest/doctest.h>

using namespace aas;

TEST_CASE("log::redact_url removes user info and secret query values") {
    CHECK(log::redact_url("https://user:pw@reg.example/v2/") == "https://***@reg.example/v2/");
    CHECK(log::redact_url("https://s3.example/blob?X-Amz-Signature=abc&x=1&token=zz") ==
          "https://s3.example/blob?X-Amz-Signature=***&x=1&token=***");
    CHECK(log::redact_url("http://127.0.0.1:5000/v2/a/blobs/uploads/u?_state=QQ&digest=sha256:1") ==
          "http://127.0.0.1:5000/v2/a/blobs/uploads/u?_state=***&digest=sha256:1");
    CHECK(log::redact_url("http://h/v2/") == "http://h/v2/");
}

TEST_CASE("log::redact_secrets replaces registered secrets") {
    log::add_secret("s3cr3t-passw0rd");
    CHECK(log::redact_secrets("Authorization: Basic s3cr3t-passw0rd!") == "Authorization: Basic ***!");
    CHECK(log::redact_url("http://h/?q=s3cr3t-passw0rd") == "http://h/?q=***");
}
