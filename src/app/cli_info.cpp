// meshlm info: what a model directory holds, from its config and safetensors headers only.
#include <cstdio>
#include <map>

#include "app/cli_common.h"
#include "app/commands.h"
#include "io/hf_config.h"
#include "io/weight_index.h"

namespace meshlm {

int run_info(int argc, char** argv) {
  cxxopts::Options o("meshlm info", "Describe a Hugging Face model directory: architecture, dims, parameters, bytes.");
  o.add_options()("model", "Model directory", cxxopts::value<std::string>()->default_value(default_model_dir()));
  cxxopts::ParseResult r;
  if (!parse_options(o, argc, argv, r)) return 0;
  const std::string dir = r["model"].as<std::string>();
  const ModelConfig c = load_model_config(dir);
  const WeightIndex index(dir);
  std::map<std::string, std::pair<int64_t, uint64_t>> by_dtype;  // dtype -> (params, bytes)
  int64_t params = 0;
  for (const TensorInfo* t : index.all()) {
    params += t->numel();
    by_dtype[t->dtype_name].first += t->numel();
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
                                                                   : "");
  std::printf("features      %s%s%s%s%s\n", c.tie_embeddings ? "tied-embeddings " : "", c.qkv_bias ? "qkv-bias " : "",
              c.qk_norm ? "qk-norm " : "", c.mlp_bias ? "mlp-bias " : "",
              c.sliding_window ? ("sliding-window " + std::to_string(c.sliding_window)).c_str() : "");
  std::printf("parameters    %lld (%.2f M)\n", (long long)params, params / 1e6);
  for (auto& [dtype, pb] : by_dtype)
    std::printf("bytes %-7s %llu (%.2f MB, %lld params)\n", dtype.c_str(), (unsigned long long)pb.second,
                pb.second / 1e6, (long long)pb.first);
  return 0;
}

}  // namespace meshlm
