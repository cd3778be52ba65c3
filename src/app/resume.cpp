#include "app/resume.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/check.h"
#include "core/text_util.h"

namespace meshlm {
namespace {

std::string request_key(const Request& r) { return "id:" + r.id; }
std::string error_key(const LineError& e) { return "line:" + std::to_string(e.line); }

}  // namespace

std::set<std::string> completed_keys(const std::string& path) {
  std::set<std::string> keys;
  if (path == "-" || !std::filesystem::exists(path)) return keys;
  std::string text;
  {
    std::ifstream in(path, std::ios::binary);
    MESH_CHECK(in.good(), path, ": cannot read the output to resume");
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  const size_t complete = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
  if (complete < text.size()) {  // the line a killed run was writing
    std::filesystem::resize_file(path, complete);
    text.resize(complete);
  }
  size_t line_no = 0, at = 0;
  while (at < text.size()) {
    const size_t end = text.find('\n', at);
    const std::string line = text.substr(at, end - at);
    at = end + 1;
    ++line_no;
    if (line.empty()) continue;
    nlohmann::json j;
    try {
      j = parse_json(line, "");
    } catch (const Error&) {
      fail(path, ":", line_no, ": not a JSON line; --resume needs the output of an earlier run of this job");
    }
    MESH_CHECK(j.is_object(), path, ":", line_no, ": not an output line");
    const nlohmann::json& err = j.contains("error") ? j["error"] : nlohmann::json();
    if (!err.is_null()) {  // an error record: keyed by its prompt-file line
      const nlohmann::json& ln = j.contains("line") ? j["line"] : err.is_object() ? err.value("line", nlohmann::json()) : nlohmann::json();
      MESH_CHECK(ln.is_number_integer(), path, ":", line_no, ": an error record without its line number");
      keys.insert("line:" + std::to_string(ln.get<int64_t>()));
    } else if (j.contains("custom_id") && j["custom_id"].is_string()) {
      keys.insert("id:" + j["custom_id"].get<std::string>());
    } else {
      MESH_CHECK(j.contains("id") && j["id"].is_string(), path, ":", line_no, ": an output line without an id");
      keys.insert("id:" + j["id"].get<std::string>());
    }
  }
  return keys;
}

std::set<std::string> completed_ids(const std::set<std::string>& keys) {
  std::set<std::string> ids;
  for (const std::string& k : keys)
    if (k.rfind("id:", 0) == 0) ids.insert(k.substr(3));
  return ids;
}

size_t drop_completed(PromptFile& file, const std::set<std::string>& done) {
  const size_t before = file.entries;
  std::erase_if(file.requests, [&](const Request& r) { return done.count(request_key(r)) > 0; });
  std::erase_if(file.errors, [&](const LineError& e) { return done.count(error_key(e)) > 0; });
  std::map<size_t, size_t> renumber;  // old entry -> new, in file order
  for (const Request& r : file.requests) renumber[r.entry] = 0;
  for (const LineError& e : file.errors) renumber[e.entry] = 0;
  size_t next = 0;
  for (auto& [old, now] : renumber) now = next++;
  for (Request& r : file.requests) r.entry = renumber[r.entry];
  for (LineError& e : file.errors) e.entry = renumber[e.entry];
  file.entries = next;
  return before - next;
}

}  // namespace meshlm
