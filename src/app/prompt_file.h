// The prompt file: JSONL, one request per line:
//   {"id": "a", "prompt": "text"}  or  {"id": "b", "prompt_ids": [1, 403]}
// with optional max_tokens, temperature, top_k, top_p, min_p, seed, stop overriding the command-line defaults.
#pragma once
#include <string>
#include <vector>

#include "runtime/request.h"
#include "tokenizer/tokenizer.h"

namespace meshlm {

struct RequestDefaults {
  int max_tokens = 256;
  SamplingParams sampling;  // sampling.seed is the base: request i without a seed gets base + i
};

// Parses and validates every line before any generation. Throws Error "FILE:LINE: what is wrong".
// tokenizer may be null when every line gives prompt_ids. Prompts longer than max_context are rejected.
std::vector<Request> read_prompt_file(const std::string& path, const RequestDefaults& defaults,
                                      const Tokenizer* tokenizer, int vocab_size, int max_context);

// Parsed requests as JSON text, for rank 0 to hand them to the other ranks (which never read the prompt file).
std::string requests_to_json(const std::vector<Request>& requests);
std::vector<Request> requests_from_json(const std::string& text);

}  // namespace meshlm
