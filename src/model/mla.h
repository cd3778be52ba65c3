// DeepSeek-V3 multi-head latent attention on this rank's heads, for one packed step (model/transformer.h runs it in
// place of grouped-query attention when config.mla is on).
//
//   q      = q_b_proj · rms(q_a_proj · x)  (or q_proj · x)         per head [q_nope (dn), q_pe (dr)]
//   [c, k_pe] = kv_a_proj_with_mqa · x;  row = [rms(c), rope(k_pe)]   cached: r + dr floats per token and layer
//   score_h(t) = (W_kᵀ·q_nope_h)·c_t + rope(q_pe_h)·k_pe_t             absorbed: kv_b_proj's k rows act on the query
//   out_h  = W_v · Σ_t p_h(t)·c_t                                     and its v rows on the attended latent
//
// Tensor parallelism splits by heads: the latent projections are computed whole on every rank (so every rank of a
// tensor group caches the same rows), q_b, kv_b and o_proj by head; o_proj's sum over ranks is the caller's.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/hf_config.h"
#include "model/kv_cache.h"
#include "model/step_batch.h"
#include "model/weights.h"

namespace meshlm {

// How attention meets kv_b_proj (--mla-attention): absorbed into the query and output sides (scores straight against
// the cached latents), expanded into every position's per-head keys and values (as transformers computes it), or
// auto: expanded for prefill runs, absorbed for decode tokens (README "Speed" has the measurements).
enum class MlaMode { kAbsorb, kExpand, kAuto };
MlaMode parse_mla_mode(const std::string& text);  // throws Error naming the flag

class MlaAttention {
 public:
  MlaAttention() = default;
  // heads: this rank's heads; max_tokens: tokens per step.
  MlaAttention(const ModelConfig& c, int64_t heads, int64_t max_tokens);

  // out (n, heads · v) = the heads' attention outputs for the normed rows xb (n, dim), before o_proj. Writes the
  // step's latent rows into `cache` (layer `layer`). cos, sin: (n, dr / 2) per token.
  void forward(const LayerWeights& L, KVCache& cache, int64_t layer, const StepBatch& batch, const float* xb,
               const float* cos, const float* sin, float* out);
  void set_mode(MlaMode mode) { mode_ = mode; }

 private:
  struct Scratch {  // one kernel thread's
    std::vector<float> in, out;  // (T, max(dn, r)) and (T, max(r, dv)): a head's rows for its projections
    std::vector<float> keys;     // (positions, r + dr) a sequence's latent rows, gathered
    std::vector<float> scores;
    std::vector<float> wk, wv;   // expanded: a head's W_kᵀ (r, dn) and W_v (dv, r) as fp32
    std::vector<float> k, v;     // expanded: (positions, dn) and (positions, dv) a head's keys and values
  };
  struct Run {
    int64_t begin, end;  // tokens of one sequence at consecutive positions
    bool expanded;
  };
  void plan_runs(const StepBatch& batch);
  template <class Src, class Dst>
  void per_head(const std::vector<Matrix>& w, int64_t in, int64_t out, Src src, Dst dst);
  void absorb(const LayerWeights& L);
  void attend(const KVCache& cache, int64_t layer, const StepBatch& batch);
  void unembed(const LayerWeights& L, float* out);
  void expand(const LayerWeights& L, const KVCache& cache, int64_t layer, const StepBatch& batch, float* out);

  MlaConfig a_;
  int64_t heads_ = 0;
  float scale_ = 1;
  std::vector<float> qa_;     // (T, q_lora)
  std::vector<float> q_;      // (T, heads · (dn + dr))
  std::vector<float> kva_;    // (T, r + dr) this step's latent rows
  std::vector<float> qabs_;   // (T, heads · (r + dr)) absorbed query rows
  std::vector<float> lat_;    // (T, heads · r) attended latents
  std::vector<Scratch> scratch_;
  MlaMode mode_ = MlaMode::kAuto;
  std::vector<Run> runs_;           // this step's runs of consecutive positions of one sequence
  std::vector<int64_t> absorbed_;   // the tokens of runs that are not expanded
};

}  // namespace meshlm
