// The run summary: per rank, what it held, how long it computed and communicated, and what it sent; gathered on
// rank 0, printed as a table, and written as JSON with --metrics-json.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "app/topology.h"
#include "comm/group.h"
#include "model/parallel_layout.h"

namespace meshlm {

struct RankMetrics {
  int32_t world_rank = 0, dp = 0, pp = 0, tp = 0;
  int64_t layer_begin = 0, layer_end = 0;
  uint64_t weight_bytes = 0, kv_bytes = 0, peak_rss = 0, bytes_sent = 0;
  double kv_bytes_per_token = 0;  // this rank's KV cache bytes per position (MLA: the latent's)
  double compute_s = 0, comm_s = 0, wall_s = 0;
  OpStats comm_ops[kCommOps];  // communication by kind of call (comm_s and bytes_sent are their sums)
  int64_t requests = 0, prompt_tokens = 0, generated_tokens = 0;  // drivers only: prompt tokens computed
  int64_t reused_tokens = 0, preemptions = 0, peak_sequences = 0;                     // drivers only: prompt tokens from the prefix cache
  int64_t kv_blocks = 0, kv_blocks_peak = 0, kv_blocks_cached = 0;  // drivers only (runtime/engine.h)
  uint64_t received_bytes = 0;  // weights sent to this rank by one that has the model (app/model_share.h)
  double received_s = 0;
  double expert_work = 0;  // MoE: token rows through this rank's experts x its share of each expert's width
  char host[64] = {};
};

// This process's peak resident set size in bytes.
uint64_t peak_rss_bytes();

// Rank 0 gets every rank's metrics (in rank order); other ranks get an empty vector.
std::vector<RankMetrics> gather_metrics(Group& world, const RankMetrics& mine);

// Per-request latencies in seconds: time to first token (from admission), and time per output token after it.
struct Latencies {
  std::vector<double> ttft, tpot;
};
// Rank 0 gets everyone's (concatenated); other ranks get nothing.
Latencies gather_latencies(Group& world, const Latencies& mine);

// MoE: every rank's token rows per expert (n_experts each, global ids; all layers), on rank 0; empty for dense models.
std::vector<std::vector<double>> gather_expert_rows(Group& world, const std::vector<int64_t>& mine);

struct RunInfo {
  std::string model;
  Topology topology;
  int micro_batches = 1, batch_size = 1;
  Latencies latencies;
  std::vector<std::vector<double>> expert_rows;  // (ranks, n_experts) or empty
};
void print_summary(FILE* out, const RunInfo& info, const std::vector<RankMetrics>& ranks);
void write_metrics_json(const std::string& path, const RunInfo& info, const std::vector<RankMetrics>& ranks);

}  // namespace meshlm
