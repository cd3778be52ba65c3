// One generation request and its result.
#pragma once
#include <random>
#include <string>
#include <vector>

#include "runtime/sampler.h"

namespace meshlm {

struct Request {
  std::string id;
  std::vector<int> prompt;          // token ids, BOS included where the tokenizer adds it
  int max_tokens = 256;
  SamplingParams sampling;
  std::vector<std::string> stop;    // stop strings: generation ends before the first one appears in the text
  size_t line = 0;                  // 1-based line in the prompt file
  size_t entry = 0;                 // position of its line among the file's non-blank lines (= output position)
  // How the answer is shaped: a plain meshlm line, or an OpenAI batch line for /v1/chat/completions or /v1/completions.
  enum class Api { kSimple, kChat, kCompletion } api = Api::kSimple;
  std::string custom_id, model;     // OpenAI batch: the caller's custom_id and body.model
};

struct Completion {
  std::vector<int> token_ids;       // generated ids only; the eos id last when generation stopped on it
  std::string text;                 // decoded, special tokens skipped, cut before a matched stop string
  std::string finish_reason;        // "stop" or "length"
  std::vector<float> first_logits;  // (vocab_size) logits of the first generated position, if asked for
  // Seconds: from the start of the run to admission into a slot; from admission to the first token; from the first
  // token to the last.
  double queue_s = 0, ttft_s = 0, decode_s = 0;
  // With EngineOptions::top_logprobs = k: per generated token, its logprob and the k most likely (id, logprob).
  std::vector<float> chosen_logprob;  // (tokens)
  std::vector<int> top_ids;           // (tokens * k)
  std::vector<float> top_logprobs;    // (tokens * k)
};

// n requests of `prompt` random token ids each (a fixed seed: the same on every rank), `gen` tokens to generate:
// what bench and plan --verify run.
inline std::vector<Request> random_requests(int64_t n, int prompt, int gen, int vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<Request> out(static_cast<size_t>(n));
  for (Request& r : out) {
    r.prompt.resize(size_t(prompt));
    for (int& t : r.prompt) t = int(rng() % unsigned(vocab));
    r.max_tokens = gen;
  }
  return out;
}

}  // namespace meshlm
