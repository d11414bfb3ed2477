#pragma once
// Logging to stderr with levels, and redaction of secrets.
//
// Nothing that could hold a secret (Authorization headers, tokens, passwords, URLs with
// user info or token query parameters) reaches the log without passing through
// `redact_url` / `redact_secrets` first.

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace aas::log {

enum class Level { error = 0, warn = 1, info = 2, debug = 3 };

/// Sets the most detailed level that is printed (default: info).
void set_level(Level level);
Level level();

/// Registers a secret (password, token) whose text must never be printed; every log line
/// and every error message that passes through `redact_secrets` has it replaced by `***`.
void add_secret(std::string secret);

/// `text` with every registered secret replaced by `***`.
std::string redact_secrets(std::string_view text);

/// `url` without user info and with the values of query parameters that carry secrets
/// (`token`, `access_token`, `X-Amz-Signature`, `X-Amz-Credential`, `sig`, `signature`,
/// `password`) replaced by `***`.
std::string redact_url(std::string_view url);

void write(Level level, std::string_view message);

template <typename... Args> void error(fmt::format_string<Args...> f, Args&&... args) {
    write(Level::error, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args> void warn(fmt::format_string<Args...> f, Args&&... args) {
    if (level() >= Level::warn) write(Level::warn, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args> void info(fmt::format_string<Args...> f, Args&&... args) {
    if (level() >= Level::info) write(Level::info, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args> void debug(fmt::format_string<Args...> f, Args&&... args) {
    if (level() >= Level::debug) write(Level::debug, fmt::format(f, std::forward<Args>(args)...));
}

} // namespace aas::log
