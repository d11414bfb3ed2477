// util::errno_message: the system's text for an error number.

#include "aas_bundle/util/error.hpp"

#include <doctest/doctest.h>

#include <cerrno>
#include <cstring>
#include <string>

TEST_CASE("util::errno_message gives the system's text for an error number") {
    // The same words as strerror (read here on the test's one thread).
    CHECK(aas::util::errno_message(ENOENT) == std::string(std::strerror(ENOENT)));
    CHECK(aas::util::errno_message(EACCES) == std::string(std::strerror(EACCES)));
    CHECK(aas::util::errno_message(ENOSPC) == std::string(std::strerror(ENOSPC)));
    CHECK(aas::util::errno_message(ENOENT) != aas::util::errno_message(EACCES));
    CHECK_FALSE(aas::util::errno_message(ENOENT).empty());
}

TEST_CASE("util::errno_message names an error number the system does not know") {
    auto text = aas::util::errno_message(123456);
    CHECK(text.find("123456") != std::string::npos);
}

TEST_CASE("util::errno_message leaves errno as it was") {
    errno = EBADF;
    auto text = aas::util::errno_message(ENOENT);
    CHECK(errno == EBADF);
    errno = EINTR;
    text = aas::util::errno_message(999999);
    CHECK(errno == EINTR);
}
