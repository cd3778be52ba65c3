// One prompt-file line to a Request, for the three formats: meshlm JSONL ({"prompt" | "prompt_ids" | "messages"}),
// OpenAI batch ({"custom_id", "method", "url", "body"}) and plain text. Each throws Error with what is wrong
// (without the FILE:LINE prefix, which the caller adds).
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "chat/chat_template.h"
#include "runtime/request.h"
#include "tokenizer/tokenizer.h"

namespace meshlm {

struct RequestDefaults {
  int max_tokens = 256;
  SamplingParams sampling;  // sampling.seed is the base: request i without a seed gets base + i
};

struct ParseContext {
  RequestDefaults defaults;
  const Tokenizer* tokenizer = nullptr;              // null: only prompt_ids are possible
  std::function<const ChatTemplate&()> chat;         // loads the chat template on first use; throws if there is none
  int vocab_size = 0;
};

Request parse_simple_line(const nlohmann::ordered_json& j, size_t index, const ParseContext& c);
Request parse_openai_line(const nlohmann::ordered_json& j, size_t index, const ParseContext& c);
Request parse_text_line(const std::string& text, size_t index, const ParseContext& c);

}  // namespace meshlm
