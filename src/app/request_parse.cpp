#include "app/request_parse.h"

#include <set>

#include "core/check.h"

namespace meshlm {
namespace {
using json = nlohmann::ordered_json;

std::vector<int> encode_text(const std::string& text, const ParseContext& c, bool add_special_tokens) {
  MESH_CHECK(!text.empty(), "the prompt is empty");
  MESH_CHECK(c.tokenizer != nullptr, "a text prompt needs the model's tokenizer.json");
  std::vector<int> ids = c.tokenizer->encode(text, add_special_tokens);
  MESH_CHECK(!ids.empty(), "the prompt encodes to no tokens");
  return ids;
}

// Rendered with the chat template and tokenized without adding special tokens, as apply_chat_template does.
std::vector<int> encode_messages(const json& messages, bool add_generation_prompt, const ParseContext& c) {
  MESH_CHECK(messages.is_array() && !messages.empty(), "\"messages\" must be a non-empty list");
  for (const json& m : messages)
    MESH_CHECK(m.is_object() && m.contains("role") && m["role"].is_string(),
               "every message needs a \"role\" string (and usually \"content\")");
  return encode_text(c.chat().render(messages, add_generation_prompt), c, false);
}

std::vector<int> token_ids(const json& ids, int vocab_size) {
  MESH_CHECK(ids.is_array() && !ids.empty(), "\"prompt_ids\" must be a non-empty list of token ids");
  std::vector<int> out;
  for (const json& v : ids) {
    MESH_CHECK(v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() < vocab_size, "prompt_ids entry ",
               v.dump(), " is not a token id in [0, ", vocab_size, ")");
    out.push_back(v.get<int>());
  }
  return out;
}

// max_tokens, temperature, top_k, top_p, min_p, seed and stop, where present in j.
void sampling_fields(const json& j, int vocab_size, Request& r) {
  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    if (!j.contains(key) || j[key].is_null()) continue;
    MESH_CHECK(j[key].is_number_integer() && j[key].get<int64_t>() >= 1 && j[key].get<int64_t>() <= (1 << 30), "\"",
               key, "\" must be a positive integer");
    r.max_tokens = j[key].get<int>();
  }
  const auto number = [&](const char* key, double lo, double hi, double& out) {
    if (!j.contains(key) || j[key].is_null()) return;
    MESH_CHECK(j[key].is_number() && j[key].get<double>() >= lo && j[key].get<double>() <= hi, "\"", key,
               "\" must be a number in [", lo, ", ", hi, "], got ", j[key].dump());
    out = j[key].get<double>();
  };
  number("temperature", 0.0, 100.0, r.sampling.temperature);
  number("top_p", 1e-9, 1.0, r.sampling.top_p);
  number("min_p", 0.0, 1.0, r.sampling.min_p);
  if (j.contains("top_k") && !j["top_k"].is_null()) {
    MESH_CHECK(j["top_k"].is_number_integer() && j["top_k"].get<int64_t>() >= -1,
               "\"top_k\" must be a non-negative integer");
    r.sampling.top_k = int(std::clamp<int64_t>(j["top_k"].get<int64_t>(), 0, vocab_size));
  }
  if (j.contains("seed") && !j["seed"].is_null()) {
    MESH_CHECK(j["seed"].is_number_integer() && j["seed"].get<int64_t>() >= 0, "\"seed\" must be a non-negative integer");
    r.sampling.seed = j["seed"].get<uint64_t>();
  }
  if (j.contains("stop") && !j["stop"].is_null()) {
    const json& s = j["stop"];
    const auto add = [&](const json& v) {
      MESH_CHECK(v.is_string() && !v.get<std::string>().empty(), "\"stop\" must be a non-empty string or a list of them");
      r.stop.push_back(v.get<std::string>());
    };
    if (s.is_array()) {
      for (const json& v : s) add(v);
    } else {
      add(s);
    }
  }
}

Request with_defaults(size_t index, const ParseContext& c) {
  Request r;
  r.max_tokens = c.defaults.max_tokens;
  r.sampling = c.defaults.sampling;
  r.sampling.seed = c.defaults.sampling.seed + index;
  r.id = std::to_string(index);
  return r;
}

}  // namespace

