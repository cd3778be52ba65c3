// Errors: library code throws meshlm::Error with one clear line; main prints it and ends every rank.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace meshlm {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Concatenates the parts with operator<< and throws Error.
template <typename... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  throw Error(out.str());
}

}  // namespace meshlm

// MESH_CHECK(cond, parts...): throw Error(parts...) when cond is false.
#define MESH_CHECK(cond, ...)            \
  do {                                   \
    if (!(cond)) ::meshlm::fail(__VA_ARGS__); \
  } while (0)
