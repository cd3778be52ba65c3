#include "core/text_util.h"

#include <fstream>

#include "core/check.h"

namespace meshlm {

std::string replace_all(const std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  std::string out;
  size_t i = 0;
  for (size_t j; (j = s.find(from, i)) != std::string::npos; i = j + from.size()) out.append(s, i, j - i) += to;
  return out.append(s, i, std::string::npos);
}

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  MESH_CHECK(in.good(), path, ": cannot open");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": not valid JSON: ", e.what());
  }
}

nlohmann::ordered_json parse_json_object(const std::string& text, const std::string& where) {
  const std::string prefix = where.empty() ? "" : where + ": ";
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(prefix, "not valid JSON: ", e.what());
  }
  MESH_CHECK(j.is_object(), prefix, "expected a JSON object, got ", j.type_name());
  return j;
}

}  // namespace meshlm
