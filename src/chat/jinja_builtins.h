// The filters, tests, methods and global functions of the supported Jinja subset (Jinja's and transformers').
#pragma once
#include <string>
#include <vector>

#include "chat/value.h"

namespace meshlm::jinja {

struct Args {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
  // The n-th positional argument, else the keyword `name`, else `fallback`.
  Value get(size_t n, const char* name, Value fallback = Value()) const;
};

// Each throws Error "unknown filter/test/method/function 'x'" for names outside the subset.
Value apply_filter(const std::string& name, const Value& input, const Args& args);
bool apply_test(const std::string& name, const Value& input, const Args& args);
// obj.name(args) for str, list and dict methods; `found` is false when obj has no such method.
Value call_method(const Value& obj, const std::string& name, const Args& args, bool& found);
Value call_global(const std::string& name, const Args& args);

}  // namespace meshlm::jinja
