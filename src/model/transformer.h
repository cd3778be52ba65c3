// The transformer forward pass over one packed step: prefill and decode tokens of many sequences together,
// one GEMM per weight for the whole step. With tensor parallelism each rank holds whole heads and a slice of the
// MLP (Megatron): q/k/v and gate/up are split by output, o_proj and down_proj by input, and each of the latter is
// followed by one all-reduce over the tensor group. With pipeline parallelism a rank runs only its stage's layers:
// embed() on the first stage, head() on the last, and the activations travel between them. DeepSeek-V3's multi-head
// latent attention (model/mla.h) takes the place of q/k/v attention when the config has it.
#pragma once
#include <cstdint>
#include <vector>

#include "comm/group.h"
#include "io/hf_config.h"
#include "model/kv_cache.h"
#include "model/mla.h"
#include "model/moe.h"
#include "model/parallel_layout.h"
#include "model/rope.h"
#include "model/row_parallel.h"
#include "model/step_batch.h"
#include "model/weights.h"
#include "kernels/attention.h"

namespace meshlm {

class Transformer {
 public:
  // tp: the tensor group, or null for a single tensor rank.
  // max_rows: logit rows per step (sequences in flight); kv_blocks: blocks of the paged KV cache (the same number
  // on every rank of the replica); max_ctx: positions per sequence.
  Transformer(const ModelConfig& config, ModelWeights weights, const ParallelLayout& layout, Group* tp,
              int64_t max_rows, int64_t kv_blocks, int64_t max_ctx, int64_t max_step_tokens);

  // How the tensor group's all-reduces travel (default: fp32, four overlapped parts).
  void set_tp_comm(TpComm comm) { row_parallel_ = RowParallel(tp_, comm); }
  // How DeepSeek-V3 attention meets kv_b_proj (default auto).
  void set_mla_mode(MlaMode mode) { mla_.set_mode(mode); }

  // First stage: the residual stream of the step's tokens from the (vocab-split) embedding.
  void embed(const StepBatch& batch);
  // This rank's layers on the residual stream, writing their keys and values into the cache.
  void run_layers(const StepBatch& batch);
  // Last stage: final norm and this rank's vocab slice of the lm_head for the logit rows.
  // Returns (batch.logit_rows.size(), layout.vocab.size()) logits, valid until the next call.
  const float* head(const StepBatch& batch);

  // The residual stream (max_step_tokens, dim): what one pipeline stage hands to the next.
  float* activations() { return x_.data(); }
  const ParallelLayout& layout() const { return layout_; }

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  int64_t max_ctx() const { return max_ctx_; }
  int64_t kv_blocks() const { return cache_.n_blocks(); }
  int64_t max_step_tokens() const { return max_step_tokens_; }
  uint64_t kv_bytes() const { return cache_.bytes(); }
  // Mixture-of-experts layers: expert load and the routed-expert bytes read so far.
  const MoeMlp& moe() const { return moe_; }

 private:
  void check_batch(const StepBatch& batch) const;  // throws Error on tokens or tables that do not fit the cache
  void attention_block(int64_t layer, const StepBatch& batch);
  void mlp_block(int64_t layer, int64_t n);

  ModelConfig config_;
  ModelWeights weights_;
  ParallelLayout layout_;
  Group* tp_;
  RowParallel row_parallel_;  // o_proj and down_proj outputs, summed over tp_
  MoeMlp moe_;                // the MoE layers' routing, grouping and buffers (shared by the layers)
  MlaAttention mla_;          // DeepSeek-V3 attention's buffers (shared by the layers)
  Rope rope_;
  KVCache cache_;
  int64_t max_step_tokens_, max_ctx_, max_rows_;
  int64_t n_heads_local_, n_kv_heads_local_, hidden_local_;

  // Activations, preallocated for max_step_tokens rows (T).
  std::vector<float> x_;        // (T, dim) residual stream
  std::vector<float> xb_;       // (T, dim) normed input / block output
  std::vector<float> q_;        // (T, n_heads_local * head_dim)
  std::vector<float> k_, v_;    // (T, n_kv_heads_local * head_dim)
  std::vector<float> att_;      // (T, n_heads_local * head_dim); MLA: (T, n_heads_local * v)
  std::vector<float> gate_;     // (T, hidden_local)
  std::vector<float> up_;       // (T, hidden_local)
  std::vector<float> moe_out_;  // (T, dim) MoE layer output (its input xb_ is read while it is summed)
  std::vector<float> cos_, sin_;  // (T, rotated dims / 2)
  std::vector<float> scores_;   // (kernel threads, max_ctx)
  std::vector<RunScratch> run_scratch_;  // per kernel thread: attend_run's gathered keys and scores
  std::vector<Range> runs_;       // this step's prefill runs: token ranges of one sequence, consecutive positions
  std::vector<int64_t> singles_;  // the other tokens
  static constexpr int64_t kMinRun = 4;  // shorter runs go token by token
  std::vector<float> head_in_;  // (max_rows, dim) normed rows whose logits are wanted
  std::vector<float> logits_;   // (max_rows, vocab_local)
};

}  // namespace meshlm
