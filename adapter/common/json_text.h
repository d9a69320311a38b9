// Appending JSON string literals without a JSON library (logs, small replies).
#pragma once

#include <string>
#include <string_view>

namespace adapter {

// Appends `text` as a quoted JSON string; control characters and invalid UTF-8 bytes are escaped
// (invalid bytes as \u00XX of their Latin-1 reading) so the output is always valid JSON.
void append_json_string(std::string& out, std::string_view text);

// `text` with its control characters written as JSON writes them (\n, \r, \t, \u0001) and
// everything else as it is: a message that quotes data (an issue, an error) stays one line, so a
// value cannot start a line of its own in what the CLI prints.
std::string escape_controls(std::string text);

}  // namespace adapter
