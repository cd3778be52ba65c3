// meshlm info: what a model directory holds, from its config and safetensors headers only, and what each rank of a
// layout would hold (every tensor name and shape checked as a load would, nothing read).
#include <cstdio>
#include <map>

#include "app/cli_common.h"
#include "app/commands.h"
#include "app/setup.h"
#include "io/hf_config.h"
#include "io/weight_index.h"
#include "model/weights.h"

namespace meshlm {

int run_info(int argc, char** argv) {
  cxxopts::Options o("meshlm info", "Describe a Hugging Face model directory: architecture, dims, parameters, bytes.");
  o.add_options()("model", "Model directory", cxxopts::value<std::string>()->default_value(default_model_dir()))
      ("weight-dtype", "stored | q8_0 | q4_0: count the bytes per rank as --weight-dtype loads them",
       cxxopts::value<std::string>()->default_value("stored"));
  add_layout_options(o);
  cxxopts::ParseResult r;
  if (!parse_options(o, argc, argv, r)) return 0;
  const std::string dir = r["model"].as<std::string>();
  LayoutFlags flags = read_layout_flags(r);
  const DType weight_dtype = parse_weight_dtype(r["weight-dtype"].as<std::string>());
  const ModelConfig c = load_model_config(dir);
  const WeightIndex index(dir);
  std::map<std::string, std::pair<int64_t, uint64_t>> by_dtype;  // dtype -> (params, bytes)
  int64_t params = 0;
  // Parameters as the model counts them: an MLX-packed U32 word holds 32 / bits weights, and the scales and biases
  // of quantized modules are storage, not parameters (their bytes still count).
  auto ends_with = [](const std::string& s, const std::string& tail) {
    return s.size() > tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  for (const TensorInfo* t : index.all()) {
    int64_t n = t->numel();
    const std::string module = t->name.substr(0, t->name.rfind('.'));
    if (index.find(module + ".scales")) {
      if (ends_with(t->name, ".scales") || ends_with(t->name, ".biases")) n = 0;
      else if (t->dtype_name == "U32") n = n * 32 / std::max(1, c.affine.of(module).first);
    }
    params += n;
    by_dtype[t->dtype_name].first += n;
    by_dtype[t->dtype_name].second += t->nbytes;
  }
  std::printf("model         %s\n", dir.c_str());
  std::printf("architecture  %s (%s)\n", c.arch_name.c_str(), arch_label(c.arch));
  std::printf("layers        %d\n", c.n_layers);
  std::printf("dim           %d (hidden %d)\n", c.dim, c.hidden_dim);
  std::printf("heads         %d query, %d kv, head_dim %d\n", c.n_heads, c.n_kv_heads, c.head_dim);
  std::printf("vocab         %d\n", c.vocab_size);
  std::printf("context       %d\n", c.max_seq_len);
  std::printf("rope          theta %g%s\n", c.rope_theta,
              c.rope_scaling.type == RopeScaling::Type::kLlama3   ? ", llama3 scaling"
              : c.rope_scaling.type == RopeScaling::Type::kLinear ? ", linear scaling"
              : c.rope_scaling.type == RopeScaling::Type::kYarn   ? ", yarn scaling"
                                                                   : "");
  if (c.mla.on())
    std::printf("attention     multi-head latent: q_lora %d, kv_lora %d, head dims %d nope + %d rope, v %d\n",
                c.mla.q_lora, c.mla.kv_lora, c.mla.nope, c.mla.rope, c.mla.v);
  const double kv_token = double(c.cache_planes()) * double(c.cache_row(c.n_kv_heads)) * sizeof(float) * c.n_layers;
  std::printf("kv cache      %.0f bytes per token (fp32%s, all layers)\n", kv_token,
              c.mla.on() ? ", the latent" : ", keys and values");
  std::printf("features      %s%s%s%s%s\n", c.tie_embeddings ? "tied-embeddings " : "", c.qkv_bias ? "qkv-bias " : "",
              c.qk_norm ? "qk-norm " : "", c.mlp_bias ? "mlp-bias " : "",
              c.sliding_window ? ("sliding-window " + std::to_string(c.sliding_window)).c_str() : "");
  if (c.is_moe()) {
    int sparse = 0;
    for (int l = 0; l < c.n_layers; ++l) sparse += c.moe_layer(l);
    std::printf("experts       %d per layer, top %d%s, hidden %d; %d of %d layers sparse", c.moe.n_experts,
                c.moe.top_k, c.moe.norm_topk ? " (renormalised)" : "", c.moe.expert_dim, sparse, c.n_layers);
    if (c.moe.grouped)
      std::printf("; sigmoid routing, %d groups (top %d), scale %g", c.moe.n_group, c.moe.topk_group,
                  c.moe.routed_scale);
    if (c.moe.shared_expert_dim) std::printf("; shared expert %d", c.moe.shared_expert_dim);
    std::printf("\n");
  }
  if (c.affine.quantized())
    std::printf("quantization  MLX affine, %d-bit, groups of %d; %zu module override%s\n", c.affine.bits, c.affine.group,
                c.affine.modules.size(), c.affine.modules.size() == 1 ? "" : "s");
  for (const auto& [module, bg] : c.affine.modules)
    std::printf("  override    %s: %d-bit, groups of %d\n", module.c_str(), bg.first, bg.second);
  std::printf("parameters    %lld (%.2f M)\n", (long long)params, params / 1e6);
  if (c.is_moe()) std::printf("active        %.2f M parameters per token\n", active_params(c) / 1e6);
  for (auto& [dtype, pb] : by_dtype)
    std::printf("bytes %-7s %llu (%.2f MB, %lld params)\n", dtype.c_str(), (unsigned long long)pb.second,
                pb.second / 1e6, (long long)pb.first);

  // Bytes per rank of one replica of the layout (default: one rank).
  const int tp = std::max(flags.tp, 1), pp = std::max(flags.pp, 1);
  flags.tp = tp, flags.pp = pp;
  HostFacts facts;
  facts.world_size = facts.ranks_per_host = tp * pp;
  facts.free_per_rank.assign(size_t(tp * pp), 1.0);
  facts.hosts.assign(size_t(tp * pp), "host");
  const Topology topo = resolve_topology(flags, facts, c);
  std::printf("layout        tp %d x pp %d%s%s\n", tp, pp,
              c.is_moe() ? (std::string(", moe split ") + moe_split_name(topo.moe_split)).c_str() : "",
              is_quantized(weight_dtype) ? (std::string(", weights ") + dtype_name(weight_dtype)).c_str() : "");
  for (int rank = 0; rank < tp * pp; ++rank) {
    const ParallelLayout l = ParallelLayout::make(c, tp * pp, rank, tp, pp, topo.layer_counts, topo.moe_split);
    const ModelWeights w = load_weights(index, c, l, weight_dtype, /*read=*/false);
    std::printf("rank %-4d     pp %d tp %d, layers [%lld,%lld)", rank, l.pp_rank, l.tp_rank, (long long)l.layers.begin,
                (long long)l.layers.end);
    if (c.is_moe() && topo.moe_split == MoeSplit::kExperts)
      std::printf(", experts [%lld,%lld)", (long long)l.experts.begin, (long long)l.experts.end);
    std::printf(": %.2f MB\n", w.bytes / 1e6);
  }
  return 0;
}

}  // namespace meshlm
