#include "app/prompt_file.h"

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "chat/chat_template.h"
#include "core/check.h"
#include "core/text_util.h"
#include "tokenizer/utf8.h"

namespace meshlm {
namespace {
using json = nlohmann::ordered_json;

bool is_openai(const json& j) { return j.is_object() && j.contains("custom_id") && j.contains("body"); }

// The format of the first non-blank line: an OpenAI batch object, another JSON object, or text.
PromptFormat detect(const std::string& first_line) {
  try {
    check_json_depth(first_line, "");
  } catch (const Error&) {  // too deep to parse: an object line (its request becomes an error record) or text
    const size_t first = first_line.find_first_not_of(" \t");
    return first != std::string::npos && first_line[first] == '{' ? PromptFormat::kJsonl : PromptFormat::kText;
  }
  try {
    const json j = json::parse(first_line);
    if (is_openai(j)) return PromptFormat::kOpenAI;
    if (j.is_object()) return PromptFormat::kJsonl;
  } catch (const json::exception&) {
  }
  return PromptFormat::kText;
}

}  // namespace

PromptFormat parse_prompt_format(const std::string& name) {
  if (name == "auto") return PromptFormat::kAuto;
  if (name == "jsonl") return PromptFormat::kJsonl;
  if (name == "openai") return PromptFormat::kOpenAI;
  if (name == "text") return PromptFormat::kText;
  fail("--prompt-format must be auto, jsonl, openai or text, got '", name, "'");
}

const char* prompt_format_name(PromptFormat f) {
  static const char* names[] = {"auto", "jsonl", "openai", "text"};
  return names[int(f)];
}

PromptFile read_prompt_file(const std::string& path, const ParseContext& context, const PromptOptions& options) {
  std::ifstream in(path, std::ios::binary);
  MESH_CHECK(in.good(), path, ": cannot open the prompt file");
  PromptFile file;
  file.format = options.format;
  std::set<std::string> ids;
  size_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line_no == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // a UTF-8 byte-order mark
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    if (file.format == PromptFormat::kAuto) file.format = detect(line);
    const std::string where = path + ":" + std::to_string(line_no);
    const size_t entry = file.entries++;
    LineError error{entry, line_no, "", ""};
    try {
      const size_t bad = utf8_invalid_at(line);
      MESH_CHECK(bad == std::string::npos, "not valid UTF-8 (byte ", bad + 1, " of the line)");
      Request r;
      if (file.format == PromptFormat::kText) {
        r = parse_text_line(line, entry, context);
      } else {
        const json j = parse_json_object(line, "");
        for (const char* key : {"id", "custom_id"})  // name the line in its error record when we can
          if (j.contains(key) && j[key].is_string()) error.id = j[key].get<std::string>();
        try {
          r = file.format == PromptFormat::kOpenAI ? parse_openai_line(j, entry, context)
                                                   : parse_simple_line(j, entry, context);
        } catch (const json::exception& e) {
          fail(e.what());
        }
      }
      error.id = r.id;
      MESH_CHECK(ids.insert(r.id).second, "duplicate id \"", r.id, "\"");
      MESH_CHECK(int64_t(r.prompt.size()) <= options.max_context, "the prompt has ", r.prompt.size(),
                 " tokens but the context holds ", options.max_context);
      r.line = line_no;
      r.entry = entry;
      file.requests.push_back(std::move(r));
    } catch (const Error& e) {
      error.message = where + ": " + e.what();
      if (options.fail_on_error) throw Error(error.message);
      file.errors.push_back(std::move(error));
    }
  }
  MESH_CHECK(file.entries > 0, path, ": no requests (expected JSONL lines like {\"id\": \"a\", \"prompt\": \"...\"})");
  return file;
}

std::string requests_to_json(const std::vector<Request>& requests) {
  json all = json::array();
  for (const Request& r : requests)
    all.push_back({{"id", r.id}, {"prompt", r.prompt}, {"max_tokens", r.max_tokens}, {"stop", r.stop},
                   {"line", r.line}, {"entry", r.entry}, {"api", int(r.api)}, {"custom_id", r.custom_id},
                   {"model", r.model}, {"temperature", r.sampling.temperature}, {"top_k", r.sampling.top_k},
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
    r.entry = j["entry"].get<size_t>();
    r.api = Request::Api(j["api"].get<int>());
    r.custom_id = j["custom_id"].get<std::string>();
    r.model = j["model"].get<std::string>();
    r.sampling.temperature = j["temperature"].get<double>();
    r.sampling.top_k = j["top_k"].get<int>();
    r.sampling.top_p = j["top_p"].get<double>();
    r.sampling.min_p = j["min_p"].get<double>();
    r.sampling.seed = j["seed"].get<uint64_t>();
    out.push_back(std::move(r));
  }
  return out;
}

PromptFile read_prompt_file(const std::string& path, const std::string& model_dir, const std::string& chat_template,
                            const Tokenizer* tokenizer, const RequestDefaults& defaults, int vocab_size,
                            const PromptOptions& options) {
  std::unique_ptr<ChatTemplate> chat;
  if (!chat_template.empty() || ChatTemplate::in_config(model_dir))
    chat = std::make_unique<ChatTemplate>(ChatTemplate::load(model_dir, chat_template));
  const ParseContext context{defaults, tokenizer, [&]() -> const ChatTemplate& {
                               if (!chat) chat = std::make_unique<ChatTemplate>(ChatTemplate::load(model_dir,
                                                                                                  chat_template));
                               return *chat;
                             }, vocab_size};
  return read_prompt_file(path, context, options);
}

}  // namespace meshlm
