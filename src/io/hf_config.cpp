#include "io/hf_config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <tuple>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/check.h"
#include "core/text_util.h"

namespace meshlm {
namespace {
using nlohmann::json;

struct Reader {
  const json& j;
  const std::string& path;

  bool has(const char* key) const { return j.contains(key) && !j[key].is_null(); }

  // A non-negative int (counts that may be 0), or the fallback when absent.
  int count(const char* key, int fallback) const {
    if (!has(key)) return fallback;
    MESH_CHECK(j[key].is_number_integer() && j[key].get<int64_t>() >= 0 && j[key].get<int64_t>() < (1ll << 31), path,
               ": \"", key, "\" must be a non-negative integer, got ", j[key].dump());
    return j[key].get<int>();
  }
  int positive_int(const char* key) const {
    MESH_CHECK(has(key), path, ": missing required field \"", key, "\"");
    MESH_CHECK(j[key].is_number_integer() && j[key].get<int64_t>() > 0 && j[key].get<int64_t>() < (1ll << 31),
               path, ": \"", key, "\" must be a positive integer, got ", j[key].dump());
    return j[key].get<int>();
  }
  double number(const char* key, double fallback) const {
    if (!has(key)) return fallback;
    MESH_CHECK(j[key].is_number() && std::isfinite(j[key].get<double>()), path, ": \"", key,
               "\" must be a finite number, got ", j[key].dump());
    return j[key].get<double>();
  }
  std::string string(const char* key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    MESH_CHECK(j[key].is_string(), path, ": \"", key, "\" must be a string, got ", j[key].dump().substr(0, 80));
    return j[key].get<std::string>();
  }
  bool boolean(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    MESH_CHECK(j[key].is_boolean(), path, ": \"", key, "\" must be true or false, got ", j[key].dump());
    return j[key].get<bool>();
  }
  // eos_token_id: an int or a list of ints.
  void add_ids(const char* key, std::vector<int>& out) const {
    if (!has(key)) return;
    auto add = [&](const json& v) {
      MESH_CHECK(v.is_number_integer() && v.get<int64_t>() >= 0, path, ": \"", key,
                 "\" must be a token id or a list of them, got ", j[key].dump());
      int id = v.get<int>();
      if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
    };
    if (j[key].is_array()) {
      for (auto& v : j[key]) add(v);
    } else {
      add(j[key]);
    }
  }
};

RopeScaling parse_rope_scaling(const Reader& r) {
  RopeScaling s;
  if (!r.has("rope_scaling")) return s;
  const json& rs = r.j["rope_scaling"];
  MESH_CHECK(rs.is_object(), r.path, ": \"rope_scaling\" must be an object or null");
  Reader sub{rs, r.path};
  const std::string type = sub.string("rope_type", sub.string("type", "default"));
  if (type == "default") return s;
  if (type == "linear") {
    s.type = RopeScaling::Type::kLinear;
    s.factor = sub.number("factor", 1.0);
  } else if (type == "llama3") {
    s.type = RopeScaling::Type::kLlama3;
    MESH_CHECK(sub.has("factor") && sub.has("original_max_position_embeddings"), r.path,
               ": rope_scaling llama3 needs \"factor\" and \"original_max_position_embeddings\"");
    s.factor = sub.number("factor", 1.0);
    s.low_freq_factor = sub.number("low_freq_factor", 1.0);
    s.high_freq_factor = sub.number("high_freq_factor", 4.0);
    s.original_max_position = sub.positive_int("original_max_position_embeddings");
  } else if (type == "yarn") {
    s.type = RopeScaling::Type::kYarn;
    MESH_CHECK(sub.has("factor"), r.path, ": rope_scaling yarn needs \"factor\"");
    s.factor = sub.number("factor", 1.0);
    s.original_max_position =
        sub.has("original_max_position_embeddings") ? sub.positive_int("original_max_position_embeddings")
                                                    : r.positive_int("max_position_embeddings");
    s.beta_fast = sub.number("beta_fast", 32);
    s.beta_slow = sub.number("beta_slow", 1);
    s.mscale = sub.number("mscale", 0);
    s.mscale_all_dim = sub.number("mscale_all_dim", 0);
    s.attention_factor = sub.number("attention_factor", 0);
    MESH_CHECK(s.beta_fast > 0 && s.beta_slow > 0, r.path, ": rope_scaling yarn: beta_fast and beta_slow must be positive");
  } else {
    fail(r.path, ": rope_scaling type \"", type, "\" is not supported (supported: default, linear, llama3, yarn)");
  }
  MESH_CHECK(s.factor > 0, r.path, ": rope_scaling factor must be positive, got ", s.factor);
  return s;
}

// "quantization" (or "quantization_config"): MLX affine only. Per-module entries are dicts of bits / group_size, or
// (files from before Aug 2025) true = the global setting, false = not quantized (the file has no scales then).
AffineConfig parse_affine(const Reader& r) {
  AffineConfig a;
  const char* key = r.has("quantization") ? "quantization" : r.has("quantization_config") ? "quantization_config" : "";
  if (!*key) return a;
  const json& q = r.j[key];
  MESH_CHECK(q.is_object(), r.path, ": \"", key, "\" must be an object, got ", q.dump().substr(0, 80));
  if (q.contains("quant_method") && !q.contains("bits"))
    fail(r.path, ": \"", key, "\": quant_method ", q["quant_method"].dump(),
         " is not supported (supported: MLX affine, as mlx_lm.convert -q writes it)");
  const std::string mode = Reader{q, r.path}.string("mode", "affine");
  MESH_CHECK(mode == "affine", r.path, ": \"", key, "\": mode \"", mode, "\" is not supported (supported: affine)");
  auto params = [&](const json& v, const std::string& where) {
    MESH_CHECK(v.contains("bits") && v["bits"].is_number_integer() && v.contains("group_size") &&
                   v["group_size"].is_number_integer(),
               r.path, ": \"", key, "\"", where, " needs integer \"bits\" and \"group_size\", got ", v.dump());
    const int bits = v["bits"].get<int>(), group = v["group_size"].get<int>();
    MESH_CHECK(bits == 2 || bits == 3 || bits == 4 || bits == 5 || bits == 6 || bits == 8, r.path, ": \"", key, "\"",
               where, ": bits ", bits, " is not supported (2, 3, 4, 5, 6 or 8)");
    MESH_CHECK(group == 32 || group == 64 || group == 128, r.path, ": \"", key, "\"", where, ": group_size ", group,
               " is not supported (32, 64 or 128)");
    return std::pair{bits, group};
  };
  std::tie(a.bits, a.group) = params(q, "");
  for (auto& [name, v] : q.items()) {
    if (!v.is_object() && !v.is_boolean()) continue;  // bits, group_size, mode, ...
    if (v.is_object()) a.modules[name] = params(v, "[\"" + name + "\"]");
  }
  return a;
}

int int_or(const Reader& r, const char* key, int fallback) { return r.has(key) ? r.positive_int(key) : fallback; }

// DeepSeek-V3 attention: MLA dimensions; head_dim becomes the query/key head size, every head its own kv head.
void parse_mla(const Reader& r, ModelConfig& c) {
  MlaConfig& a = c.mla;
  a.kv_lora = r.positive_int("kv_lora_rank");
  a.q_lora = r.has("q_lora_rank") ? r.positive_int("q_lora_rank") : 0;
  a.nope = r.positive_int("qk_nope_head_dim");
  a.rope = r.positive_int("qk_rope_head_dim");
  a.v = r.positive_int("v_head_dim");
  MESH_CHECK(a.rope % 2 == 0, r.path, ": qk_rope_head_dim ", a.rope, " must be even for RoPE");
  MESH_CHECK(!r.boolean("attention_bias", false), r.path,
             ": attention_bias true is not supported for DeepSeek-V3 (no released checkpoint has it)");
  c.head_dim = a.qk();
  c.n_kv_heads = c.n_heads;
}

// The MoE keys of Mixtral / Qwen2-MoE / Qwen3-MoE, with transformers' defaults for missing ones.
void parse_moe(const Reader& r, ModelConfig& c) {
  MoeConfig& m = c.moe;
  switch (c.arch) {
    case Arch::kMixtral:
      m.n_experts = int_or(r, "num_local_experts", 8);
      m.top_k = int_or(r, "num_experts_per_tok", 2);
      m.expert_dim = c.hidden_dim;
      m.norm_topk = true;
      m.mixtral_names = true;
      break;
    case Arch::kQwen2Moe:
    case Arch::kQwen3Moe: {
      const bool q2 = c.arch == Arch::kQwen2Moe;
      m.n_experts = int_or(r, "num_experts", q2 ? 60 : 128);
      m.top_k = int_or(r, "num_experts_per_tok", q2 ? 4 : 8);
      m.expert_dim = int_or(r, "moe_intermediate_size", q2 ? 1408 : 768);
      m.norm_topk = r.boolean("norm_topk_prob", false);
      m.sparse_step = int_or(r, "decoder_sparse_step", 1);
      if (q2) m.shared_expert_dim = r.count("shared_expert_intermediate_size", 5632);  // 0: no shared expert
      if (r.has("mlp_only_layers")) {
        const json& v = r.j["mlp_only_layers"];
        MESH_CHECK(v.is_array(), r.path, ": \"mlp_only_layers\" must be a list of layer indices, got ", v.dump());
        for (const json& e : v) {
          MESH_CHECK(e.is_number_integer() && e.get<int64_t>() >= 0 && e.get<int64_t>() < c.n_layers, r.path,
                     ": \"mlp_only_layers\" entry ", e.dump(), " is not a layer index in [0, ", c.n_layers, ")");
          m.dense_layers.push_back(e.get<int>());
        }
      }
      break;
    }
    case Arch::kDeepseekV3: {
      m.grouped = true;
      m.n_experts = r.positive_int("n_routed_experts");
      m.top_k = int_or(r, "num_experts_per_tok", 8);
      m.expert_dim = int_or(r, "moe_intermediate_size", 2048);
      m.norm_topk = r.boolean("norm_topk_prob", true);
      m.routed_scale = r.number("routed_scaling_factor", 1.0);
      m.n_group = int_or(r, "n_group", 1);
      m.topk_group = int_or(r, "topk_group", 1);
      m.shared_expert_dim = r.count("n_shared_experts", 0) * m.expert_dim;
      const int first_dense = std::min(r.count("first_k_dense_replace", 0), c.n_layers);
      // Layer l is MoE iff l >= first_k_dense_replace. moe_layer_freq (1 in every release) is ignored, as
      // transformers ignores it.
      for (int l = 0; l < first_dense; ++l) m.dense_layers.push_back(l);
      const std::string scoring = r.string("scoring_func", "sigmoid"), method = r.string("topk_method", "noaux_tc");
      MESH_CHECK(scoring == "sigmoid", r.path, ": scoring_func \"", scoring,
                 "\" is not supported for DeepSeek-V3 (expected \"sigmoid\")");
      MESH_CHECK(method == "noaux_tc", r.path, ": topk_method \"", method,
                 "\" is not supported (expected \"noaux_tc\", DeepSeek-V3's group-limited routing)");
      MESH_CHECK(m.n_experts % m.n_group == 0, r.path, ": n_routed_experts ", m.n_experts,
                 " is not a multiple of n_group ", m.n_group);
      MESH_CHECK(m.n_group == 1 || m.n_experts / m.n_group >= 2, r.path, ": n_group ", m.n_group,
                 " leaves fewer than 2 experts per group (a group scores by its 2 best)");
      MESH_CHECK(m.topk_group <= m.n_group, r.path, ": topk_group ", m.topk_group, " is more than n_group ", m.n_group);
      MESH_CHECK(m.top_k <= m.topk_group * (m.n_experts / m.n_group), r.path, ": num_experts_per_tok ", m.top_k,
                 " is more than the experts of topk_group ", m.topk_group, " groups");
      break;
    }
    default:
      return;
  }
  MESH_CHECK(m.top_k <= m.n_experts, r.path, ": num_experts_per_tok ", m.top_k, " is more than the ", m.n_experts,
             " experts");
}

}  // namespace

bool ModelConfig::moe_layer(int64_t l) const {
  if (!is_moe()) return false;
  for (int d : moe.dense_layers)
    if (d == l) return false;
  return (l + 1) % moe.sparse_step == 0;
}

double ModelConfig::attention_scale() const {
  double scale = 1.0 / std::sqrt(double(head_dim));
  const RopeScaling& s = rope_scaling;
  if (mla.on() && s.type == RopeScaling::Type::kYarn && s.mscale_all_dim != 0 && s.factor > 1) {
    const double m = 0.1 * s.mscale_all_dim * std::log(s.factor) + 1.0;
    scale *= m * m;
  }
  return scale;
}

const char* arch_label(Arch arch) {
  switch (arch) {
    case Arch::kLlama: return "llama";
    case Arch::kMistral: return "mistral";
    case Arch::kQwen2: return "qwen2";
    case Arch::kQwen3: return "qwen3";
    case Arch::kMixtral: return "mixtral";
    case Arch::kQwen2Moe: return "qwen2_moe";
    case Arch::kQwen3Moe: return "qwen3_moe";
    case Arch::kDeepseekV3: return "deepseek_v3";
  }
  return "?";
}

ModelConfig load_model_config(const std::string& model_dir) {
  namespace fs = std::filesystem;
  const std::string path = (fs::path(model_dir) / "config.json").string();
  MESH_CHECK(fs::is_directory(model_dir), model_dir, ": model directory does not exist");
  MESH_CHECK(fs::exists(path), path, ": missing (a Hugging Face model directory needs config.json)");
  const json j = read_json_file(path);
  MESH_CHECK(j.is_object(), path, ": expected a JSON object");
  Reader r{j, path};
  ModelConfig c;

  MESH_CHECK(r.has("architectures") && j["architectures"].is_array() && j["architectures"].size() == 1 &&
                 j["architectures"][0].is_string(),
             path, ": \"architectures\" must be a list with one name");
  c.arch_name = j["architectures"][0].get<std::string>();
  if (c.arch_name == "LlamaForCausalLM") c.arch = Arch::kLlama;
  else if (c.arch_name == "MistralForCausalLM") c.arch = Arch::kMistral;
  else if (c.arch_name == "Qwen2ForCausalLM") c.arch = Arch::kQwen2;
  else if (c.arch_name == "Qwen3ForCausalLM") c.arch = Arch::kQwen3;
  else if (c.arch_name == "MixtralForCausalLM") c.arch = Arch::kMixtral;
  else if (c.arch_name == "Qwen2MoeForCausalLM") c.arch = Arch::kQwen2Moe;
  else if (c.arch_name == "Qwen3MoeForCausalLM") c.arch = Arch::kQwen3Moe;
  else if (c.arch_name == "DeepseekV3ForCausalLM") c.arch = Arch::kDeepseekV3;  // also Kimi K2 (model_type kimi_k2)
  else
    fail(path, ": architecture \"", c.arch_name,
         "\" is not supported (supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, "
         "MixtralForCausalLM, Qwen2MoeForCausalLM, Qwen3MoeForCausalLM, DeepseekV3ForCausalLM)");

  c.affine = parse_affine(r);
  c.dim = r.positive_int("hidden_size");
  c.hidden_dim = r.positive_int("intermediate_size");
  c.n_layers = r.positive_int("num_hidden_layers");
  c.n_heads = r.positive_int("num_attention_heads");
  c.n_kv_heads = r.has("num_key_value_heads") ? r.positive_int("num_key_value_heads") : c.n_heads;
  c.vocab_size = r.positive_int("vocab_size");
  c.max_seq_len = r.positive_int("max_position_embeddings");
  if (c.arch == Arch::kDeepseekV3) {
    parse_mla(r, c);
  } else if (r.has("head_dim")) {
    c.head_dim = r.positive_int("head_dim");
  } else {
    MESH_CHECK(c.dim % c.n_heads == 0, path, ": hidden_size ", c.dim, " is not divisible by num_attention_heads ",
               c.n_heads, " and no head_dim is given");
    c.head_dim = c.dim / c.n_heads;
  }
  MESH_CHECK(c.head_dim % 2 == 0, path, ": head_dim ", c.head_dim, " must be even for RoPE");
  MESH_CHECK(c.n_heads % c.n_kv_heads == 0, path, ": num_attention_heads ", c.n_heads,
             " must be a multiple of num_key_value_heads ", c.n_kv_heads);
  c.norm_eps = r.number("rms_norm_eps", 1e-6);
  c.rope_theta = r.number("rope_theta", 10000.0);
  MESH_CHECK(c.norm_eps > 0 && c.rope_theta > 0, path, ": rms_norm_eps and rope_theta must be positive");
  c.rope_scaling = parse_rope_scaling(r);
  c.tie_embeddings = r.boolean("tie_word_embeddings", false);
  if (r.has("hidden_act")) {
    MESH_CHECK(j["hidden_act"] == "silu", path, ": hidden_act ", j["hidden_act"].dump(),
               " is not supported (expected \"silu\")");
  }
  c.torch_dtype = r.string("torch_dtype", c.torch_dtype);

  switch (c.arch) {
    case Arch::kLlama:
      c.qkv_bias = c.o_bias = r.boolean("attention_bias", false);
      c.mlp_bias = r.boolean("mlp_bias", false);
      break;
    case Arch::kMistral:
    case Arch::kMixtral:
      break;
    case Arch::kQwen2:
      c.qkv_bias = true;  // Qwen2 always has q/k/v biases and none on o_proj
      break;
    case Arch::kQwen2Moe:
      c.qkv_bias = r.boolean("qkv_bias", true);
      break;
    case Arch::kQwen3:
    case Arch::kQwen3Moe:
      c.qkv_bias = c.o_bias = r.boolean("attention_bias", false);
      c.qk_norm = true;
      break;
    case Arch::kDeepseekV3:
      break;
  }
  parse_moe(r, c);
  // Sliding-window attention: Mistral uses it when set; Qwen only with use_sliding_window.
  if (r.has("sliding_window") && j["sliding_window"].is_number_integer()) {
    const bool qwen = c.arch == Arch::kQwen2 || c.arch == Arch::kQwen3 || c.arch == Arch::kQwen2Moe ||
                      c.arch == Arch::kQwen3Moe;
    bool used = c.arch == Arch::kMistral || c.arch == Arch::kMixtral || (qwen && r.boolean("use_sliding_window", false));
    if (used) c.sliding_window = r.positive_int("sliding_window");
  }

  if (r.has("bos_token_id") && j["bos_token_id"].is_number_integer()) c.bos_id = j["bos_token_id"].get<int>();
  r.add_ids("eos_token_id", c.eos_ids);
  const std::string gen_path = (fs::path(model_dir) / "generation_config.json").string();
  if (fs::exists(gen_path)) {
    const json g = read_json_file(gen_path);
    MESH_CHECK(g.is_object(), gen_path, ": expected a JSON object");
    Reader{g, gen_path}.add_ids("eos_token_id", c.eos_ids);
  }
  for (int id : c.eos_ids)
    MESH_CHECK(id < c.vocab_size, path, ": eos_token_id ", id, " is outside the vocabulary (", c.vocab_size, ")");
  return c;
}

}  // namespace meshlm
