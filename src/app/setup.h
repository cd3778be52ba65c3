// The start-up steps that generate and bench share: choosing the layout from the flags and the hosts, and loading
// this rank's slice of the model. Each ends with the all-or-none agreement, so one rank's error ends every rank.
#pragma once
#include <cstdint>
#include <cxxopts.hpp>
#include <memory>

#include "app/model_share.h"
#include "app/topology.h"
#include "comm/comm.h"
#include "comm/group.h"
#include "model/parallel_layout.h"
#include "model/transformer.h"

namespace meshlm {

struct RankPlan {
  HostFacts facts;
  Topology topo;
  ParallelLayout layout;
  int threads = 1;  // kernel threads of this rank (set_matmul_threads has been called)
  bool driver() const { return layout.pp_rank == 0 && layout.tp_rank == 0; }
};
struct SpeedFlags;
// Collective, after the options are parsed: makes sure every rank can read the model (app/model_share.h: a rank
// without it gets the small files and headers now, its slices in fetch_slices() later), points model_dir at where
// this rank reads it, and loads the config.
ModelSource open_model(const MpiSession& mpi, const char* verb, std::string& model_dir, const LayoutFlags& flags,
                       ModelConfig& config);
// Collective: what every rank knows of its host, after checking that every rank has the same meshlm and model
// files (app/fingerprint.h).
HostFacts survey_hosts(const MpiSession& mpi, const char* verb, const std::string& model_dir, const LayoutFlags& flags);
// The layout of every rank: from --tp/--pp, or (without them, on more than one rank) the planner's best for `work`
// after a quick measurement of the hosts and links. Sets this rank's kernel threads (--threads, or its share of its
// host's cores).
RankPlan plan_ranks(const MpiSession& mpi, const char* verb, HostFacts facts, const std::string& model_dir,
                    const LayoutFlags& flags, const ModelConfig& config, const SpeedFlags& speed,
                    const Workload& work);

// The layout flags generate and bench share: --tp, --pp, --layer-split, --moe-split.
void add_layout_options(cxxopts::Options& options);
LayoutFlags read_layout_flags(const cxxopts::ParseResult& r);  // throws Error on a bad value
// "16G", "512M", "1.5GiB", "1000000": bytes (K/M/G/T are powers of 1000, KiB/MiB/GiB/TiB of 1024).
double parse_bytes(const std::string& text, const char* option = "--memory-limit");

// The speed flags generate and bench share.
struct SpeedFlags {
  int threads = 0;                   // --threads: kernel threads per rank (0: this rank's share of the host's cores)
  DType weight_dtype = DType::kF32;  // --weight-dtype: kQ8_0 / kQ4_0 quantize at load; kF32 keeps the stored dtype
  TpComm comm;                       // --wire-dtype, --comm-chunks
  MlaMode mla = MlaMode::kAuto;      // --mla-attention (DeepSeek-V3)
  Compute compute = Compute::kExact; // --compute: fp32 activations, or lower-precision ones where faster
};
void add_speed_options(cxxopts::Options& options);
// "avx512, compute exact": the kernels' instruction set and the compute mode, for run summaries.
std::string compute_label(Compute compute);
SpeedFlags read_speed_flags(const cxxopts::ParseResult& r);  // throws Error on a bad value

struct LoadedModel {
  std::unique_ptr<Transformer> model;
  uint64_t weight_bytes = 0;    // held by this rank
  uint64_t streamed_bytes = 0;  // read by this rank in every step (all but an embedding used only for lookups and
                                // routed experts, which count as they are used: Transformer::moe())
  int kept_unquantized = 0;     // with --weight-dtype: matrices left in their stored dtype
};
// Reads this rank's rows, columns and layers (quantized when speed.weight_dtype is kQ8_0 / kQ4_0); a KV cache of
// kv_blocks blocks (check_memory's) for up to `slots` sequences of up to `ctx` positions; the tensor group's
// all-reduces as speed.comm says.
LoadedModel load_model(const std::string& model_dir, const ModelConfig& config, const ParallelLayout& layout,
                       Group* tp, int slots, int64_t kv_blocks, int64_t ctx, int64_t max_step_tokens,
                       const SpeedFlags& speed);

// What a rank will hold, computed before loading anything (no weights are read).
struct MemoryNeed {
  double weights = 0;     // bytes
  double kv = 0;          // bytes of KV cache that `slots` sequences at full context would use
  double kv_block = 0;    // bytes of one KV block on this rank
  double min_blocks = 0;  // blocks of one sequence at full context
};
MemoryNeed memory_need(const std::string& model_dir, const ModelConfig& config, const ParallelLayout& layout,
                       int64_t slots, int64_t ctx, const SpeedFlags& speed);
// Collective: refuses (rank 0 prints one line with the numbers and a suggestion; every rank throws AlreadyReported)
// a layout whose ranks on some host need more than that host has available (capped by --memory-limit) for their
// weights and one sequence's KV cache (or --kv-memory), rather than being killed by the OOM killer in the middle of
// loading. Returns the KV blocks every rank allocates: --kv-memory's, or what is left after the weights, up to
// need.kv.
int64_t check_memory(const MpiSession& mpi, const char* verb, const RankPlan& plan, const MemoryNeed& need,
                     const LayoutFlags& flags);

// Bytes one whole copy of the model holds as loaded (a dry run: nothing is read).
double replica_weight_bytes(const std::string& model_dir, const ModelConfig& config, const SpeedFlags& speed);

// --weight-dtype: "stored" (kF32 here means: keep what the checkpoint has), "q8_0" or "q4_0". Throws Error otherwise.
DType parse_weight_dtype(const std::string& text);

}  // namespace meshlm
