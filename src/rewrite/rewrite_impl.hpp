#pragma once
// Private to the rewrite module: the YAML text editing the planner builds its edits from
// (yaml_edit.cpp). Lines are edited by column, never re-serialised.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aas::rewrite::detail {

/// One line of a text, as offsets into it.
struct LineRef {
    std::size_t begin = 0; ///< offset of the first character
    std::size_t end = 0;   ///< offset after the last character, before "\r\n" or "\n"
};

/// The lines of `text` ("\n" or "\r\n" ends; a last line without one counts).
std::vector<LineRef> split_lines(std::string_view text);

/// The line end `text` uses: "\r\n" when it holds one, else "\n".
std::string eol_of(std::string_view text);

/// How a scalar is written: plain, 'single' or "double" quoted.
enum class Style { plain, single, dbl };

/// A one-line scalar as written on its line.
struct Scalar {
    std::size_t begin = 0; ///< column of the first character (quote included)
    std::size_t end = 0;   ///< column after the last character (quote included)
    Style style = Style::plain;
    std::string text; ///< the value, unquoted
};

/// The first column at or after `i` of `s` that is not a space or tab.
std::size_t skip_spaces(std::string_view s, std::size_t i);

/// Reads a scalar starting at `i`; nullopt for what is not a one-line scalar (block scalars,
/// anchors, tags, flow collections, an unterminated quote) or when more than a comment follows.
std::optional<Scalar> read_scalar(std::string_view line, std::size_t i);

/// A line that starts with a map key.
struct KeyLine {
    std::size_t indent = 0; ///< column of the key
    bool list_item = false; ///< the key follows "- "
    std::string key;
    std::size_t value_at = 0; ///< column where the value (or a comment, or nothing) starts
};

/// "KEY: ...", "- KEY: ...", "'KEY': ...", '"KEY": ...' at the start of a line; nullopt otherwise.
std::optional<KeyLine> read_key(std::string_view line);

/// `v` written in `style`; a plain `v` that YAML would read as something else (or that
/// could not be plain) is double-quoted instead.
std::string quote(std::string_view v, Style style);

/// Text to insert into a values file, and where.
struct Insertion {
    std::size_t offset = 0; ///< where the text goes
    std::string text;
};

/// Where and what to insert so that `path` (dotted, no list indices) holds `value` in
/// `text`; nullopt with `why` when the file's structure is not a block map along the way.
std::optional<Insertion> plan_insertion(std::string_view text, const std::vector<std::string>& path,
                                        const std::string& value, std::string& why);

} // namespace aas::rewrite::detail
