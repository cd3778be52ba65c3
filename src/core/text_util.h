// Small text and file helpers shared by io/, tokenizer/ and app/.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace meshlm {

// Every occurrence of `from` in `s` replaced by `to` (from must not be empty).
std::string replace_all(const std::string& s, const std::string& from, const std::string& to);

// JSON from files and prompt lines is untrusted: nlohmann's values are recursive (destroying, copying, dump()), so
// every parse below first refuses nesting deeper than kMaxJsonDepth (no config, tokenizer or request comes near it).
constexpr int kMaxJsonDepth = 128;
// Throws Error "WHERE: JSON nested deeper than 128 levels (at byte N)" when `text` nests deeper than kMaxJsonDepth
// arrays/objects (strings and escapes skipped).
void check_json_depth(const std::string& text, const std::string& where);

// Parses untrusted JSON text (depth-checked); throws Error "WHERE: not valid JSON: ..." (no "WHERE: " when empty).
nlohmann::json parse_json(const std::string& text, const std::string& where);

// Parses a JSON file (depth-checked); throws Error "PATH: cannot open" or "PATH: not valid JSON: ...".
nlohmann::json read_json_file(const std::string& path);

// Parses text that must be one JSON object; throws Error "WHERE: not valid JSON: ..." or
// "WHERE: expected a JSON object, got TYPE" (without the "WHERE: " when where is empty).
nlohmann::ordered_json parse_json_object(const std::string& text, const std::string& where);

}  // namespace meshlm
