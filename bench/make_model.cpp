// make_model: writes a random-weight Hugging Face checkpoint (config.json + safetensors) with a real model's
// geometry, so that benchmarks and memory tests run without downloads. Prompts for it must be prompt_ids.
//
//   make_model --out DIR --preset llama-3.2-1b [--layers 4] [--dtype bf16] [--shards 2]
//   make_model --out DIR --dim 64 --layers 4 --heads 4 --kv-heads 1 --hidden 96 --vocab 300
//   make_model --out DIR --preset mixtral-8x7b --layers 2      (mixtures of experts: --experts, --top-k, ...)
//   make_model --out DIR --preset dsv3-1b                      (DeepSeek-V3 geometry: MLA, grouped routing)
#include <cmath>
#include <cstdio>
#include <cxxopts.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace {
using nlohmann::ordered_json;

struct Moe {
  int experts = 0, top_k = 0, expert_hidden = 0, shared_hidden = 0;  // experts == 0: dense
  bool norm_topk = false;
};

// DeepSeek-V3: multi-head latent attention and its routing (kv_lora == 0: not DeepSeek).
struct Mla {
  int q_lora = 0, kv_lora = 0, nope = 0, rope = 0, v = 0;
  int first_dense = 0, n_group = 1, topk_group = 1;
};

struct Geometry {
  std::string arch = "llama";  // llama | qwen2 | mixtral | qwen2_moe | qwen3_moe | deepseek_v3
  int dim = 64, layers = 2, heads = 4, kv_heads = 2, hidden = 128, vocab = 256, head_dim = 0;
  bool tie = false, qkv_bias = false;
  double rope_theta = 10000;
  Moe moe;
  Mla mla;
};

const std::map<std::string, Geometry> kPresets = {
    {"llama-3.2-1b", {"llama", 2048, 16, 32, 8, 8192, 128256, 64, true, false, 500000, {}, {}}},
    {"qwen2.5-0.5b", {"qwen2", 896, 24, 14, 2, 4864, 151936, 64, true, true, 1000000, {}, {}}},
    {"llama-3-8b", {"llama", 4096, 32, 32, 8, 14336, 128256, 128, false, false, 500000, {}, {}}},
    {"tiny", {"llama", 64, 2, 4, 2, 128, 256, 16, false, false, 10000, {}, {}}},
    // Mixtures of experts. moe-1b: the ~1 GB bf16 benchmark model (8 experts, top 2, dim 2048, 4 layers).
    {"mixtral-8x7b", {"mixtral", 4096, 32, 32, 8, 14336, 32000, 128, false, false, 1000000, {8, 2, 14336, 0, true}, {}}},
    {"qwen3-30b-a3b", {"qwen3_moe", 2048, 48, 32, 4, 6144, 151936, 128, false, false, 1000000, {128, 8, 768, 0, true}, {}}},
    {"qwen1.5-moe-a2.7b", {"qwen2_moe", 2048, 24, 16, 16, 5632, 151936, 128, false, true, 1000000, {60, 4, 1408, 5632, false}, {}}},
    {"moe-1b", {"mixtral", 2048, 4, 32, 8, 2048, 32000, 64, false, false, 1000000, {8, 2, 2048, 0, true}, {}}},
    {"tiny-moe", {"qwen2_moe", 64, 2, 4, 2, 96, 256, 16, false, true, 10000, {6, 2, 32, 48, false}, {}}},
    // DeepSeek-V3 (shared_hidden: n_shared_experts x expert_hidden). dsv3-1b: its real attention and expert sizes in
    // one MoE layer of 4 experts (top 2, 2 groups, 1 kept) + 1 shared, with a small vocabulary: ~1 GB bf16.
    {"deepseek-v3", {"deepseek_v3", 7168, 61, 128, 128, 18432, 129280, 192, false, false, 10000,
                     {256, 8, 2048, 2048, true}, {1536, 512, 128, 64, 128, 3, 8, 4}}},
    {"dsv3-1b", {"deepseek_v3", 7168, 1, 128, 128, 18432, 8192, 192, false, false, 10000,
                 {4, 2, 2048, 2048, true}, {1536, 512, 128, 64, 128, 0, 2, 1}}},
    {"tiny-dsv3", {"deepseek_v3", 64, 3, 4, 4, 128, 256, 48, false, false, 10000,
                   {8, 2, 32, 32, true}, {48, 32, 32, 16, 24, 1, 4, 2}}},
};

