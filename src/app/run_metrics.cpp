#include "app/run_metrics.h"

#include <sys/resource.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/check.h"

namespace meshlm {

uint64_t peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
#ifdef __APPLE__
  return uint64_t(u.ru_maxrss);  // bytes on macOS
#else
  return uint64_t(u.ru_maxrss) * 1024;  // kilobytes on Linux
#endif
}

std::vector<RankMetrics> gather_metrics(Group& world, const RankMetrics& mine) {
  std::vector<RankMetrics> all(size_t(world.size()));
  MPI_Gather(&mine, sizeof mine, MPI_BYTE, all.data(), sizeof mine, MPI_BYTE, 0, world.raw());
  if (world.rank() != 0) all.clear();
  return all;
}

namespace {
struct Totals {
  int64_t requests = 0, prompt = 0, generated = 0;
  double wall = 0;
};
Totals totals(const std::vector<RankMetrics>& ranks) {
  Totals t;
  for (const RankMetrics& r : ranks) {
    t.requests += r.requests;
    t.prompt += r.prompt_tokens;
    t.generated += r.generated_tokens;
    t.wall = std::max(t.wall, r.wall_s);
  }
  return t;
}
}  // namespace

void print_summary(FILE* out, const RunInfo& info, const std::vector<RankMetrics>& ranks) {
  const Totals t = totals(ranks);
  const double wall = std::max(t.wall, 1e-9);
  std::fprintf(out,
               "meshlm: %lld requests, %lld prompt + %lld generated tokens in %.3f s: %.1f generated tok/s, "
               "%.1f total tok/s (tp %d x pp %d x dp %d, %d micro-batch%s, batch %d)\n",
               (long long)t.requests, (long long)t.prompt, (long long)t.generated, t.wall, t.generated / wall,
               (t.prompt + t.generated) / wall, info.topology.tp, info.topology.pp, info.topology.dp,
               info.micro_batches, info.micro_batches == 1 ? "" : "es", info.batch_size);
  std::fprintf(out, "meshlm: rank  host          dp pp tp  layers    weights MB   KV MB  peak RSS MB  compute s"
                    "  comm s   sent MB\n");
  for (const RankMetrics& r : ranks)
    std::fprintf(out, "meshlm: %4d  %-12.12s %3d %2d %2d  [%3lld,%3lld) %10.2f %7.2f %12.1f %10.3f %7.3f %9.2f\n",
                 r.world_rank, r.host, r.dp, r.pp, r.tp, (long long)r.layer_begin, (long long)r.layer_end,
                 r.weight_bytes / 1e6, r.kv_bytes / 1e6, r.peak_rss / 1e6, r.compute_s, r.comm_s, r.bytes_sent / 1e6);
}

void write_metrics_json(const std::string& path, const RunInfo& info, const std::vector<RankMetrics>& ranks) {
  const Totals t = totals(ranks);
  nlohmann::ordered_json j;
  j["model"] = info.model;
  j["layout"] = {{"tp", info.topology.tp}, {"pp", info.topology.pp}, {"dp", info.topology.dp},
                 {"layer_counts", info.topology.layer_counts}, {"micro_batches", info.micro_batches},
                 {"batch_size", info.batch_size}, {"how", info.topology.how}};
  j["requests"] = t.requests;
  j["prompt_tokens"] = t.prompt;
  j["generated_tokens"] = t.generated;
  j["seconds"] = t.wall;
  j["generated_tokens_per_s"] = t.generated / std::max(t.wall, 1e-9);
  j["total_tokens_per_s"] = (t.prompt + t.generated) / std::max(t.wall, 1e-9);
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (const RankMetrics& r : ranks)
    rows.push_back({{"rank", r.world_rank}, {"host", r.host}, {"dp", r.dp}, {"pp", r.pp}, {"tp", r.tp},
                    {"layers", {r.layer_begin, r.layer_end}}, {"weight_bytes", r.weight_bytes},
                    {"kv_cache_bytes", r.kv_bytes}, {"peak_rss_bytes", r.peak_rss}, {"compute_s", r.compute_s},
                    {"comm_s", r.comm_s}, {"bytes_sent", r.bytes_sent}, {"wall_s", r.wall_s}});
  j["ranks"] = rows;
  std::ofstream f(path);
  MESH_CHECK(f.good(), path, ": cannot write the metrics file");
  f << j.dump(2) << "\n";
  MESH_CHECK(f.good(), path, ": write failed");
}

}  // namespace meshlm
