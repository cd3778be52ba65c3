#include "app/topology.h"

#include <mpi.h>
#include <sched.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>
#include <unistd.h>

#include "comm/comm.h"
#include "core/check.h"
#include "model/parallel_layout.h"

namespace meshlm {
namespace {

// MemAvailable from /proc/meminfo, or physical memory where there is no such file.
double available_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  double kb = 0;
  while (in >> key >> kb) {
    if (key == "MemAvailable:") return kb * 1024.0;
    in.ignore(256, '\n');
  }
  return double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGESIZE));
}

}  // namespace

HostFacts gather_host_facts(double memory_limit) {
  HostFacts f;
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &f.world_size);
  MPI_Comm local;
  MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &local));
  int local_size = 1, local_rank = 0;
  MPI_Comm_size(local, &local_size);
  MPI_Comm_rank(local, &local_rank);
  MPI_Comm_free(&local);

  struct Fact {
    int local_size, local_rank;
    double free;
    char host[64];
  } mine{local_size, local_rank, available_memory_bytes(), {}};
  if (memory_limit > 0) mine.free = std::min(mine.free, memory_limit);
  mine.free /= local_size;
  char name[MPI_MAX_PROCESSOR_NAME] = {};
  int len = 0;
  MPI_Get_processor_name(name, &len);
  std::snprintf(mine.host, sizeof mine.host, "%s", name);
  std::vector<Fact> all(size_t(f.world_size));
  MPI_CHECK(MPI_Allgather(&mine, sizeof mine, MPI_BYTE, all.data(), sizeof mine, MPI_BYTE, MPI_COMM_WORLD));

  std::set<std::string> names;
  f.ranks_per_host = all[0].local_size;
  for (int r = 0; r < f.world_size; ++r) {
    const Fact& x = all[size_t(r)];
    f.free_per_rank.push_back(x.free);
    f.hosts.emplace_back(x.host);
    names.insert(x.host);
    // TP within a host needs every host to run the same number of ranks, numbered contiguously.
    if (x.local_size != f.ranks_per_host || x.local_rank != r % f.ranks_per_host) f.ranks_per_host = 0;
  }
  f.n_hosts = int(names.size());
  return f;
}

Topology resolve_topology(const LayoutFlags& flags, const HostFacts& facts, const ModelConfig& c,
                          const AutoPlan* plan) {
  Topology t;
  std::ostringstream how;
  if (flags.tp == 0 && flags.pp == 0 && facts.world_size == 1) {
    how << "one rank";
  } else if (flags.tp == 0 && flags.pp == 0) {
    MESH_CHECK(plan && !plan->rows.empty(), "no layout of ", facts.world_size, " ranks suits this model");
    const PlanRow& best = plan->rows.front();
    t.tp = best.tp, t.pp = best.pp, t.dp = best.dp, t.moe_split = best.moe_split;
    t.layer_counts = best.layer_counts;
    char measured[48];
    std::snprintf(measured, sizeof measured, " (hosts measured in %.2f s; set --tp/--pp to choose)",
                  plan->probe_seconds);
    t.how = "auto: " + plan_reason(plan->cluster, best) + measured;
    check_degrees(facts.world_size, t.tp, t.pp, c, t.moe_split);
    if (flags.layer_split.empty() || flags.layer_split == "auto") return t;
    t.layer_counts = layer_counts(c.n_layers, t.pp, parse_layer_split(flags.layer_split));
    t.how += "; layers from --layer-split";
    return t;
  } else {
    t.tp = std::max(flags.tp, 1), t.pp = std::max(flags.pp, 1);
    how << "from --tp/--pp";
  }
  t.moe_split = flags.moe_split.empty() ? kDefaultMoeSplit : parse_moe_split(flags.moe_split);
  check_degrees(facts.world_size, t.tp, t.pp, c, t.moe_split);
  t.dp = facts.world_size / (t.tp * t.pp);
  // Layers weigh their matmul parameters (all experts included), the first stage the embedding, the last the head.
  const std::vector<double> costs = layer_params(c);
  std::vector<double> ends(size_t(t.pp), 0.0);
  ends.back() += head_params(c);
  if (flags.layer_split == "auto") {
    // The busiest stage relative to the free memory of its most constrained rank (over all replicas) is minimized,
    // so no stage is given more than its share of the bytes.
    std::vector<double> weight(size_t(t.pp), 1e300);
    for (int r = 0; r < facts.world_size; ++r) {
      const int s = place(r, t.tp, t.pp).pp;
      weight[size_t(s)] = std::min(weight[size_t(s)], facts.free_per_rank[size_t(r)]);
    }
    if (!c.tie_embeddings || t.pp > 1) ends.front() += head_params(c);  // the embedding, held by the first stage
    t.layer_counts = layer_counts_fit(costs, weight, ends);
    how << "; layers split by free memory";
  } else if (flags.layer_split.empty()) {
    t.layer_counts = layer_counts_fit(costs, std::vector<double>(size_t(t.pp), 1.0), ends);
    if (t.pp > 1) how << "; layers balanced with the lm_head on the last stage";
  } else {
    t.layer_counts = layer_counts(c.n_layers, t.pp, parse_layer_split(flags.layer_split));
  }
  t.how = how.str();
  return t;
}

int default_threads(const HostFacts& facts, int world_rank) {
  const std::string& mine = facts.hosts.at(size_t(world_rank));
  const int here = int(std::count(facts.hosts.begin(), facts.hosts.end(), mine));
  const int cores = std::max(1, int(std::thread::hardware_concurrency()));
  int allowed = cores;
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) allowed = std::max(1, CPU_COUNT(&set));
  return std::max(1, std::min(allowed, cores / std::max(1, here)));
}

}  // namespace meshlm
