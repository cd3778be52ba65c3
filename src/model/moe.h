// Mixture-of-experts MLP (Mixtral, Qwen2-MoE, Qwen3-MoE, DeepSeek-V3): routing, grouping tokens by expert, and the forward pass of
// this rank's experts under tensor parallelism (model/parallel_layout.h: whole experts per rank, or a slice of each).
//
// Routing is computed the same way on every rank and every machine: router logits are float·float products summed
// in double in a fixed order (each product is exact in double, so fused or not, every ISA gets the same bits), and
// the softmax and top-k run in double. Ties in the top-k go to the lower expert id. So the ranks of a tensor group,
// each holding different experts, always agree on where a token goes.
#pragma once
#include <cstdint>
#include <vector>

#include "io/hf_config.h"
#include "model/parallel_layout.h"
#include "model/row_parallel.h"
#include "model/weights.h"

namespace meshlm {

// The top k of softmax(logits (n_experts)): ids by decreasing probability (ties: lower id first), and their
// probabilities, rescaled to sum 1 when `renormalize`.
void top_k_softmax(const double* logits, int n_experts, int k, bool renormalize, int32_t* ids, float* weights);

// DeepSeek-V3's choice (noaux_tc), in double: s = sigmoid(logits), b = s + bias (the bias only chooses); groups of
// n_experts / n_group consecutive experts score the sum of their 2 largest b, the topk_group best groups are kept
// and the other experts' b set to 0; the k largest b are chosen (ties: lower id first), weighted by their s
// (divided by the chosen s's sum when m.norm_topk) times m.routed_scale.
void top_k_grouped_sigmoid(const double* logits, const float* bias, const MoeConfig& m, int32_t* ids, float* weights);

// ids (n, k) and weights (n, k) for the rows of x (n, dim), with router (n_experts, dim) and, for grouped routing,
// the score bias (n_experts).
void route(const float* x, int64_t n, int64_t dim, const float* router, const float* bias, const MoeConfig& m,
           int32_t* ids, float* weights);

// x·w in double, summed in index order: the same bits on every rank and ISA.
double exact_dot(const float* x, const float* w, int64_t n);

// The (token, weight) pairs routed to each expert of `local`, grouped by expert, tokens in increasing order within an
// expert (a counting sort): expert local.begin + e owns pairs [offset[e], offset[e+1]).
struct ExpertGroups {
  std::vector<int64_t> offset;  // (local.size() + 1)
  std::vector<int32_t> token;   // (pairs) row of the step
  std::vector<float> weight;    // (pairs) routing weight

  void build(const int32_t* ids, const float* weights, int64_t n, int k, Range local);
  int64_t rows(int64_t e) const { return offset[size_t(e + 1)] - offset[size_t(e)]; }
};

class MoeMlp {
 public:
  MoeMlp() = default;
  MoeMlp(const ModelConfig& c, const ParallelLayout& l, int64_t max_tokens);

  // out (n, dim) = the layer's MoE output for the normed rows xb (n, dim), summed over the tensor group by `sum`.
  void forward(const MoeWeights& w, const float* xb, int64_t n, RowParallel& sum, float* out);

  // Token rows this rank has run through each expert (n_experts, global ids), over its layers and steps.
  const std::vector<int64_t>& expert_rows() const { return expert_rows_; }
  // Routed-expert weight bytes read so far (an expert's matrices count once per step that routes a token to it).
  uint64_t expert_bytes_read() const { return bytes_read_; }

 private:
  MoeConfig moe_;
  int64_t dim_ = 0;
  Range experts_;
  int64_t hidden_ = 0, shared_hidden_ = 0;  // this rank's intermediate sizes: per routed expert, shared expert
  ExpertGroups groups_;
  std::vector<int32_t> ids_;        // (T, k)
  std::vector<float> weights_;      // (T, k)
  std::vector<float> xe_;           // (T, dim) rows routed to one expert, gathered
  std::vector<float> gate_, up_;    // (T * k, hidden): every pair's SwiGLU input, expert after expert
  std::vector<float> sgate_, sup_;  // (T, shared_hidden) shared expert
  std::vector<float> shared_w_;     // (T) sigmoid(x · shared_expert_gate), or 1 (DeepSeek-V3)
  std::vector<float> down_;         // (T, dim) one expert's down projection, one part of the output
  std::vector<int64_t> expert_rows_;
  uint64_t bytes_read_ = 0;
};

}  // namespace meshlm
