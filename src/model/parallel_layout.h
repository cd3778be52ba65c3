// Which part of the model this rank holds. Every shard range is computed here, once, by pure functions.
//
// With one rank everything is whole: heads [0, n_heads), kv heads [0, n_kv_heads), hidden [0, hidden_dim),
// vocab [0, vocab_size), layers [0, n_layers). The loader and the transformer only ever read these ranges,
// so tensor and pipeline splits change this file and nothing in the layer code.
#pragma once
#include <cstdint>

#include "io/hf_config.h"

namespace meshlm {

struct Range {
  int64_t begin = 0, end = 0;  // half-open
  int64_t size() const { return end - begin; }
};

// Split [0, n) into `parts` contiguous pieces whose sizes differ by at most one (larger pieces first);
// returns piece `index`. Example: n=6, parts=4 -> [0,2) [2,4) [4,5) [5,6).
Range even_split(int64_t n, int64_t parts, int64_t index);

struct ParallelLayout {
  int tp_rank = 0, tp_size = 1;
  int pp_rank = 0, pp_size = 1;
  Range q_heads;    // this rank's query heads
  Range kv_heads;   // this rank's kv heads
  Range hidden;     // this rank's slice of intermediate_size
  Range vocab;      // this rank's slice of the vocabulary
  Range layers;     // this rank's layers

  bool first_stage() const { return pp_rank == 0; }
  bool last_stage() const { return pp_rank == pp_size - 1; }

  static ParallelLayout single(const ModelConfig& c);
};

}  // namespace meshlm
