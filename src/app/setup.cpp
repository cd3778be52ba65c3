#include "app/setup.h"

#include "model/kv_cache.h"

#include <mpi.h>

#include <cmath>
#include <cstdio>
#include <map>

#include "app/cluster_probe.h"
#include "app/fingerprint.h"
#include "core/check.h"
#include "io/weight_index.h"
#include "kernels/matmul.h"
#include "kernels/matvec.h"
#include "kernels/qgemm.h"
#include "model/kv_cache.h"

namespace meshlm {

ModelSource open_model(const MpiSession& mpi, const char* verb, std::string& model_dir, const LayoutFlags& flags,
                       ModelConfig& config) {
  const ModelSource source = share_model_files(mpi, verb, model_dir, flags.model_cache);
  model_dir = source.dir;
  mpi.all_or_none(verb, [&] { config = load_model_config(model_dir); });
  return source;
}

HostFacts survey_hosts(const MpiSession& mpi, const char* verb, const std::string& model_dir,
                       const LayoutFlags& flags) {
  HostFacts facts = gather_host_facts(flags.memory_limit);
  check_same_files(mpi, verb, model_dir, facts.hosts);
  return facts;
}

double replica_weight_bytes(const std::string& model_dir, const ModelConfig& config, const SpeedFlags& speed) {
  const WeightIndex index(model_dir);
  return double(load_weights(index, config, ParallelLayout::single(config), speed.weight_dtype, false).bytes);
}

RankPlan plan_ranks(const MpiSession& mpi, const char* verb, HostFacts facts, const std::string& model_dir,
                    const LayoutFlags& flags, const ModelConfig& config, const SpeedFlags& speed,
                    const Workload& work) {
  RankPlan p;
  p.facts = std::move(facts);
  p.threads = speed.threads > 0 ? speed.threads : default_threads(p.facts, mpi.world_rank());
  set_matmul_threads(p.threads);  // the probe measures with the threads the rank will run
  std::unique_ptr<AutoPlan> plan;
  if (flags.tp == 0 && flags.pp == 0 && mpi.world_size() > 1) {
    double bytes = 0;
    mpi.all_or_none(verb, [&] { bytes = replica_weight_bytes(model_dir, config, speed); });
    const ClusterProbe probe = probe_cluster(p.facts, /*quick=*/true);
    plan = std::make_unique<AutoPlan>();
    plan->cluster = probe.cluster;
    plan->probe_seconds = probe.seconds;
    mpi.all_or_none(verb, [&] {
      plan->rows = plan_layouts(plan->cluster, model_spec(config, bytes), work, flags.moe_split);
      if (!flags.layer_split.empty() && flags.layer_split != "auto") {
        const size_t stages = parse_layer_split(flags.layer_split).size();
        std::erase_if(plan->rows, [&](const PlanRow& r) { return size_t(r.pp) != stages; });
      }
    });
  }
  mpi.all_or_none(verb, [&] {
    p.topo = resolve_topology(flags, p.facts, config, plan.get());
    p.layout = ParallelLayout::make(config, mpi.world_size(), mpi.world_rank(), p.topo.tp, p.topo.pp,
                                    p.topo.layer_counts, p.topo.moe_split);
  });
  return p;
}

MemoryNeed memory_need(const std::string& model_dir, const ModelConfig& config, const ParallelLayout& layout,
                       int64_t slots, int64_t ctx, const SpeedFlags& speed) {
  MemoryNeed need;
  const WeightIndex index(model_dir);
  need.weights = double(load_weights(index, config, layout, speed.weight_dtype, /*read=*/false).bytes);
  need.kv_block = double(KVCache::block_bytes(layout.layers.size(), config.cache_row(layout.kv_heads.size()),
                                              config.cache_planes()));
  const int64_t per_sequence = KVCache::blocks_for(ctx);
  need.min_blocks = double(per_sequence);
  need.kv = need.kv_block * double(per_sequence) * double(slots);
  return need;
}

int64_t check_memory(const MpiSession& mpi, const char* verb, const RankPlan& plan, const MemoryNeed& need,
                     const LayoutFlags& flags) {
  const int world = mpi.world_size();
  std::vector<MemoryNeed> all(static_cast<size_t>(world));
  MPI_CHECK(MPI_Allgather(&need, sizeof need, MPI_BYTE, all.data(), sizeof need, MPI_BYTE, MPI_COMM_WORLD));
  // Per host: the ranks' needs against the host's available memory (free_per_rank sums back to it).
  std::map<std::string, MemoryNeed> host_need;
  std::map<std::string, double> host_least_kv;  // --kv-memory, or one sequence at full context, per rank
  std::map<std::string, double> host_free;
  std::map<std::string, std::string> host_ranks;
  double total_weights = 0, least_free = 0;
  for (int r = 0; r < world; ++r) {
    const std::string& h = plan.facts.hosts[size_t(r)];
    const MemoryNeed& n = all[size_t(r)];
    host_need[h].weights += n.weights, host_need[h].kv += n.kv;
    host_least_kv[h] += flags.kv_memory > 0 ? flags.kv_memory : n.kv_block * n.min_blocks;
    host_free[h] += plan.facts.free_per_rank[size_t(r)];
    host_ranks[h] += (host_ranks[h].empty() ? "" : ",") + std::to_string(r);
    total_weights += n.weights;
  }
  const auto size = [](double b) {
    char buf[32];
    std::snprintf(buf, sizeof buf, b >= 1e9 ? "%.2f GB" : "%.2f MB", b >= 1e9 ? b / 1e9 : b / 1e6);
    return std::string(buf);
  };
  for (const auto& [h, f] : host_free) least_free = least_free == 0 ? f : std::min(least_free, f);
  for (const auto& [h, n] : host_need) {
    const double least_kv = host_least_kv[h];
    if (n.weights + least_kv <= host_free[h]) continue;
    // Pipeline stages over hosts like the smallest one would divide the weights of one replica.
    const double replica = total_weights / std::max(1, plan.topo.dp);
    const int stages = int(std::ceil(replica / std::max(1.0, least_free - least_kv)));
    if (mpi.world_rank() == 0) {
      std::fprintf(stderr, "meshlm %s: error: this layout needs %s on %s (ranks %s: weights %s + KV cache %s%s) but "
                           "%s has %s %s; split the model over more hosts (e.g. --pp %d, one rank per host) or lower "
                           "--max-context%s\n",
                   verb, size(n.weights + least_kv).c_str(), h.c_str(), host_ranks[h].c_str(),
                   size(n.weights).c_str(), size(least_kv).c_str(),
                   flags.kv_memory > 0 ? " (--kv-memory)" : " for one sequence", h.c_str(), size(host_free[h]).c_str(),
                   flags.memory_limit > 0 ? "under --memory-limit" : "available", std::max(stages, plan.topo.pp + 1),
                   flags.kv_memory > 0 ? " or --kv-memory" : "");
      std::fflush(stderr);
    }
    throw AlreadyReported();
  }
  // Blocks: --kv-memory per rank, or the rank's share of what its host has left after the weights (keeping a tenth
  // for activations), never more than every sequence in flight at full context can use. Every rank of the job takes
  // the least.
  int64_t blocks = INT64_MAX;
  std::string tightest;
  for (int r = 0; r < world; ++r) {
    const std::string& h = plan.facts.hosts[size_t(r)];
    const MemoryNeed& n = all[size_t(r)];
    const double left = 0.9 * (host_free[h] - host_need[h].weights) * (n.kv / std::max(1.0, host_need[h].kv));
    const double budget = flags.kv_memory > 0 ? flags.kv_memory : std::min(n.kv, left);
    const int64_t b = int64_t(budget / n.kv_block);
    if (b < blocks) blocks = b, tightest = h;
  }
  const int64_t least = int64_t(all[0].min_blocks);
  if (blocks < least) {
    if (mpi.world_rank() == 0) {
      std::fprintf(stderr, "meshlm %s: error: the KV cache on %s holds %lld blocks of %lld positions%s, but one sequence "
                           "of %lld positions needs %lld; raise --kv-memory or lower --max-context\n",
                   verb, tightest.c_str(), (long long)blocks, (long long)KVCache::kBlockTokens,
                   flags.kv_memory > 0 ? " (--kv-memory)" : " after the weights",
                   (long long)(least * KVCache::kBlockTokens), (long long)least);
      std::fflush(stderr);
    }
    throw AlreadyReported();
  }
  return blocks;
}

LoadedModel load_model(const std::string& model_dir, const ModelConfig& config, const ParallelLayout& layout,
                       Group* tp, int slots, int64_t kv_blocks, int64_t ctx, int64_t max_step_tokens,
                       const SpeedFlags& speed) {
  LoadedModel m;
  const WeightIndex index(model_dir);
  // Fast mode on a CPU with bf16 dot products takes f16 weights as bf16 (the same bytes; 8 significant bits of 11).
  const bool f16_as_bf16 = speed.weight_dtype == DType::kF32 && speed.compute == Compute::kFast && bf16_dot_active();
  ModelWeights weights = load_weights(index, config, layout, f16_as_bf16 ? DType::kBF16 : speed.weight_dtype,
                                      /*read=*/true, /*panels_for=*/speed.compute);
  m.kept_unquantized = weights.kept_unquantized;
  m.weight_bytes = m.streamed_bytes = weights.bytes;
  const bool embedding_is_head = layout.last_stage() && weights.lm_head.empty();
  if (!embedding_is_head) m.streamed_bytes -= weights.embed_tokens.held_bytes();
  for (const LayerWeights& L : weights.layers) m.streamed_bytes -= L.moe.expert_bytes;  // read only when routed to
  m.model = std::make_unique<Transformer>(config, std::move(weights), layout, tp, slots, kv_blocks, ctx,
                                          max_step_tokens);
  m.model->set_tp_comm(speed.comm);
  m.model->set_mla_mode(speed.mla);
  set_compute(speed.compute);
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
                        moe_split_name(kDefaultMoeSplit), cxxopts::value<std::string>())
      ("memory-limit", "Memory meshlm may use per host for weights and KV cache, e.g. 16G or 512M (default: what the "
                       "host has available); a layout that needs more is refused at start-up",
       cxxopts::value<std::string>())
      ("kv-memory", "KV cache per rank, e.g. 2G (default: the rank's share of what its host has left after the weights, "
                    "up to what --max-batch sequences at full context use); paged in blocks of 16 positions, so short "
                    "sequences take only what they fill", cxxopts::value<std::string>())
      ("model-cache", "Where a host without the model (its --model missing or incomplete) keeps the slices it is sent "
                      "by a rank that has it, so that the next run reads them there (default: a temporary directory)",
       cxxopts::value<std::string>())
      ("stall-timeout", "Seconds a rank may wait for a peer before it names the silent rank and aborts the job (a "
                        "pulled cable sends no error; default: max(60, 20x the slowest step so far))",
       cxxopts::value<double>());
}

