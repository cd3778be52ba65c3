// config.json (+ generation_config.json) -> ModelConfig. The only place Hugging Face config key names appear.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace meshlm {

enum class Arch { kLlama, kMistral, kQwen2, kQwen3, kMixtral, kQwen2Moe, kQwen3Moe, kDeepseekV3 };

// Mixture of experts (Mixtral, Qwen2-MoE, Qwen3-MoE), as transformers computes it: router logits x·gateᵀ, softmax
// over all experts, the top_k kept (renormalised to sum 1 when norm_topk), out = Σ pₖ·expertₖ(x)
// [+ sigmoid(x·shared_gateᵀ)·shared_expert(x)]. n_experts == 0: a dense model.
// DeepSeek-V3 (grouped = true) routes by sigmoid scores instead: see model/moe.h, top_k_grouped_sigmoid.
struct MoeConfig {
  int n_experts = 0;             // num_local_experts (Mixtral) / num_experts (Qwen)
  int top_k = 0;                 // num_experts_per_tok
  int expert_dim = 0;            // each expert's intermediate size: moe_intermediate_size (Mixtral: intermediate_size)
  bool norm_topk = false;        // renormalise the top-k probabilities (Mixtral always; Qwen: norm_topk_prob)
  int shared_expert_dim = 0;     // Qwen2-MoE shared_expert_intermediate_size (0: none)
  int sparse_step = 1;           // Qwen decoder_sparse_step
  std::vector<int> dense_layers; // Qwen mlp_only_layers
  bool mixtral_names = false;    // block_sparse_moe.experts.{j}.w1/w2/w3 rather than mlp.experts.{j}.*_proj
  // DeepSeek-V3: sigmoid scores, e_score_correction_bias to choose, n_group groups of which topk_group are kept,
  // weights × routed_scaling_factor; the shared experts (mlp.shared_experts) are always on and unweighted.
  bool grouped = false;
  int n_group = 1, topk_group = 1;
  double routed_scale = 1.0;
  bool shared_gated() const { return !grouped; }  // Qwen2-MoE: sigmoid(x·shared_expert_gateᵀ) weighs the shared expert
};

// DeepSeek-V3 multi-head latent attention (kv_lora > 0). Per head q = [q_nope (nope), q_pe (rope)]; the cache holds
// per token only the normed latent c (kv_lora) and the rotated k_pe (rope), shared by all heads; kv_b_proj expands c
// into each head's k_nope (nope) and v (v).
struct MlaConfig {
  int q_lora = 0;   // q_lora_rank; 0: a plain q_proj
  int kv_lora = 0;  // kv_lora_rank
  int nope = 0, rope = 0, v = 0;  // qk_nope_head_dim, qk_rope_head_dim, v_head_dim

  bool on() const { return kv_lora > 0; }
  int qk() const { return nope + rope; }
  int latent() const { return kv_lora + rope; }  // cached floats per token and layer
};

struct RopeScaling {
  enum class Type { kNone, kLinear, kLlama3, kYarn } type = Type::kNone;
  double factor = 1.0;
  double low_freq_factor = 1.0, high_freq_factor = 4.0;  // llama3
  int original_max_position = 8192;                       // llama3, yarn
  double beta_fast = 32, beta_slow = 1;                   // yarn
  double mscale = 0, mscale_all_dim = 0;                  // yarn (0: absent)
  double attention_factor = 0;                            // yarn: cos/sin multiplier (0: from mscale)
};

// MLX affine quantization (config.json "quantization", as mlx_lm.convert -q writes it): bits and group size, globally
// and per module path ("model.layers.1.mlp.switch_mlp.down_proj"). Whether a tensor is quantized is decided by its
// file (X.scales next to X.weight); these say with which bits and group.
struct AffineConfig {
  int bits = 0, group = 0;  // 0: the checkpoint is not pre-quantized
  std::map<std::string, std::pair<int, int>> modules;  // path -> (bits, group) overrides

  bool quantized() const { return bits > 0; }
  std::pair<int, int> of(const std::string& module) const {  // (bits, group) for a module path
    auto it = modules.find(module);
    return it == modules.end() ? std::pair{bits, group} : it->second;
  }
};

struct ModelConfig {
  Arch arch = Arch::kLlama;
  std::string arch_name;        // e.g. "LlamaForCausalLM"
  int dim = 0;                  // hidden_size
  int hidden_dim = 0;           // intermediate_size
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int vocab_size = 0;
  int max_seq_len = 0;          // max_position_embeddings
  int sliding_window = 0;       // 0: full attention
  double norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_embeddings = false;
  bool qkv_bias = false;        // q/k/v_proj have biases (Qwen2 always; Llama attention_bias)
  bool o_bias = false;          // o_proj has a bias (Llama attention_bias)
  bool mlp_bias = false;        // gate/up/down have biases (Llama mlp_bias)
  bool qk_norm = false;         // per-head RMSNorm on q and k before RoPE (Qwen3)
  std::string torch_dtype;      // as declared; weights keep their stored dtype regardless
  MoeConfig moe;
  MlaConfig mla;                // DeepSeek-V3 attention; then head_dim = mla.qk() and n_kv_heads = n_heads
  AffineConfig affine;
  int bos_id = -1;
  std::vector<int> eos_ids;     // from config.json and generation_config.json, deduplicated

  int q_dim() const { return n_heads * head_dim; }
  bool is_moe() const { return moe.n_experts > 0; }
  // Whether layer l's MLP is a mixture of experts (Qwen: not in mlp_only_layers and (l+1) % decoder_sparse_step == 0).
  bool moe_layer(int64_t l) const;
  int kv_dim() const { return n_kv_heads * head_dim; }
  // Floats a rank's KV cache keeps per token and layer with kv_heads of the kv heads, and in how many planes (keys and
  // values: 2; MLA's latent: 1, the same on every tensor rank).
  int64_t cache_row(int64_t kv_heads) const { return mla.on() ? mla.latent() : kv_heads * head_dim; }
  int cache_planes() const { return mla.on() ? 1 : 2; }
  // The softmax scale of attention scores: head_dim^-½, and for MLA (nope + rope)^-½ · mscale² under yarn.
  double attention_scale() const;
};

// Reads dir/config.json and, if present, dir/generation_config.json. Throws Error naming the file and key.
ModelConfig load_model_config(const std::string& model_dir);

const char* arch_label(Arch arch);

}  // namespace meshlm
