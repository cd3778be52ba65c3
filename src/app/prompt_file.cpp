#include "app/prompt_file.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/check.h"
#include "tokenizer/utf8.h"

namespace meshlm {
namespace {
using nlohmann::json;

// Reads one request from a parsed line; `where` is "FILE:LINE".
Request parse_request(const json& j, const std::string& where, size_t index, const RequestDefaults& d,
                      const Tokenizer* tokenizer, int vocab_size) {
  MESH_CHECK(j.is_object(), where, ": expected a JSON object, got ", j.type_name());
  static const std::set<std::string> known = {"id",    "prompt", "prompt_ids", "max_tokens", "temperature",
                                              "top_k", "top_p",  "min_p",      "seed",       "stop"};
  for (auto& [key, value] : j.items())
    MESH_CHECK(known.count(key), where, ": unknown field \"", key,
               "\" (known: id, prompt, prompt_ids, max_tokens, temperature, top_k, top_p, min_p, seed, stop)");
  Request r;
  r.max_tokens = d.max_tokens;
  r.sampling = d.sampling;
  r.sampling.seed = d.sampling.seed + index;
  if (j.contains("id")) {
    const json& id = j["id"];
    MESH_CHECK(id.is_string() || id.is_number_integer(), where, ": \"id\" must be a string or an integer");
    r.id = id.is_string() ? id.get<std::string>() : id.dump();
    MESH_CHECK(!r.id.empty(), where, ": \"id\" must not be empty");
  } else {
    r.id = std::to_string(index);
  }
  const bool has_text = j.contains("prompt"), has_ids = j.contains("prompt_ids");
  MESH_CHECK(has_text != has_ids, where, ": give exactly one of \"prompt\" or \"prompt_ids\"");
  if (has_text) {
    MESH_CHECK(j["prompt"].is_string(), where, ": \"prompt\" must be a string");
    const std::string text = j["prompt"].get<std::string>();
    MESH_CHECK(!text.empty(), where, ": \"prompt\" is empty");
    MESH_CHECK(tokenizer != nullptr, where, ": a text prompt needs the model's tokenizer.json");
    try {
      r.prompt = tokenizer->encode(text);
    } catch (const Error& e) {
      fail(where, ": ", e.what());
    }
    MESH_CHECK(!r.prompt.empty(), where, ": \"prompt\" encodes to no tokens");
  } else {
    const json& ids = j["prompt_ids"];
    MESH_CHECK(ids.is_array() && !ids.empty(), where, ": \"prompt_ids\" must be a non-empty list of token ids");
    for (const json& v : ids) {
      MESH_CHECK(v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() < vocab_size, where,
                 ": prompt_ids entry ", v.dump(), " is not a token id in [0, ", vocab_size, ")");
      r.prompt.push_back(v.get<int>());
    }
  }
  if (j.contains("max_tokens")) {
    MESH_CHECK(j["max_tokens"].is_number_integer() && j["max_tokens"].get<int64_t>() >= 1 &&
                   j["max_tokens"].get<int64_t>() <= (1 << 30),
               where, ": \"max_tokens\" must be a positive integer");
    r.max_tokens = j["max_tokens"].get<int>();
  }
  const auto number = [&](const char* key, double lo, double hi, double& out) {
    if (!j.contains(key)) return;
    MESH_CHECK(j[key].is_number() && j[key].get<double>() >= lo && j[key].get<double>() <= hi, where, ": \"",
               key, "\" must be a number in [", lo, ", ", hi, "], got ", j[key].dump());
    out = j[key].get<double>();
  };
  number("temperature", 0.0, 100.0, r.sampling.temperature);
  number("top_p", 1e-9, 1.0, r.sampling.top_p);
  number("min_p", 0.0, 1.0, r.sampling.min_p);
  if (j.contains("top_k")) {
    MESH_CHECK(j["top_k"].is_number_integer() && j["top_k"].get<int64_t>() >= 0, where,
               ": \"top_k\" must be a non-negative integer");
    r.sampling.top_k = int(std::min<int64_t>(j["top_k"].get<int64_t>(), vocab_size));
  }
  if (j.contains("seed")) {
    MESH_CHECK(j["seed"].is_number_integer() && j["seed"].get<int64_t>() >= 0, where,
               ": \"seed\" must be a non-negative integer");
    r.sampling.seed = j["seed"].get<uint64_t>();
  }
  if (j.contains("stop")) {
    const json& s = j["stop"];
    const auto add = [&](const json& v) {
      MESH_CHECK(v.is_string() && !v.get<std::string>().empty(), where, ": \"stop\" must be a non-empty string or a list of them");
      r.stop.push_back(v.get<std::string>());
    };
    if (s.is_array()) {
      for (const json& v : s) add(v);
    } else {
      add(s);
    }
  }
  return r;
}

}  // namespace

std::vector<Request> read_prompt_file(const std::string& path, const RequestDefaults& defaults,
                                      const Tokenizer* tokenizer, int vocab_size, int max_context) {
  std::ifstream in(path, std::ios::binary);
  MESH_CHECK(in.good(), path, ": cannot open the prompt file");
  std::vector<Request> requests;
  std::set<std::string> ids;
  size_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line_no == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // a UTF-8 byte-order mark
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(line_no);
    const size_t bad = utf8_invalid_at(line);
    MESH_CHECK(bad == std::string::npos, where, ": not valid UTF-8 (byte ", bad + 1, " of the line)");
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception& e) {
      fail(where, ": invalid JSON: ", e.what());
    }
    Request r;
    try {
      r = parse_request(j, where, requests.size(), defaults, tokenizer, vocab_size);
    } catch (const json::exception& e) {
      fail(where, ": ", e.what());
    }
    r.line = line_no;
    MESH_CHECK(ids.insert(r.id).second, where, ": duplicate id \"", r.id, "\"");
    MESH_CHECK(int64_t(r.prompt.size()) <= max_context, where, ": the prompt has ", r.prompt.size(),
               " tokens but the context holds ", max_context);
    requests.push_back(std::move(r));
  }
  MESH_CHECK(!requests.empty(), path, ": no requests (expected JSONL lines like {\"id\": \"a\", \"prompt\": \"...\"})");
  return requests;
}

std::string requests_to_json(const std::vector<Request>& requests) {
  json all = json::array();
  for (const Request& r : requests)
    all.push_back({{"id", r.id}, {"prompt", r.prompt}, {"max_tokens", r.max_tokens}, {"stop", r.stop},
                   {"line", r.line}, {"temperature", r.sampling.temperature}, {"top_k", r.sampling.top_k},
                   {"top_p", r.sampling.top_p}, {"min_p", r.sampling.min_p}, {"seed", r.sampling.seed}});
  return all.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::vector<Request> requests_from_json(const std::string& text) {
  std::vector<Request> out;
  for (const json& j : json::parse(text)) {
    Request r;
    r.id = j["id"].get<std::string>();
    r.prompt = j["prompt"].get<std::vector<int>>();
    r.max_tokens = j["max_tokens"].get<int>();
    r.stop = j["stop"].get<std::vector<std::string>>();
    r.line = j["line"].get<size_t>();
    r.sampling.temperature = j["temperature"].get<double>();
    r.sampling.top_k = j["top_k"].get<int>();
    r.sampling.top_p = j["top_p"].get<double>();
    r.sampling.min_p = j["min_p"].get<double>();
    r.sampling.seed = j["seed"].get<uint64_t>();
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace meshlm
