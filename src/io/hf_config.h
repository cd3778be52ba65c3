// config.json (+ generation_config.json) -> ModelConfig. The only place Hugging Face config key names appear.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace meshlm {

enum class Arch { kLlama, kMistral, kQwen2, kQwen3, kMixtral, kQwen2Moe, kQwen3Moe };

// Mixture of experts (Mixtral, Qwen2-MoE, Qwen3-MoE), as transformers computes it: router logits x·gateᵀ, softmax
// over all experts, the top_k kept (renormalised to sum 1 when norm_topk), out = Σ pₖ·expertₖ(x)
// [+ sigmoid(x·shared_gateᵀ)·shared_expert(x)]. n_experts == 0: a dense model.
struct MoeConfig {
  int n_experts = 0;             // num_local_experts (Mixtral) / num_experts (Qwen)
  int top_k = 0;                 // num_experts_per_tok
  int expert_dim = 0;            // each expert's intermediate size: moe_intermediate_size (Mixtral: intermediate_size)
  bool norm_topk = false;        // renormalise the top-k probabilities (Mixtral always; Qwen: norm_topk_prob)
  int shared_expert_dim = 0;     // Qwen2-MoE shared_expert_intermediate_size (0: none)
  int sparse_step = 1;           // Qwen decoder_sparse_step
  std::vector<int> dense_layers; // Qwen mlp_only_layers
  bool mixtral_names = false;    // block_sparse_moe.experts.{j}.w1/w2/w3 rather than mlp.experts.{j}.*_proj
};

struct RopeScaling {
  enum class Type { kNone, kLinear, kLlama3 } type = Type::kNone;
  double factor = 1.0;
  double low_freq_factor = 1.0, high_freq_factor = 4.0;  // llama3
  int original_max_position = 8192;                       // llama3
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
  AffineConfig affine;
  int bos_id = -1;
  std::vector<int> eos_ids;     // from config.json and generation_config.json, deduplicated

  int q_dim() const { return n_heads * head_dim; }
  bool is_moe() const { return moe.n_experts > 0; }
  // Whether layer l's MLP is a mixture of experts (Qwen: not in mlp_only_layers and (l+1) % decoder_sparse_step == 0).
  bool moe_layer(int64_t l) const;
  int kv_dim() const { return n_kv_heads * head_dim; }
};

// Reads dir/config.json and, if present, dir/generation_config.json. Throws Error naming the file and key.
ModelConfig load_model_config(const std::string& model_dir);

const char* arch_label(Arch arch);

}  // namespace meshlm
