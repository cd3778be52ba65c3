// This rank's weights, loaded by Hugging Face name, checked against the config, kept in their stored dtype or
// quantized at load (--weight-dtype).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/aligned.h"
#include "io/hf_config.h"
#include "io/weight_index.h"
#include "kernels/matmul.h"
#include "model/parallel_layout.h"

namespace meshlm {

// A 2-D weight slice in its stored dtype, quantized into blocks along its rows, or MLX affine-quantized as stored.
struct Matrix {
  DType dtype = DType::kF32;
  int64_t rows = 0, cols = 0;
  // (rows, view().bytes_per_row()) row-major; affine: + 8 bytes of padding; q8_0/q4_0: 16-row panels (qpanel.h)
  AlignedBytes bytes;
  // kAffine only (kernels/affine.h):
  int bits = 0, group = 0;
  int64_t phase = 0, groups = 0;
  DType param_dtype = DType::kF32;      // of scales and biases, as the file stores them
  AlignedBytes scales, biases;  // (rows, groups) in param_dtype; empty when panels
  bool panels = false;  // bytes: 16-row panels with the scales and biases inside (kernels/affine_int8.h)

  WeightView view() const {
    WeightView v{bytes.data(), dtype, rows, cols, {}};
    if (dtype == DType::kAffine)
      v.affine = {bits,   group,       phase, groups, panels ? nullptr : scales.data(), panels ? nullptr : biases.data(),
                  affine_row_bytes(cols, bits), param_dtype, panels};
    return v;
  }
  bool empty() const { return rows == 0; }
  size_t held_bytes() const { return bytes.size() + scales.size() + biases.size(); }
};

// A 1-D weight (norm scale, bias), converted to fp32 at load: these are a negligible share of the bytes.
using Vector = std::vector<float>;

// One expert's SwiGLU MLP slice (also a dense MLP's and Qwen2-MoE's shared expert's).
struct MlpWeights {
  Matrix gate, up;   // (hidden_local, dim)
  Matrix down;       // (dim, hidden_local)
};

// A mixture-of-experts layer's weights on this rank (layout.experts and layout.expert_hidden).
struct MoeWeights {
  std::vector<float> router;         // (n_experts, dim) fp32, on every rank, so every rank routes alike
  Vector score_bias;                 // (n_experts) DeepSeek-V3 e_score_correction_bias (kept exact), or empty
  std::vector<MlpWeights> experts;   // layout.experts, in order: (expert_hidden_local, dim) / (dim, ..)
  MlpWeights shared;                 // shared expert(s), layout.shared_hidden; empty without
  Vector shared_gate;                // (dim) Qwen2-MoE shared_expert_gate, or empty (DeepSeek: unweighted)
  uint64_t expert_bytes = 0;         // bytes of the routed experts' matrices held (read only when routed to)
};

// DeepSeek-V3 multi-head latent attention (config.mla) beyond q_proj and o_proj: r = kv_lora, dn/dv = nope/v.
struct MlaWeights {
  Matrix q_a;                        // (q_lora, dim) q_a_proj, on every rank; empty without q_lora
  Vector q_a_norm;                   // (q_lora) q_a_layernorm
  Matrix kv_a;                       // (r + rope, dim) kv_a_proj_with_mqa, on every rank
  Vector kv_a_norm;                  // (r) kv_a_layernorm
  std::vector<Matrix> embed_q;       // per local head (r, dn): its k_nope rows of kv_b_proj, transposed (W_kᵀ)
  std::vector<Matrix> unembed_out;   // per local head (dv, r): its v rows of kv_b_proj (W_v)
};

struct LayerWeights {
  Vector input_layernorm;            // (dim)
  Matrix q_proj, k_proj, v_proj;     // (n_heads_local * head_dim, dim), (n_kv_heads_local * head_dim, dim) x2
                                     // MLA: q_proj is q_b_proj (.., q_lora) when q_lora; no k/v_proj
  Vector q_bias, k_bias, v_bias;     // same rows as the projections, or empty
  Vector q_norm, k_norm;             // (head_dim), Qwen3 only
  Matrix o_proj;                     // (dim, n_heads_local * head_dim); MLA: (dim, n_heads_local * v)
  MlaWeights mla;
  Vector o_bias;                     // (dim) or empty
  Vector post_attention_layernorm;   // (dim)
  MlpWeights mlp;                    // dense layers: gate/up (hidden_local, dim), down (dim, hidden_local)
  Vector gate_bias, up_bias;         // (hidden_local) or empty
  Vector down_bias;                  // (dim) or empty
  MoeWeights moe;                    // mixture-of-experts layers only (then mlp is empty)

  bool is_moe() const { return !moe.router.empty(); }
};

struct ModelWeights {
  Matrix embed_tokens;               // (vocab_local, dim)
  std::vector<LayerWeights> layers;  // this rank's layers
  Vector norm;                       // (dim)
  Matrix lm_head;                    // (vocab_local, dim); empty when tied to embed_tokens
  uint64_t bytes = 0;                // bytes held
  int kept_unquantized = 0;          // matrices left in their stored dtype (in_features not a multiple of 32)

  const Matrix& head() const { return lm_head.empty() ? embed_tokens : lm_head; }
};

// Reads exactly this rank's slices. Throws Error naming the tensor and expected vs actual shape or dtype.
// quantize_to: kQ8_0 or kQ4_0 converts every matrix whose slice has a multiple of 32 columns; kBF16 rounds f16
// matrices to bf16 (--compute fast, for the bf16 dot-product kernels); anything else keeps the stored dtype. read =
// false checks every name and shape and counts the bytes a rank would hold, reading none (meshlm info): then the
// matrices are empty and only `bytes` is meaningful. panels_for (a compute mode): MLX 4/8-bit matrices that its
// kernels take as panels (affine_panels_pay) are repacked into them (the same bytes, up to 15 rows of padding).
ModelWeights load_weights(const WeightIndex& index, const ModelConfig& config, const ParallelLayout& layout,
                          DType quantize_to = DType::kF32, bool read = true,
                          std::optional<Compute> panels_for = std::nullopt);

}  // namespace meshlm
