#pragma once
// Small string helpers used across modules.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aas::util {

/// `s` without leading and trailing ASCII white space.
std::string_view trim(std::string_view s);

/// Splits `s` at every `sep`; empty fields are kept ("a,,b" gives 3 fields).
std::vector<std::string> split(std::string_view s, char sep);

/// ASCII lower case copy of `s`.
std::string to_lower(std::string_view s);

/// Case-insensitive ASCII equality.
bool iequals(std::string_view a, std::string_view b);

/// Lower-case hexadecimal of `bytes`.
std::string to_hex(const unsigned char* bytes, std::size_t n);

/// Parses a non-negative decimal integer that fits in uint64; nullopt otherwise.
std::optional<std::uint64_t> parse_u64(std::string_view s);

/// Parses a byte size: a number with an optional binary suffix K, M, G or T (also KiB,
/// MB, …; all powers of 1024), e.g. "4095M", "2G", "1048576". nullopt when invalid or 0.
std::optional<std::uint64_t> parse_size(std::string_view s);

/// The characters a base64 decoder takes for values 62 and 63 (RFC 4648): section 4's
/// standard '+' and '/' only, or also section 5's URL-safe '-' and '_'.
enum class Base64Alphabet { standard, standard_or_url_safe };

/// Base64 of `in` in the standard alphabet, padded with '=' (RFC 4648 section 4).
std::string base64_encode(std::string_view in);

/// Decodes base64 text; trailing '=' padding is optional. nullopt when a character is not of
/// `alphabet` (an inner '=' included), or when the text (without padding) ends in a lone
/// character, which holds 6 bits and no whole byte: with `lone_tail_ok` that character is
/// checked against the alphabet and dropped instead.
std::optional<std::string> base64_decode(std::string_view in,
                                         Base64Alphabet alphabet = Base64Alphabet::standard_or_url_safe,
                                         bool lone_tail_ok = false);

/// Levenshtein edit distance, for "did you mean" suggestions.
std::size_t edit_distance(std::string_view a, std::string_view b);

/// Human-readable byte count: "512 B", "1.5 KiB", "3.2 GiB".
std::string human_bytes(std::uint64_t n);

/// Percent-encodes `s` for use in a URL query value (RFC 3986 unreserved kept).
std::string url_encode(std::string_view s);

/// The byte offset at which JSON text `s` opens its (max_depth+1)th nested array or
/// object, or nullopt when it nests at most `max_depth` deep. Strings are skipped, so the
/// check is exact for valid JSON; run it before parsing untrusted JSON (the parser
/// recurses per level).
std::optional<std::size_t> json_too_deep(std::string_view s, std::size_t max_depth);

/// "nested more than MAX levels deep at byte B" when JSON text `s` nests deeper than
/// `max_depth` (json_too_deep), or nullopt: for a caller that words the error itself.
std::optional<std::string> json_depth_problem(std::string_view s, std::size_t max_depth);

/// The guard to run before parsing untrusted JSON: throws aas::Error "WHERE: nested more
/// than MAX levels deep at byte B; refused" when `s` nests deeper than `max_depth`.
void refuse_deep_json(std::string_view s, std::size_t max_depth, std::string_view where);

/// Whether `s` holds an ASCII control character (0x00-0x1f, 0x7f), a newline included.
bool has_control(std::string_view s);

/// `s` with control characters and backslashes escaped ("\n", "\x1b", "\\"), for
/// printing untrusted text on one line of a terminal.
std::string escape_control(std::string_view s);

/// Why `s` is not a DNS-1123 label (Kubernetes namespaces: at most 63 lower-case
/// letters, digits and '-', starting and ending with a letter or digit), or "".
std::string dns1123_label_problem(std::string_view s);

/// Why `s` is not a Helm release name (DNS-1123 subdomain of at most 53 characters:
/// labels as above joined by '.'), or "".
std::string helm_release_name_problem(std::string_view s);

} // namespace aas::util
