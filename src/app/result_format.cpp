#include "app/result_format.h"

#include <ctime>
#include <nlohmann/json.hpp>

namespace meshlm {
namespace {
using json = nlohmann::ordered_json;

std::string dump(const json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

json openai_body(const Request& r, const Completion& c, const std::string& model_name) {
  const bool chat = r.api == Request::Api::kChat;
  json choice = {{"index", 0}};
  if (chat) choice["message"] = {{"role", "assistant"}, {"content", c.text}};
  else choice["text"] = c.text;
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = c.finish_reason;
  return {{"id", std::string(chat ? "chatcmpl-" : "cmpl-") + std::to_string(r.entry)},
          {"object", chat ? "chat.completion" : "text_completion"},
          {"created", int64_t(std::time(nullptr))},
          {"model", r.model.empty() ? model_name : r.model},
          {"choices", json::array({choice})},
          {"usage", {{"prompt_tokens", r.prompt.size()},
                     {"completion_tokens", c.token_ids.size()},
                     {"total_tokens", r.prompt.size() + c.token_ids.size()}}}};
}

}  // namespace

std::string completion_line(const Request& r, const Completion& c, const std::string& model_name) {
  if (r.api != Request::Api::kSimple) {
    return dump({{"id", "batch_req_" + std::to_string(r.entry)},
                 {"custom_id", r.custom_id},
                 {"response", {{"status_code", 200}, {"request_id", "req_" + std::to_string(r.entry)},
                               {"body", openai_body(r, c, model_name)}}},
                 {"error", nullptr}});
  }
  return dump({{"id", r.id},
               {"text", c.text},
               {"token_ids", c.token_ids},
               {"prompt_tokens", r.prompt.size()},
               {"completion_tokens", c.token_ids.size()},
               {"finish_reason", c.finish_reason}});
}

std::string error_line(PromptFormat format, const LineError& e) {
  if (format == PromptFormat::kOpenAI) {
    return dump({{"id", "batch_req_" + std::to_string(e.entry)},
                 {"custom_id", e.id.empty() ? json(nullptr) : json(e.id)},
                 {"response", nullptr},
                 {"error", {{"code", "invalid_request"}, {"message", e.message}, {"line", e.line}}}});
  }
  return dump({{"id", e.id.empty() ? json(nullptr) : json(e.id)}, {"line", e.line}, {"error", e.message}});
}

}  // namespace meshlm
