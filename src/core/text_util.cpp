#include "core/text_util.h"

#include <fstream>
#include <iterator>

#include "core/check.h"

namespace meshlm {

std::string replace_all(const std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  std::string out;
  size_t i = 0;
  for (size_t j; (j = s.find(from, i)) != std::string::npos; i = j + from.size()) out.append(s, i, j - i) += to;
  return out.append(s, i, std::string::npos);
}

void check_json_depth(const std::string& text, const std::string& where) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      MESH_CHECK(++depth <= kMaxJsonDepth, where.empty() ? "" : where + ": ", "JSON nested deeper than ",
                 kMaxJsonDepth, " levels (at byte ", i, ")");
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

namespace {
template <typename Json>
Json parse_checked(const std::string& text, const std::string& where) {
  check_json_depth(text, where);
  try {
    return Json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(where.empty() ? "" : where + ": ", "not valid JSON: ", e.what());
  }
}
}  // namespace

nlohmann::json parse_json(const std::string& text, const std::string& where) {
  return parse_checked<nlohmann::json>(text, where);
}

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  MESH_CHECK(in.good(), path, ": cannot open");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse_json(text, path);
}

nlohmann::ordered_json parse_json_object(const std::string& text, const std::string& where) {
  const std::string prefix = where.empty() ? "" : where + ": ";
  const nlohmann::ordered_json j = parse_checked<nlohmann::ordered_json>(text, where);
  MESH_CHECK(j.is_object(), prefix, "expected a JSON object, got ", j.type_name());
  return j;
}

}  // namespace meshlm
