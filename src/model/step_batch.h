// The tokens of one step, packed, and what to do with each row whose next-token logits are wanted.
#pragma once
#include <cstdint>
#include <vector>

#include "runtime/sampler.h"

namespace meshlm {

// How to pick the next token of one logit row. The sequence's RNG state travels with it, so that whichever
// rank samples draws the same numbers as a single rank would.
struct RowSpec {
  SamplingParams sampling;
  uint64_t rng_state = 0;
  bool want_logits = false;  // return this row's full logits (first-step dump)
};

// Token i belongs to the sequence in KV slot slots[i] at position positions[i]; a sequence's tokens appear in
// position order and its earlier positions are already in the cache.
struct StepBatch {
  std::vector<int> tokens;      // (n_tokens)
  std::vector<int> positions;   // (n_tokens)
  std::vector<int> slots;       // (n_tokens)
  std::vector<int> logit_rows;  // indices into tokens whose next-token logits are wanted
  std::vector<RowSpec> rows;    // (logit_rows.size())

  void clear() { tokens.clear(); positions.clear(); slots.clear(); logit_rows.clear(); rows.clear(); }
  int64_t size() const { return int64_t(tokens.size()); }
};

// What came of one step: a token per logit row, the advanced RNG states, and the rows whose logits were wanted.
struct StepResult {
  std::vector<int> tokens;           // (rows)
  std::vector<uint64_t> rng_states;  // (rows)
  std::vector<float> logits;         // (rows with want_logits, vocab_size), in row order
};

}  // namespace meshlm
