// Small text and file helpers shared by io/ and tokenizer/.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace meshlm {

// Every occurrence of `from` in `s` replaced by `to` (from must not be empty).
std::string replace_all(const std::string& s, const std::string& from, const std::string& to);

// Parses a JSON file; throws Error "PATH: cannot open" or "PATH: not valid JSON: ...".
nlohmann::json read_json_file(const std::string& path);

}  // namespace meshlm