double parse_bytes(const std::string& text, const char* option) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  const std::string unit = text.substr(used);
  const double scale = unit.empty() || unit == "B"   ? 1
                       : unit == "K" || unit == "KB" ? 1e3
                       : unit == "KiB"               ? 1024.0
                       : unit == "M" || unit == "MB" ? 1e6
                       : unit == "MiB"               ? 1048576.0
                       : unit == "G" || unit == "GB" ? 1e9
                       : unit == "GiB"               ? 1073741824.0
                       : unit == "T" || unit == "TB" ? 1e12
                       : unit == "TiB"               ? 1099511627776.0
                                                     : 0;
  MESH_CHECK(used > 0 && scale > 0 && v > 0 && std::isfinite(v), option, ": expected a size like 16G, 512M or "
             "1000000, got '", text, "'");
  return v * scale;
}

LayoutFlags read_layout_flags(const cxxopts::ParseResult& r) {
  LayoutFlags f;
  if (r.count("tp")) f.tp = r["tp"].as<int>();
  if (r.count("pp")) f.pp = r["pp"].as<int>();
  if (r.count("layer-split")) f.layer_split = r["layer-split"].as<std::string>();
  if (r.count("moe-split")) parse_moe_split(f.moe_split = r["moe-split"].as<std::string>());
  if (r.count("model-cache")) f.model_cache = r["model-cache"].as<std::string>();
  if (r.count("memory-limit")) f.memory_limit = parse_bytes(r["memory-limit"].as<std::string>(), "--memory-limit");
  if (r.count("kv-memory")) f.kv_memory = parse_bytes(r["kv-memory"].as<std::string>(), "--kv-memory");
  if (r.count("stall-timeout")) {
    f.stall_timeout = r["stall-timeout"].as<double>();
    MESH_CHECK(f.stall_timeout > 0 && std::isfinite(f.stall_timeout), "--stall-timeout must be a positive number of "
               "seconds");
  }
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
                      "(1: compute, then reduce)", cxxopts::value<int>()->default_value("4"))
      ("mla-attention", "DeepSeek-V3 attention: absorb (kv_b_proj folded into the query and output, scores against "
                        "the cached latents), expand (per-head keys and values expanded from the latents), or auto "
                        "(expand prefill chunks, absorb decode tokens)", cxxopts::value<std::string>()->default_value("auto"))
      ("compute", "exact | fast: exact keeps fp32 activations (results as the reference computes them); fast "
                  "multiplies bf16 weights by bf16 activations (f16 weights rounded to bf16 at load) and q8_0/q4_0 "
                  "and MLX 4/8-bit weights by int8 ones, where the CPU has the instructions (tokens may differ "
                  "slightly)",
       cxxopts::value<std::string>()->default_value("exact"));
}

