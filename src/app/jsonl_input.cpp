#include "app/jsonl_input.h"

#include <fstream>

#include "core/check.h"
#include "core/text_util.h"
#include "tokenizer/utf8.h"

namespace meshlm {

void for_each_jsonl_object(const std::string& path,
                           const std::function<void(const std::string& where, const nlohmann::ordered_json& j)>& fn) {
  std::ifstream in(path, std::ios::binary);
  MESH_CHECK(in.good(), path, ": cannot open");
  size_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(line_no);
    const size_t bad = utf8_invalid_at(line);
    MESH_CHECK(bad == std::string::npos, where, ": not valid UTF-8 (byte ", bad + 1, " of the line)");
    const nlohmann::ordered_json j = parse_json_object(line, where);
    try {
      fn(where, j);
    } catch (const Error& e) {
      const std::string msg = e.what();
      if (msg.rfind(where, 0) == 0) throw;
      fail(where, ": ", msg);
    }
  }
}

}  // namespace meshlm
