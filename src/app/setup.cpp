#include "app/setup.h"

#include "core/check.h"
#include "io/weight_index.h"
#include "kernels/matmul.h"

namespace meshlm {

RankPlan plan_ranks(const MpiSession& mpi, const char* verb, const LayoutFlags& flags, const ModelConfig& config,
                    int threads) {
  RankPlan p;
  p.facts = gather_host_facts();
  mpi.all_or_none(verb, [&] {
    p.topo = resolve_topology(flags, p.facts, config);
    p.layout = ParallelLayout::make(config, mpi.world_size(), mpi.world_rank(), p.topo.tp, p.topo.pp,
                                    p.topo.layer_counts);
  });
  p.threads = threads > 0 ? threads : default_threads(p.facts, mpi.world_rank());
  set_matmul_threads(p.threads);
  return p;
}

LoadedModel load_model(const std::string& model_dir, const ModelConfig& config, const ParallelLayout& layout,
                       Group* tp, int slots, int64_t ctx, int64_t max_step_tokens, DType quantize_to) {
  LoadedModel m;
  const WeightIndex index(model_dir);
  ModelWeights weights = load_weights(index, config, layout, quantize_to);
  m.kept_unquantized = weights.kept_unquantized;
  m.weight_bytes = m.streamed_bytes = weights.bytes;
  const bool embedding_is_head = layout.last_stage() && weights.lm_head.empty();
  if (!embedding_is_head) m.streamed_bytes -= weights.embed_tokens.bytes.size();
  m.model = std::make_unique<Transformer>(config, std::move(weights), layout, tp, slots, ctx, max_step_tokens);
  return m;
}

DType parse_weight_dtype(const std::string& text) {
  if (text == "stored") return DType::kF32;
  if (text == "q8_0") return DType::kQ8_0;
  if (text == "q4_0") return DType::kQ4_0;
  fail("--weight-dtype must be stored, q8_0 or q4_0, got '", text, "'");
}

}  // namespace meshlm
