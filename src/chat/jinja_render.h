// Renders a parsed template against a context of variables.
#pragma once
#include <string>

#include "chat/jinja_ast.h"

namespace meshlm::jinja {

// context: a dict of the template's variables. Throws Error on anything the subset cannot evaluate.
std::string render(const Body& body, const Value& context);

}  // namespace meshlm::jinja
