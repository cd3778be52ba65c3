// Reading a JSONL input file line by line, with errors that name FILE:LINE.
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

namespace meshlm {

// Calls fn(where, object) for every non-blank line ("where" is "FILE:LINE"). A line that is not valid UTF-8,
// not JSON or not an object throws Error naming the line; an Error thrown by fn gets the line prefixed.
void for_each_jsonl_object(const std::string& path,
                           const std::function<void(const std::string& where, const nlohmann::ordered_json& j)>& fn);

}  // namespace meshlm
