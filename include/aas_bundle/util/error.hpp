#pragma once
// Error types shared by every module.
//
// aas-bundle reports failures with exceptions derived from `aas::Error`, caught once in
// the CLI's `main`. Every message says what was attempted, on what, and why, e.g.
// `parsing reference "x/y@sha256:v1": a sha256 digest is 64 hex digits`.

#include <stdexcept>
#include <string>

namespace aas {

/// Base of every error aas-bundle throws on purpose. `what()` is the full message.
class Error : public std::runtime_error {
public:
    explicit Error(const std::string& message) : std::runtime_error(message) {}
};

/// The user gave something the program cannot use (a bad flag, reference or file).
/// The CLI exits with status 2 for these.
class UsageError : public Error {
public:
    using Error::Error;
};

/// Prefixes `context` to an error message: `wrap("pulling x", e)` gives "pulling x: <e>".
std::string wrap_message(const std::string& context, const std::string& message);

} // namespace aas

namespace aas::util {

/// The system's text for the error number `err` ("No such file or directory" for
/// ENOENT), as strerror gives it but safe to call from several threads at once (an
/// unknown number gets the system's "Unknown error N", or "error N" where the system
/// gives no text at all). Leaves `errno` as it was,
/// so `errno_message(errno)` can be used while building a message.
std::string errno_message(int err);

} // namespace aas::util
