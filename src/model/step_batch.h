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
  int32_t top_logprobs = 0;  // return the chosen token's logprob and the k most likely tokens' (0: none)
};

// Token i belongs to the step's sequence seqs[i] at position positions[i]; a sequence's tokens appear in position
// order and its earlier positions are already in the cache. Sequence j's block table, blocks[tables[j] ..
// tables[j + 1]), lists the KV blocks of its positions in order: position p is in block p / block_tokens.
struct StepBatch {
  std::vector<int> tokens;      // (n_tokens)
  std::vector<int> positions;   // (n_tokens)
  std::vector<int> seqs;        // (n_tokens)
  std::vector<int> tables;      // (n_seqs + 1) offsets into blocks
  std::vector<int> blocks;      // (tables.back())
  std::vector<int> logit_rows;  // indices into tokens whose next-token logits are wanted
  std::vector<RowSpec> rows;    // (logit_rows.size())

  void clear() {
    tokens.clear(), positions.clear(), seqs.clear(), blocks.clear(), logit_rows.clear(), rows.clear();
    tables.assign(1, 0);
  }
  int64_t size() const { return int64_t(tokens.size()); }
  int64_t n_seqs() const { return tables.empty() ? 0 : int64_t(tables.size()) - 1; }
  const int* table(int seq) const { return blocks.data() + tables[size_t(seq)]; }
  int64_t table_size(int seq) const { return tables[size_t(seq) + 1] - tables[size_t(seq)]; }
  // The end of the run of tokens from i on that belong to i's sequence at consecutive positions (a prefill chunk;
  // a decode token is a run of one).
  int64_t run_end(int64_t i) const {
    int64_t j = i + 1;
    while (j < size() && seqs[size_t(j)] == seqs[size_t(i)] && positions[size_t(j)] == positions[size_t(j - 1)] + 1) ++j;
    return j;
  }
};

// What came of one step: a token per logit row, the advanced RNG states, and the rows whose logits were wanted.
struct StepResult {
  std::vector<int> tokens;           // (rows)
  std::vector<uint64_t> rng_states;  // (rows)
  std::vector<float> logits;         // (rows with want_logits, vocab_size), in row order
  // Rows with top_logprobs = k, in row order: the chosen token's log-probability, then k (id, logprob) pairs.
  std::vector<float> chosen_logprob;  // (rows with k > 0)
  std::vector<int> top_ids;           // (sum of k)
  std::vector<float> top_logprobs;    // (sum of k), most likely first
};

}  // namespace meshlm
