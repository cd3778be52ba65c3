// The generation loop: admits requests into free KV slots, packs prefill chunks and decode tokens of all
// active sequences into one step, samples, and retires finished sequences so that new ones can start.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "model/transformer.h"
#include "runtime/request.h"
#include "tokenizer/tokenizer.h"

namespace meshlm {

struct EngineOptions {
  int batch_size = 8;               // sequences in flight (KV slots)
  bool keep_first_logits = false;   // fill Completion::first_logits
};

struct EngineStats {
  int64_t steps = 0, prompt_tokens = 0, generated_tokens = 0;
  double forward_s = 0, sample_s = 0, total_s = 0;
};

class Engine {
 public:
  // tokenizer may be null: then text stays empty and stop strings cannot be matched.
  Engine(Transformer& model, const Tokenizer* tokenizer, std::vector<int> eos_ids, EngineOptions options);

  // Generates for every request; calls on_done(request index, completion) as each one finishes.
  void run(const std::vector<Request>& requests, const std::function<void(size_t, Completion&&)>& on_done);
  const EngineStats& stats() const { return stats_; }

 private:
  struct Sequence {
    size_t request = 0;
    int slot = -1;
    int64_t fed = 0;                // tokens of prompt + generated already in the KV cache
    std::vector<int> generated;
    Rng rng;
    bool text_cut = false;          // result.text already cut at a stop string
    bool finished = false;
    Completion result;
  };
  // Appends this sequence's tokens for the step within `budget`; returns how many it added.
  int64_t schedule(const Sequence& s, const Request& r, int64_t budget, StepBatch& batch) const;
  // Records the sampled token; returns true when the sequence is finished.
  bool accept(Sequence& s, const Request& r, int token);

  Transformer& model_;
  const Tokenizer* tokenizer_;
  std::vector<int> eos_ids_;
  EngineOptions options_;
  EngineStats stats_;
};

}  // namespace meshlm