std::string compute_label(Compute compute) {
  std::string label = isa_name(matmul_isa());
  return label + (compute == Compute::kFast ? ", compute fast (int8 " + std::string(qisa_name(matmul_qisa())) + ")"
                                            : ", compute exact");
}

SpeedFlags read_speed_flags(const cxxopts::ParseResult& r) {
  SpeedFlags s;
  s.threads = r["threads"].as<int>();
  MESH_CHECK(s.threads >= 0, "--threads must be >= 0, got ", s.threads);
  s.weight_dtype = parse_weight_dtype(r["weight-dtype"].as<std::string>());
  s.comm.wire = parse_wire_dtype(r["wire-dtype"].as<std::string>());
  s.comm.chunks = r["comm-chunks"].as<int>();
  MESH_CHECK(s.comm.chunks >= 1 && s.comm.chunks <= 64, "--comm-chunks must be in 1..64, got ", s.comm.chunks);
  s.mla = parse_mla_mode(r["mla-attention"].as<std::string>());
  const std::string compute = r["compute"].as<std::string>();
  MESH_CHECK(compute == "exact" || compute == "fast", "--compute must be exact or fast, got '", compute, "'");
  s.compute = compute == "fast" ? Compute::kFast : Compute::kExact;
  return s;
}

}  // namespace meshlm