Request parse_simple_line(const json& j, size_t index, const ParseContext& c) {
  static const std::set<std::string> known = {"id",    "prompt", "prompt_ids", "messages", "add_generation_prompt",
                                              "max_tokens", "temperature", "top_k", "top_p", "min_p", "seed", "stop"};
  for (auto& [key, value] : j.items())
    MESH_CHECK(known.count(key), "unknown field \"", key, "\" (known: id, prompt, prompt_ids, messages, "
               "add_generation_prompt, max_tokens, temperature, top_k, top_p, min_p, seed, stop)");
  Request r = with_defaults(index, c);
  if (j.contains("id")) {
    const json& id = j["id"];
    MESH_CHECK(id.is_string() || id.is_number_integer(), "\"id\" must be a string or an integer");
    r.id = id.is_string() ? id.get<std::string>() : id.dump();
    MESH_CHECK(!r.id.empty(), "\"id\" must not be empty");
  }
  const int given = int(j.contains("prompt")) + int(j.contains("prompt_ids")) + int(j.contains("messages"));
  MESH_CHECK(given == 1, "give exactly one of \"prompt\", \"prompt_ids\" or \"messages\"");
  if (j.contains("prompt")) {
    MESH_CHECK(j["prompt"].is_string(), "\"prompt\" must be a string");
    r.prompt = encode_text(j["prompt"].get<std::string>(), c, true);
  } else if (j.contains("prompt_ids")) {
    r.prompt = token_ids(j["prompt_ids"], c.vocab_size);
  } else {
    const json agp = j.value("add_generation_prompt", json(true));
    MESH_CHECK(agp.is_boolean(), "\"add_generation_prompt\" must be true or false");
    r.prompt = encode_messages(j["messages"], agp.get<bool>(), c);
  }
  sampling_fields(j, c.vocab_size, r);
  return r;
}

Request parse_openai_line(const json& j, size_t index, const ParseContext& c) {
  Request r = with_defaults(index, c);
  MESH_CHECK(j.contains("custom_id") && j["custom_id"].is_string() && !j["custom_id"].get<std::string>().empty(),
             "an OpenAI batch line needs a non-empty \"custom_id\" string");
  r.custom_id = r.id = j["custom_id"].get<std::string>();
  MESH_CHECK(!j.contains("method") || j["method"] == "POST", "\"method\" must be \"POST\"");
  MESH_CHECK(!j.contains("url") || j["url"].is_string(), "\"url\" must be a string");
  const std::string url = j.contains("url") ? j["url"].get<std::string>() : "";
  MESH_CHECK(url == "/v1/chat/completions" || url == "/v1/completions",
             "\"url\" must be \"/v1/chat/completions\" or \"/v1/completions\", got \"", url, "\"");
  MESH_CHECK(j.contains("body") && j["body"].is_object(), "an OpenAI batch line needs a \"body\" object");
  const json& body = j["body"];
  MESH_CHECK(!body.contains("n") || body["n"] == 1, "\"n\" must be 1 (one completion per request)");
  MESH_CHECK(!body.contains("stream") || body["stream"] == false || body["stream"].is_null(),
             "\"stream\" is not supported in a batch");
  if (body.contains("model") && body["model"].is_string()) r.model = body["model"].get<std::string>();
  if (url == "/v1/chat/completions") {
    r.api = Request::Api::kChat;
    MESH_CHECK(body.contains("messages"), "a chat completion body needs \"messages\"");
    r.prompt = encode_messages(body["messages"], true, c);
  } else {
    r.api = Request::Api::kCompletion;
    MESH_CHECK(body.contains("prompt"), "a completion body needs \"prompt\"");
    const json& p = body["prompt"];
    if (p.is_string()) r.prompt = encode_text(p.get<std::string>(), c, true);
    else r.prompt = token_ids(p, c.vocab_size);  // a list of token ids
  }
  sampling_fields(body, c.vocab_size, r);
  return r;
}

Request parse_text_line(const std::string& text, size_t index, const ParseContext& c) {
  Request r = with_defaults(index, c);
  r.prompt = encode_text(text, c, true);
  return r;
}

}  // namespace meshlm
