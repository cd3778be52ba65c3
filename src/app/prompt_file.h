// The prompt file, in one of three formats (detected from its first line, or set with --prompt-format):
//   jsonl   {"id": "a", "prompt": "text"} | {"prompt_ids": [1, 403]} | {"messages": [...]} with optional
//           max_tokens, temperature, top_k, top_p, min_p, seed, stop, add_generation_prompt
//   openai  {"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions" | "/v1/completions", "body": {...}}
//   text    one prompt per line
// Every line is read before any generation. A bad line (or a prompt longer than the context) becomes an error
// record in its place in the output; with fail_on_error the first one stops the run instead.
#pragma once
#include <string>
#include <vector>

#include "app/request_parse.h"

namespace meshlm {

enum class PromptFormat { kAuto, kJsonl, kOpenAI, kText };
PromptFormat parse_prompt_format(const std::string& name);  // auto | jsonl | openai | text
const char* prompt_format_name(PromptFormat f);

struct LineError {
  size_t entry = 0, line = 0;
  std::string id;       // the line's id or custom_id when it could be read
  std::string message;  // "FILE:LINE: what is wrong"
};

struct PromptFile {
  PromptFormat format = PromptFormat::kJsonl;
  std::vector<Request> requests;   // in file order; Request::entry is the output position
  std::vector<LineError> errors;
  size_t entries = 0;              // non-blank lines = output lines
};

struct PromptOptions {
  PromptFormat format = PromptFormat::kAuto;
  bool fail_on_error = false;
  int max_context = 0;
};

PromptFile read_prompt_file(const std::string& path, const ParseContext& context, const PromptOptions& options);
// The same, with a model's chat template for "messages" lines (chat_template: a file instead of the model's, or "").
// A template that is there is parsed first, so that one that cannot run stops the job at start-up rather than
// becoming an error record per "messages" line; without one, such lines are error records.
PromptFile read_prompt_file(const std::string& path, const std::string& model_dir, const std::string& chat_template,
                            const Tokenizer* tokenizer, const RequestDefaults& defaults, int vocab_size,
                            const PromptOptions& options);

// Parsed requests as JSON text, for rank 0 to hand them to the other ranks (which never read the prompt file).
std::string requests_to_json(const std::vector<Request>& requests);
std::vector<Request> requests_from_json(const std::string& text);

}  // namespace meshlm
