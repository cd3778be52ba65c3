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
                                    p.topo.layer_counts, p.topo.moe_split);
  });
  p.threads = threads > 0 ? threads : default_threads(p.facts, mpi.world_rank());
  set_matmul_threads(p.threads);
  return p;
}

LoadedModel load_model(const std::string& model_dir, const ModelConfig& config, const ParallelLayout& layout,
                       Group* tp, int slots, int64_t ctx, int64_t max_step_tokens, const SpeedFlags& speed) {
  LoadedModel m;
  const WeightIndex index(model_dir);
  ModelWeights weights = load_weights(index, config, layout, speed.weight_dtype);
  m.kept_unquantized = weights.kept_unquantized;
  m.weight_bytes = m.streamed_bytes = weights.bytes;
  const bool embedding_is_head = layout.last_stage() && weights.lm_head.empty();
  if (!embedding_is_head) m.streamed_bytes -= weights.embed_tokens.held_bytes();
  for (const LayerWeights& L : weights.layers) m.streamed_bytes -= L.moe.expert_bytes;  // read only when routed to
  m.model = std::make_unique<Transformer>(config, std::move(weights), layout, tp, slots, ctx, max_step_tokens);
  m.model->set_tp_comm(speed.comm);
  return m;
}

DType parse_weight_dtype(const std::string& text) {
  if (text == "stored") return DType::kF32;
  if (text == "q8_0") return DType::kQ8_0;
  if (text == "q4_0") return DType::kQ4_0;
  fail("--weight-dtype must be stored, q8_0 or q4_0, got '", text, "'");
}

void add_layout_options(cxxopts::Options& o) {
  o.add_options("layout")
      ("tp", "Tensor-parallel ranks per stage (default: chosen from the hosts)", cxxopts::value<int>())
      ("pp", "Pipeline stages (default: chosen from the hosts); data-parallel replicas = ranks / (tp*pp)",
       cxxopts::value<int>())
      ("layer-split", "Layers per pipeline stage, e.g. 10,12,10, or 'auto' to weight by each host's free memory "
                      "(default: balanced by weight bytes, counting the lm_head as work of the last stage)",
       cxxopts::value<std::string>())
      ("moe-split", std::string("Mixture-of-experts layers under tensor parallelism: experts (each rank holds whole "
                                "experts) or tensor (every expert split like a dense MLP); default ") +
                        moe_split_name(kDefaultMoeSplit), cxxopts::value<std::string>());
}

LayoutFlags read_layout_flags(const cxxopts::ParseResult& r) {
  LayoutFlags f;
  if (r.count("tp")) f.tp = r["tp"].as<int>();
  if (r.count("pp")) f.pp = r["pp"].as<int>();
  if (r.count("layer-split")) f.layer_split = r["layer-split"].as<std::string>();
  if (r.count("moe-split")) parse_moe_split(f.moe_split = r["moe-split"].as<std::string>());
  return f;
}

void add_speed_options(cxxopts::Options& o) {
  o.add_options("speed")
      ("threads", "Kernel threads per rank (default: the cores this rank may use, shared with the other ranks on "
                  "its host)", cxxopts::value<int>()->default_value("0"))
      ("weight-dtype", "stored | q8_0 | q4_0: quantize the weight matrices at load into blocks of 32 with int8 dot "
                       "products (faster decode, lower accuracy)", cxxopts::value<std::string>()->default_value("stored"))
      ("wire-dtype", "f32 | bf16: how activations travel between ranks (all-reduces and pipeline sends); bf16 "
                     "halves the bytes but rounds the sums, so tokens may differ from a single rank's",
       cxxopts::value<std::string>()->default_value("f32"))
      ("comm-chunks", "Parts each tensor-parallel all-reduce is split into, each sent while the next is computed "
                      "(1: compute, then reduce)", cxxopts::value<int>()->default_value("4"));
}

SpeedFlags read_speed_flags(const cxxopts::ParseResult& r) {
  SpeedFlags s;
  s.threads = r["threads"].as<int>();
  MESH_CHECK(s.threads >= 0, "--threads must be >= 0, got ", s.threads);
  s.weight_dtype = parse_weight_dtype(r["weight-dtype"].as<std::string>());
  s.comm.wire = parse_wire_dtype(r["wire-dtype"].as<std::string>());
  s.comm.chunks = r["comm-chunks"].as<int>();
  MESH_CHECK(s.comm.chunks >= 1 && s.comm.chunks <= 64, "--comm-chunks must be in 1..64, got ", s.comm.chunks);
  return s;
}

}  // namespace meshlm
