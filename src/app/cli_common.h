// Small helpers shared by the verbs' option handling.
#pragma once
#include <cxxopts.hpp>
#include <string>

#include "core/check.h"

namespace meshlm {

// Parses argv; "--help" prints the help (unless quiet, e.g. on ranks other than 0) and returns false.
// Unknown options and bad values throw Error.
inline bool parse_options(cxxopts::Options& options, int argc, char** argv, cxxopts::ParseResult& out,
                          bool quiet = false) {
  options.add_options("")("h,help", "Show this help");
  try {
    out = options.parse(argc, argv);
  } catch (const cxxopts::exceptions::exception& e) {
    fail(e.what(), " (see --help)");
  }
  if (out.count("help")) {
    if (!quiet) std::printf("%s\n", options.help().c_str());
    return false;
  }
  return true;
}

inline std::string required(const cxxopts::ParseResult& r, const char* name) {
  MESH_CHECK(r.count(name), "--", name, " is required (see --help)");
  return r[name].as<std::string>();
}

}  // namespace meshlm