const char* hf_arch(const std::string& arch) {
  if (arch == "qwen2") return "Qwen2ForCausalLM";
  if (arch == "mixtral") return "MixtralForCausalLM";
  if (arch == "qwen2_moe") return "Qwen2MoeForCausalLM";
  if (arch == "qwen3_moe") return "Qwen3MoeForCausalLM";
  if (arch == "deepseek_v3") return "DeepseekV3ForCausalLM";
  return "LlamaForCausalLM";
}

struct Tensor {
  std::string name;
  std::vector<int64_t> shape;
  float scale;  // uniform in [-scale, scale]; 0 means all ones (norms)
};

// xorshift64*: fast, and the same weights for the same seed everywhere.
struct Random {
  uint64_t s;
  float uniform() {  // [-1, 1)
    s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
    return float(double((s * 2685821657736338717ull) >> 11) * (2.0 / 9007199254740992.0) - 1.0);
  }
};

void put_value(std::string& out, float v, meshlm::DType dt) {
  if (dt == meshlm::DType::kF32) {
    out.append(reinterpret_cast<const char*>(&v), 4);
  } else {
    const uint16_t h = dt == meshlm::DType::kBF16 ? meshlm::f32_to_bf16(v) : meshlm::f32_to_f16(v);
    out.append(reinterpret_cast<const char*>(&h), 2);
  }
}

// A SwiGLU MLP's three matrices under `prefix` (Mixtral's experts call them w1 / w3 / w2).
void add_mlp(std::vector<Tensor>& ts, const std::string& prefix, int64_t dim, int64_t hidden, bool mixtral) {
  const float s_in = float(1.0 / std::sqrt(double(dim))), s_mid = float(1.0 / std::sqrt(double(hidden)));
  ts.push_back({prefix + (mixtral ? "w1.weight" : "gate_proj.weight"), {hidden, dim}, s_in});
  ts.push_back({prefix + (mixtral ? "w3.weight" : "up_proj.weight"), {hidden, dim}, s_in});
  ts.push_back({prefix + (mixtral ? "w2.weight" : "down_proj.weight"), {dim, hidden}, s_mid});
}

// A DeepSeek-V3 layer: MLA, then a dense MLP (l < first_dense) or grouped-routed experts + shared experts.
void add_deepseek_layer(std::vector<Tensor>& ts, const std::string& p, const Geometry& g, int l) {
  const Mla& a = g.mla;
  const int64_t H = g.heads, qk = a.nope + a.rope;
  const auto inv_sqrt = [](int64_t n) { return float(1.0 / std::sqrt(double(n))); };
  const std::string s = p + "self_attn.";
  ts.push_back({p + "input_layernorm.weight", {g.dim}, 0});
  if (a.q_lora > 0) {
    ts.push_back({s + "q_a_proj.weight", {a.q_lora, g.dim}, inv_sqrt(g.dim)});
    ts.push_back({s + "q_a_layernorm.weight", {a.q_lora}, 0});
    ts.push_back({s + "q_b_proj.weight", {H * qk, a.q_lora}, inv_sqrt(a.q_lora)});
  } else {
    ts.push_back({s + "q_proj.weight", {H * qk, g.dim}, inv_sqrt(g.dim)});
  }
  ts.push_back({s + "kv_a_proj_with_mqa.weight", {a.kv_lora + a.rope, g.dim}, inv_sqrt(g.dim)});
  ts.push_back({s + "kv_a_layernorm.weight", {a.kv_lora}, 0});
  ts.push_back({s + "kv_b_proj.weight", {H * (a.nope + a.v), a.kv_lora}, inv_sqrt(a.kv_lora)});
  ts.push_back({s + "o_proj.weight", {g.dim, H * a.v}, inv_sqrt(H * a.v)});
  ts.push_back({p + "post_attention_layernorm.weight", {g.dim}, 0});
  if (l < a.first_dense) return add_mlp(ts, p + "mlp.", g.dim, g.hidden, false);
  ts.push_back({p + "mlp.gate.weight", {g.moe.experts, g.dim}, inv_sqrt(g.dim)});
  ts.push_back({p + "mlp.gate.e_score_correction_bias", {g.moe.experts}, 0.05f});
  for (int e = 0; e < g.moe.experts; ++e)
    add_mlp(ts, p + "mlp.experts." + std::to_string(e) + ".", g.dim, g.moe.expert_hidden, false);
  if (g.moe.shared_hidden > 0) add_mlp(ts, p + "mlp.shared_experts.", g.dim, g.moe.shared_hidden, false);
}

}  // namespace

