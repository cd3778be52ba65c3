// The transformer forward pass over one packed step: prefill and decode tokens of many sequences together,
// one GEMM per weight for the whole step.
#pragma once
#include <cstdint>
#include <vector>

#include "io/hf_config.h"
#include "model/kv_cache.h"
#include "model/parallel_layout.h"
#include "model/rope.h"
#include "model/weights.h"

namespace meshlm {

// The tokens of one step, packed. Token i belongs to the sequence in KV slot slots[i] at position positions[i];
// a sequence's tokens appear in position order and its earlier positions are already in the cache.
struct StepBatch {
  std::vector<int> tokens;      // (n_tokens)
  std::vector<int> positions;   // (n_tokens)
  std::vector<int> slots;       // (n_tokens)
  std::vector<int> logit_rows;  // indices into tokens whose next-token logits are wanted

  void clear() { tokens.clear(); positions.clear(); slots.clear(); logit_rows.clear(); }
  int64_t size() const { return int64_t(tokens.size()); }
};

class Transformer {
 public:
  Transformer(const ModelConfig& config, ModelWeights weights, const ParallelLayout& layout, int64_t max_slots,
              int64_t max_ctx, int64_t max_step_tokens);

  // Runs one step. Returns logits (batch.logit_rows.size(), vocab_size), valid until the next call.
  const float* forward(const StepBatch& batch);

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  int64_t max_ctx() const { return cache_.max_ctx(); }
  int64_t max_step_tokens() const { return max_step_tokens_; }
  uint64_t kv_bytes() const { return cache_.bytes(); }

 private:
  void attention_block(int64_t layer, const StepBatch& batch);
  void mlp_block(int64_t layer, int64_t n);

  ModelConfig config_;
  ModelWeights weights_;
  ParallelLayout layout_;
  Rope rope_;
  KVCache cache_;
  int64_t max_step_tokens_;
  int64_t n_heads_local_, n_kv_heads_local_, hidden_local_;

  // Activations, preallocated for max_step_tokens rows (T).
  std::vector<float> x_;        // (T, dim) residual stream
  std::vector<float> xb_;       // (T, dim) normed input / block output
  std::vector<float> q_;        // (T, n_heads_local * head_dim)
  std::vector<float> k_, v_;    // (T, n_kv_heads_local * head_dim)
  std::vector<float> att_;      // (T, n_heads_local * head_dim)
  std::vector<float> gate_;     // (T, hidden_local)
  std::vector<float> up_;       // (T, hidden_local)
  std::vector<float> cos_, sin_;  // (T, head_dim / 2)
  std::vector<float> scores_;   // (max_ctx)
  std::vector<float> head_in_;  // (slots, dim) normed rows whose logits are wanted
  std::vector<float> logits_;   // (slots, vocab_size)
};

}  // namespace meshlm
