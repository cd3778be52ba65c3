// The layout planner: from what was measured about the hosts and links, and what the model and the workload need,
// every tp x pp x dp layout of the job's ranks with its memory per host and a predicted speed, best first.
// Pure (no MPI): `meshlm plan`, and generate / bench without --tp/--pp, call it with the same numbers on every rank.
//
// The model of a step (per replica; ranks on one host share its bandwidth and sgemm rate evenly):
//   stage time(n rows) = max over its tp ranks of max(bytes read / rank bandwidth,
//                                                      flops / (rank sgemm rate x n / (n + 8)))
//                        + per layer two all-reduces of n x dim floats over the tp group's link
//   one micro-batch's trip = Σ stages (stage time + send to the next stage) + the tokens' return to the driver
//   a round of M micro-batches = max(trip, M x slowest stage); it yields every slot's tokens.
// Decode reads every weight once per step (routed experts as far as n rows touch them) and each sequence's KV cache;
// prefill is chunks of up to max_batch_tokens. Replicas take requests from a shared queue, so the job's rate is the
// sum of theirs.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/hf_config.h"
#include "model/parallel_layout.h"

namespace meshlm {

struct HostSpec {
  std::string name;
  int ranks = 1;        // ranks mpirun started there
  int cores = 1;
  double memory = 0;    // bytes meshlm may use there (available memory, capped by --memory-limit)
  double read_bw = 0;   // bytes/s, all its ranks reading at once
  double flops = 0;     // flop/s of sgemm, all its ranks at once
};

struct LinkSpec {
  double latency = 0;    // seconds, one way, small message
  double bandwidth = 0;  // bytes/s
  double time(double bytes) const { return latency + (bandwidth > 0 ? bytes / bandwidth : 0.0); }
};

struct ClusterSpec {
  std::vector<HostSpec> hosts;
  std::vector<int> rank_host;   // (world) index into hosts of each rank
  LinkSpec intra;               // between ranks of one host
  LinkSpec inter;               // between hosts (the slowest pair measured)
  int world_size() const { return int(rank_host.size()); }
  int host_of(int world_rank) const { return rank_host.at(size_t(world_rank)); }
  // Appends a host whose ranks follow the ranks already there (mpirun's default --map-by slot).
  void add_host(const HostSpec& h);
};

// What the planner needs of a model: bytes held and read, flops, KV per position. Built from the config and the
// bytes one full copy holds (dry-run loader), so quantized and MLX weights count as they are stored.
struct ModelSpec {
  ModelConfig config;
  std::vector<double> layer_bytes;   // (n_layers) weights of each layer, all experts included
  std::vector<double> expert_bytes;  // (n_layers) of which routed experts (read only as far as tokens touch them)
  double embed_bytes = 0;            // the embedding table (held by the first stage)
  double head_bytes = 0;             // the lm_head (the embedding again when tied; held by the last stage)
  std::vector<double> layer_flops;   // (n_layers) per token: 2 x active parameters
  double head_flops = 0;             // per token whose logits are taken
  double kv_bytes_per_position = 0;  // K and V of one position in one layer, all kv heads
};
ModelSpec model_spec(const ModelConfig& c, double replica_weight_bytes);

struct Workload {
  int64_t requests = 64;
  double prompt_len = 128, gen_len = 128;  // means
  int64_t ctx = 256;                       // positions per sequence (KV cache)
  int max_batch = 8;                       // sequences in flight per replica
  int max_batch_tokens = 512;
};

struct PlanRow {
  int tp = 1, pp = 1, dp = 1;
  MoeSplit moe_split = kDefaultMoeSplit;
  std::vector<int64_t> layer_counts;  // (pp)
  bool fits = false;
  std::vector<double> host_bytes;     // (hosts) weights + KV on each host
  double prefill_tps = 0, decode_tps = 0;  // whole job, tokens/s
  double tokens_per_s = 0;            // generated tokens / predicted wall time
  double seconds = 0;                 // predicted wall time of the workload
  std::string bound;                  // "memory", "compute" or "link": the largest part of the slowest stage's step
  int host_span = 1;                  // hosts one replica spans
  std::string command_flags() const;  // "--tp 2 --pp 1 --layer-split 3,2" as generate takes them
};

// Every layout of the cluster's ranks that the model allows, ranked: layouts that fit first, then by predicted
// time; within 5% of the best, the one with more replicas and fewer hosts per replica comes first.
// moe_split: "" tries both splits for a mixture of experts; otherwise only that one.
std::vector<PlanRow> plan_layouts(const ClusterSpec& cluster, const ModelSpec& model, const Workload& work,
                                  const std::string& moe_split = "");

// "1.23 GB" or "4.56 MB".
std::string bytes_text(double bytes);
// One line for the banner: what the first row is and why.
std::string plan_reason(const ClusterSpec& cluster, const PlanRow& best);

}  // namespace meshlm
