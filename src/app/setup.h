// The start-up steps that generate and bench share: choosing the layout from the flags and the hosts, and loading
// this rank's slice of the model. Each ends with the all-or-none agreement, so one rank's error ends every rank.
#pragma once
#include <cstdint>
#include <memory>

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
// threads: --threads (0: this rank's share of its host's cores).
RankPlan plan_ranks(const MpiSession& mpi, const char* verb, const LayoutFlags& flags, const ModelConfig& config,
                    int threads);

struct LoadedModel {
  std::unique_ptr<Transformer> model;
  uint64_t weight_bytes = 0;    // held by this rank
  uint64_t streamed_bytes = 0;  // read by this rank in every step (all but an embedding used only for lookups)
};
// Reads this rank's rows, columns and layers; KV cache for `slots` sequences of `ctx` positions.
LoadedModel load_model(const std::string& model_dir, const ModelConfig& config, const ParallelLayout& layout,
                       Group* tp, int slots, int64_t ctx, int64_t max_step_tokens);

}  // namespace meshlm
