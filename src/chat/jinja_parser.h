// Parses a Jinja template with the environment Hugging Face uses for chat templates (trim_blocks, lstrip_blocks,
// loop controls). Anything outside the supported subset is an Error naming the line, at parse time where possible.
#pragma once
#include <string>

#include "chat/jinja_ast.h"

namespace meshlm::jinja {

Body parse_template(const std::string& source);

}  // namespace meshlm::jinja
