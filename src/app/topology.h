// From the --tp/--pp/--layer-split flags and what the ranks know about their hosts to the layout of every rank.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "app/planner.h"
#include "io/hf_config.h"
#include "model/parallel_layout.h"

namespace meshlm {

struct LayoutFlags {
  int tp = 0, pp = 0;        // 0: not given
  std::string layer_split;   // "", "auto" or "10,12,10"
  std::string moe_split;     // "", "experts" or "tensor" (--moe-split)
  double memory_limit = 0;   // --memory-limit: bytes meshlm may use per host (0: what the host has available)
  double kv_memory = 0;      // --kv-memory: KV cache bytes per rank (0: what is left after the weights)
  std::string model_cache;   // --model-cache: where a rank without the model keeps what it is sent
  double stall_timeout = 0;  // --stall-timeout: seconds a rank may wait on a peer (0: comm/stall_watch.h's default)
};

// What every rank learned about the hosts, gathered once (collective) before any choice is made.
struct HostFacts {
  int world_size = 1;
  int n_hosts = 1;
  int ranks_per_host = 1;              // 0 when hosts run different numbers of ranks, or not contiguously
  std::vector<double> free_per_rank;   // (world) available memory per rank: the host's MemAvailable (capped by
                                       // memory_limit) / its ranks
  std::vector<std::string> hosts;      // (world) host name of each rank
};
HostFacts gather_host_facts(double memory_limit = 0);

// Kernel threads for this rank: the CPUs it may run on, shared evenly with the other ranks on its host.
int default_threads(const HostFacts& facts, int world_rank);

struct Topology {
  int tp = 1, pp = 1, dp = 1;
  std::vector<int64_t> layer_counts;   // (pp)
  MoeSplit moe_split = MoeSplit::kExperts;  // how a tensor group shares each MoE layer
  std::string how;                     // one line: how it was chosen
};
// Pure: the same answer on every rank. Throws Error with the reason for an impossible layout.
// Without --tp/--pp on more than one rank the layout is the planner's first row (`plan`, app/planner.h), which must
// then be given with the cluster it was made for.
struct AutoPlan {
  ClusterSpec cluster;
  std::vector<PlanRow> rows;  // best first
  double probe_seconds = 0;   // how long measuring the cluster took
};
Topology resolve_topology(const LayoutFlags& flags, const HostFacts& facts, const ModelConfig& config,
                          const AutoPlan* plan = nullptr);

}  // namespace meshlm
