// The output line of a finished request, or of a line that could not become one, in the shape its format asks
// for: meshlm's own JSONL, or the OpenAI batch output ({"id", "custom_id", "response": {"status_code", "body"},
// "error"}).
#pragma once
#include <string>

#include "app/prompt_file.h"
#include "runtime/request.h"

namespace meshlm {

// model_name: what OpenAI bodies report when the request named no model.
std::string completion_line(const Request& r, const Completion& c, const std::string& model_name);
std::string error_line(PromptFormat format, const LineError& e);

}  // namespace meshlm