int main(int argc, char** argv) {
  cxxopts::Options o("make_model", "Write a random-weight Hugging Face checkpoint with a real geometry.");
  o.add_options()("out", "Output directory", cxxopts::value<std::string>())(
      "preset", "llama-3.2-1b | qwen2.5-0.5b | llama-3-8b | tiny | mixtral-8x7b | qwen3-30b-a3b | "
                "qwen1.5-moe-a2.7b | moe-1b | tiny-moe | deepseek-v3 | dsv3-1b | tiny-dsv3",
      cxxopts::value<std::string>()->default_value("tiny"))(
      "layers", "Override the layer count (e.g. a truncated 8B)", cxxopts::value<int>())(
      "dim", "hidden_size", cxxopts::value<int>())("heads", "attention heads", cxxopts::value<int>())(
      "kv-heads", "key/value heads", cxxopts::value<int>())("hidden", "intermediate_size", cxxopts::value<int>())(
      "vocab", "vocab_size", cxxopts::value<int>())("head-dim", "head_dim", cxxopts::value<int>())(
      "arch", "llama | qwen2 | mixtral | qwen2_moe | qwen3_moe", cxxopts::value<std::string>())(
      "experts", "MoE: routed experts", cxxopts::value<int>())("top-k", "MoE: experts per token", cxxopts::value<int>())(
      "expert-hidden", "MoE: each expert's intermediate size", cxxopts::value<int>())(
      "shared-hidden", "Qwen2-MoE: the shared expert's intermediate size", cxxopts::value<int>())("tie", "tie lm_head to the embedding", cxxopts::value<bool>())(
      "dtype", "bf16 | f16 | f32", cxxopts::value<std::string>()->default_value("bf16"))(
      "shards", "safetensors files", cxxopts::value<int>()->default_value("1"))(
      "q-lora", "DeepSeek-V3: q_lora_rank (0: a plain q_proj)", cxxopts::value<int>())(
      "seed", "weights seed", cxxopts::value<uint64_t>()->default_value("1"))("h,help", "Show this help");
  try {
    const auto r = o.parse(argc, argv);
    if (r.count("help") || !r.count("out")) {
      std::printf("%s\n", o.help().c_str());
      return r.count("help") ? 0 : 2;
    }
    const auto preset = kPresets.find(r["preset"].as<std::string>());
    if (preset == kPresets.end()) throw std::runtime_error("unknown --preset " + r["preset"].as<std::string>());
    Geometry g = preset->second;
    if (r.count("layers")) g.layers = r["layers"].as<int>();
    if (r.count("dim")) g.dim = r["dim"].as<int>();
    if (r.count("heads")) g.heads = r["heads"].as<int>();
    if (r.count("kv-heads")) g.kv_heads = r["kv-heads"].as<int>();
    if (r.count("hidden")) g.hidden = r["hidden"].as<int>();
    if (r.count("vocab")) g.vocab = r["vocab"].as<int>();
    if (r.count("head-dim")) g.head_dim = r["head-dim"].as<int>();
    if (r.count("arch")) g.arch = r["arch"].as<std::string>(), g.qkv_bias = g.arch == "qwen2" || g.arch == "qwen2_moe";
    if (r.count("experts")) g.moe.experts = r["experts"].as<int>();
    if (r.count("top-k")) g.moe.top_k = r["top-k"].as<int>();
    if (r.count("expert-hidden")) g.moe.expert_hidden = r["expert-hidden"].as<int>();
    if (r.count("shared-hidden")) g.moe.shared_hidden = r["shared-hidden"].as<int>();
    if (r.count("q-lora")) g.mla.q_lora = r["q-lora"].as<int>();
    const bool deepseek = g.arch == "deepseek_v3";
    const bool moe = g.arch == "mixtral" || g.arch == "qwen2_moe" || g.arch == "qwen3_moe" || deepseek;
    if (moe && (g.moe.experts < 1 || g.moe.top_k < 1 || g.moe.top_k > g.moe.experts))
      throw std::runtime_error("a mixture of experts needs --experts >= --top-k >= 1");
    if (g.arch == "mixtral") g.moe.expert_hidden = g.hidden;
    if (moe && g.moe.expert_hidden < 1) g.moe.expert_hidden = g.hidden;
    if (r.count("tie")) g.tie = r["tie"].as<bool>();
    if (g.head_dim == 0 || r.count("dim") || r.count("heads")) g.head_dim = r.count("head-dim") ? g.head_dim : g.dim / g.heads;
    const std::string dtype_name = r["dtype"].as<std::string>();
    const meshlm::DType dt = dtype_name == "f32" ? meshlm::DType::kF32
                             : dtype_name == "f16" ? meshlm::DType::kF16 : meshlm::DType::kBF16;
    const std::string st_dtype = dtype_name == "f32" ? "F32" : dtype_name == "f16" ? "F16" : "BF16";
    const int shards = std::max(1, r["shards"].as<int>());
    const std::filesystem::path out = r["out"].as<std::string>();
    std::filesystem::create_directories(out);

    // The tensors, in Hugging Face names.
    const int64_t q = int64_t(g.heads) * g.head_dim, kv = int64_t(g.kv_heads) * g.head_dim;
    const float s_in = float(1.0 / std::sqrt(double(g.dim)));
    std::vector<Tensor> ts = {{"model.embed_tokens.weight", {g.vocab, g.dim}, 1.0f}};
    for (int l = 0; l < g.layers; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      if (deepseek) {
        add_deepseek_layer(ts, p, g, l);
        continue;
      }
      ts.push_back({p + "input_layernorm.weight", {g.dim}, 0});
      ts.push_back({p + "self_attn.q_proj.weight", {q, g.dim}, s_in});
      ts.push_back({p + "self_attn.k_proj.weight", {kv, g.dim}, s_in});
      ts.push_back({p + "self_attn.v_proj.weight", {kv, g.dim}, s_in});
      if (g.qkv_bias) {
        ts.push_back({p + "self_attn.q_proj.bias", {q}, 0.1f});
        ts.push_back({p + "self_attn.k_proj.bias", {kv}, 0.1f});
        ts.push_back({p + "self_attn.v_proj.bias", {kv}, 0.1f});
      }
      ts.push_back({p + "self_attn.o_proj.weight", {g.dim, q}, float(1.0 / std::sqrt(double(q)))});
      ts.push_back({p + "post_attention_layernorm.weight", {g.dim}, 0});
      if (g.arch == "qwen3_moe") {
        ts.push_back({p + "self_attn.q_norm.weight", {g.head_dim}, 0});
        ts.push_back({p + "self_attn.k_norm.weight", {g.head_dim}, 0});
      }
      if (!moe) {
        add_mlp(ts, p + "mlp.", g.dim, g.hidden, false);
        continue;
      }
      const bool mixtral = g.arch == "mixtral";
      const std::string block = p + (mixtral ? "block_sparse_moe." : "mlp.");
      ts.push_back({block + "gate.weight", {g.moe.experts, g.dim}, s_in});
      for (int e = 0; e < g.moe.experts; ++e)
        add_mlp(ts, block + "experts." + std::to_string(e) + ".", g.dim, g.moe.expert_hidden, mixtral);
      if (g.moe.shared_hidden > 0) {
        add_mlp(ts, block + "shared_expert.", g.dim, g.moe.shared_hidden, false);
        ts.push_back({block + "shared_expert_gate.weight", {1, g.dim}, s_in});
      }
    }
    ts.push_back({"model.norm.weight", {g.dim}, 0});
    if (!g.tie) ts.push_back({"lm_head.weight", {g.vocab, g.dim}, s_in});

    // Shards: tensors dealt out in order, about equal bytes each.
    const size_t esize = meshlm::dtype_size(dt);
    uint64_t total = 0;
    for (const Tensor& t : ts) {
      uint64_t n = 1;
      for (int64_t d : t.shape) n *= uint64_t(d);
      total += n * esize;
    }
    Random rng{r["seed"].as<uint64_t>() * 0x9E3779B97F4A7C15ull + 1};
    ordered_json weight_map = ordered_json::object();
    size_t next = 0;
    for (int s = 0; s < shards; ++s) {
      const std::string file = shards == 1 ? "model.safetensors"
                                           : "model-" + std::to_string(s + 1) + "-of-" + std::to_string(shards) + ".safetensors";
      ordered_json header = ordered_json::object();
      std::vector<const Tensor*> mine;
      uint64_t offset = 0;
      while (next < ts.size() && (s == shards - 1 || offset < total / uint64_t(shards))) {
        const Tensor& t = ts[next++];
        uint64_t n = 1;
        for (int64_t d : t.shape) n *= uint64_t(d);
        header[t.name] = {{"dtype", st_dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + n * esize}}};
        weight_map[t.name] = file;
        offset += n * esize;
        mine.push_back(&t);
      }
      std::string h = header.dump();
      h.append((8 - h.size() % 8) % 8, ' ');
      std::ofstream f(out / file, std::ios::binary);
      const uint64_t hlen = h.size();
      f.write(reinterpret_cast<const char*>(&hlen), 8);
      f << h;
      std::string buf;
      for (const Tensor* t : mine) {
        uint64_t n = 1;
        for (int64_t d : t->shape) n *= uint64_t(d);
        for (uint64_t i = 0; i < n; ++i) {
          put_value(buf, t->scale == 0 ? 1.0f : t->scale * rng.uniform(), dt);
          if (buf.size() >= (1u << 22)) f.write(buf.data(), std::streamsize(buf.size())), buf.clear();
        }
      }
      f.write(buf.data(), std::streamsize(buf.size()));
      if (!f) throw std::runtime_error("cannot write " + (out / file).string());
    }
    if (shards > 1) {
      std::ofstream(out / "model.safetensors.index.json")
          << ordered_json{{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}}.dump(2) << "\n";
    }
    ordered_json c = {{"architectures", {hf_arch(g.arch)}},
                      {"model_type", g.arch},
                      {"hidden_size", g.dim},
                      {"intermediate_size", g.hidden},
                      {"num_hidden_layers", g.layers},
                      {"num_attention_heads", g.heads},
                      {"num_key_value_heads", g.kv_heads},
                      {"head_dim", g.head_dim},
                      {"vocab_size", g.vocab},
                      {"max_position_embeddings", 4096},
                      {"rms_norm_eps", 1e-5},
                      {"rope_theta", g.rope_theta},
                      {"tie_word_embeddings", g.tie},
                      {"torch_dtype", dtype_name == "f32" ? "float32" : dtype_name == "f16" ? "float16" : "bfloat16"},
                      {"bos_token_id", 1},
                      {"eos_token_id", 2}};
    if (moe) {
      c[g.arch == "mixtral" ? "num_local_experts" : "num_experts"] = g.moe.experts;
      c["num_experts_per_tok"] = g.moe.top_k;
      if (g.arch != "mixtral") {
        c["moe_intermediate_size"] = g.moe.expert_hidden;
        c["norm_topk_prob"] = g.moe.norm_topk;
        c["decoder_sparse_step"] = 1;
        c["mlp_only_layers"] = ordered_json::array();
      }
      if (g.arch == "qwen2_moe") c["shared_expert_intermediate_size"] = g.moe.shared_hidden;
    }
    if (deepseek) {  // as DeepSeek-V3's config.json: the keys above that it lacks are ignored by readers
      const Mla& a = g.mla;
      c.erase("num_experts");
      c.erase("decoder_sparse_step");
      c.erase("mlp_only_layers");
      c.erase("head_dim");
      c["n_routed_experts"] = g.moe.experts;
      c["n_shared_experts"] = g.moe.shared_hidden / std::max(1, g.moe.expert_hidden);
      c["routed_scaling_factor"] = 2.5;
      c["n_group"] = a.n_group, c["topk_group"] = a.topk_group;
      c["topk_method"] = "noaux_tc", c["scoring_func"] = "sigmoid";
      c["first_k_dense_replace"] = a.first_dense, c["moe_layer_freq"] = 1;
      c["q_lora_rank"] = a.q_lora > 0 ? ordered_json(a.q_lora) : ordered_json(nullptr);
      c["kv_lora_rank"] = a.kv_lora;
      c["qk_nope_head_dim"] = a.nope, c["qk_rope_head_dim"] = a.rope, c["v_head_dim"] = a.v;
      c["max_position_embeddings"] = 163840;
      c["rope_scaling"] = {{"type", "yarn"}, {"factor", 40}, {"original_max_position_embeddings", 4096},
                           {"beta_fast", 32}, {"beta_slow", 1}, {"mscale", 1.0}, {"mscale_all_dim", 1.0}};
      c["num_nextn_predict_layers"] = 0;
    }
    std::ofstream(out / "config.json") << c.dump(2) << "\n";
    std::printf("make_model: %s: %s, %d layers, dim %d, %d/%d heads, hidden %d, vocab %d, %s, %.1f MB in %d file%s\n",
                out.c_str(), g.arch.c_str(), g.layers, g.dim, g.heads, g.kv_heads, g.hidden, g.vocab,
                dtype_name.c_str(), total / 1e6, shards, shards > 1 ? "s" : "");
    if (moe)
      std::printf("make_model: %d experts (top %d) of hidden %d%s\n", g.moe.experts, g.moe.top_k,
                  g.moe.expert_hidden,
                  g.moe.shared_hidden ? (", shared expert " + std::to_string(g.moe.shared_hidden)).c_str() : "");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_model: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
