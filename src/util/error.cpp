#include "aas_bundle/util/error.hpp"

#include <cerrno>
#include <string.h>

namespace aas {

std::string wrap_message(const std::string& context, const std::string& message) {
    return context + ": " + message;
}

} // namespace aas

namespace aas::util {

namespace {

// strerror_r is the GNU one (returns the text, maybe not in `buf`) or the XSI one
// (returns 0 and fills `buf`), depending on the feature macros: take either.
[[maybe_unused]] const char* strerror_text(const char* text, const char*) {
    return text;
}
[[maybe_unused]] const char* strerror_text(int rc, const char* buf) {
    return rc == 0 ? buf : nullptr;
}

} // namespace

std::string errno_message(int err) {
    const int saved = errno;
    char buf[256] = {};
    const char* text = strerror_text(::strerror_r(err, buf, sizeof buf), buf);
    std::string out = text && *text ? std::string(text) : "error " + std::to_string(err);
    errno = saved;
    return out;
}

} // namespace aas::util
