// Small text and file helpers shared by io/, tokenizer/ and app/.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace meshlm {

// Every occurrence of `from` in `s` replaced by `to` (from must not be empty).
std::string replace_all(const std::string& s, const std::string& from, const std::string& to);

// Parses a JSON file; throws Error "PATH: cannot open" or "PATH: not valid JSON: ...".
nlohmann::json read_json_file(const std::string& path);

// Parses text that must be one JSON object; throws Error "WHERE: not valid JSON: ..." or
// "WHERE: expected a JSON object, got TYPE" (without the "WHERE: " when where is empty).
nlohmann::ordered_json parse_json_object(const std::string& text, const std::string& where);

}  // namespace meshlm
