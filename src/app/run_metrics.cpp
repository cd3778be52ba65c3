#include "app/run_metrics.h"

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <numeric>
#include <nlohmann/json.hpp>

#include "comm/comm.h"
#include "core/check.h"
#include "model/kv_cache.h"

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
  MPI_CHECK(MPI_Gather(&mine, sizeof mine, MPI_BYTE, all.data(), sizeof mine, MPI_BYTE, 0, world.raw()));
  if (world.rank() != 0) all.clear();
  return all;
}

namespace {
std::vector<double> gather_doubles(Group& world, const std::vector<double>& mine) {
  const int n = int(mine.size());
  std::vector<int> counts(size_t(world.size()));
  MPI_CHECK(MPI_Gather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, world.raw()));
  std::vector<int> displs(counts.size(), 0);
  for (size_t i = 1; i < counts.size(); ++i) displs[i] = displs[i - 1] + counts[i - 1];
  std::vector<double> all(world.rank() == 0 ? size_t(displs.back() + counts.back()) : 0);
  MPI_CHECK(MPI_Gatherv(mine.data(), n, MPI_DOUBLE, all.data(), counts.data(), displs.data(), MPI_DOUBLE, 0, world.raw()));
  return all;
}

struct Stats {
  double mean = 0, p50 = 0, p99 = 0;
};
Stats stats_of(std::vector<double> v) {  // nearest-rank percentiles
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  for (double x : v) s.mean += x / double(v.size());
  const auto rank = [&](double p) { return v[size_t(std::max(0.0, std::ceil(p * double(v.size())) - 1))]; };
  s.p50 = rank(0.50);
  s.p99 = rank(0.99);
  return s;
}
}  // namespace

Latencies gather_latencies(Group& world, const Latencies& mine) {
  return {gather_doubles(world, mine.ttft), gather_doubles(world, mine.tpot)};
}

std::vector<std::vector<double>> gather_expert_rows(Group& world, const std::vector<int64_t>& mine) {
  const std::vector<double> all = gather_doubles(world, std::vector<double>(mine.begin(), mine.end()));
  std::vector<std::vector<double>> out;
  if (world.rank() != 0 || mine.empty()) return out;
  for (size_t at = 0; at + mine.size() <= all.size(); at += mine.size())
    out.emplace_back(all.begin() + long(at), all.begin() + long(at + mine.size()));
  return out;
}

namespace {
struct Totals {
  int64_t requests = 0, prompt = 0, generated = 0;  // prompt: computed + reused
  int64_t computed = 0, reused = 0, preemptions = 0, kv_blocks = 0, kv_peak = 0, kv_cached = 0, peak_sequences = 0;
  double wall = 0;
  double kv_per_token = 0;  // KV bytes per position over the ranks of one replica
  double hit_rate() const { return prompt > 0 ? double(reused) / double(prompt) : 0.0; }
};
Totals totals(const std::vector<RankMetrics>& ranks) {
  Totals t;
  for (const RankMetrics& r : ranks) {
    t.requests += r.requests;
    t.prompt += r.prompt_tokens + r.reused_tokens;
    t.computed += r.prompt_tokens, t.reused += r.reused_tokens, t.preemptions += r.preemptions;
    t.peak_sequences = std::max(t.peak_sequences, r.peak_sequences);
    t.kv_blocks = std::max(t.kv_blocks, r.kv_blocks), t.kv_peak = std::max(t.kv_peak, r.kv_blocks_peak);
    t.kv_cached = std::max(t.kv_cached, r.kv_blocks_cached);
    t.generated += r.generated_tokens;
    t.wall = std::max(t.wall, r.wall_s);
    if (r.dp == 0) t.kv_per_token += r.kv_bytes_per_token;
  }
  return t;
}
}  // namespace

namespace {
// The largest share of its tensor group's expert work that one rank did (1/tp when perfectly even).
double busiest_expert_share(const std::vector<RankMetrics>& ranks) {
  std::map<std::pair<int, int>, std::pair<double, double>> groups;  // (dp, pp) -> (max, sum)
  for (const RankMetrics& r : ranks) {
    auto& g = groups[{r.dp, r.pp}];
    g.first = std::max(g.first, r.expert_work);
    g.second += r.expert_work;
  }
  double share = 0;
  for (auto& [key, g] : groups)
    if (g.second > 0) share = std::max(share, g.first / g.second);
  return share;
}

// Per rank: token rows through its experts and the hottest expert; then the busiest rank's share.
void print_expert_load(FILE* out, const RunInfo& info, const std::vector<RankMetrics>& ranks) {
  if (info.expert_rows.size() != ranks.size()) return;
  std::fprintf(out, "meshlm: expert load (token rows per expert, all layers; %s split)\n",
               moe_split_name(info.topology.moe_split));
  for (size_t i = 0; i < ranks.size(); ++i) {
    const std::vector<double>& rows = info.expert_rows[i];
    const double total = std::accumulate(rows.begin(), rows.end(), 0.0);
    const size_t hot = size_t(std::max_element(rows.begin(), rows.end()) - rows.begin());
    std::fprintf(out, "meshlm:   rank %d: %.0f rows; hottest expert %zu with %.1f%%\n", ranks[i].world_rank, total,
                 hot, total > 0 ? 100 * rows[hot] / total : 0.0);
  }
  std::fprintf(out, "meshlm:   busiest rank's share of its tensor group's expert work: %.1f%% (even: %.1f%%)\n",
               100 * busiest_expert_share(ranks), 100.0 / info.topology.tp);
}

// One line per kind of call that happened: calls, bytes and seconds summed over the ranks, and the mean per call.
void print_comm_ops(FILE* out, const std::vector<RankMetrics>& ranks) {
  OpStats sum[kCommOps];
  for (const RankMetrics& r : ranks)
    for (int i = 0; i < kCommOps; ++i)
      sum[i].calls += r.comm_ops[i].calls, sum[i].bytes_sent += r.comm_ops[i].bytes_sent,
          sum[i].seconds += r.comm_ops[i].seconds;
  bool any = false;
  for (int i = 0; i < kCommOps; ++i) {
    if (sum[i].calls == 0) continue;
    if (!any) std::fprintf(out, "meshlm: communication (all ranks)  calls     sent MB   seconds  per call us\n");
    any = true;
    std::fprintf(out, "meshlm:   %-10s %18lld %11.2f %9.3f %12.1f\n", comm_op_name(CommOp(i)), (long long)sum[i].calls,
                 sum[i].bytes_sent / 1e6, sum[i].seconds, 1e6 * sum[i].seconds / double(sum[i].calls));
  }
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
  const Stats ttft = stats_of(info.latencies.ttft), tpot = stats_of(info.latencies.tpot);
  double compute = 0, comm = 0;
  for (const RankMetrics& r : ranks) compute += r.compute_s, comm += r.comm_s;
  std::fprintf(out,
               "meshlm: %.2f requests/s, %.1f input tok/s, %.1f output tok/s; TTFT mean %.1f p50 %.1f p99 %.1f ms; "
               "TPOT mean %.2f p50 %.2f p99 %.2f ms; compute %.2f s, communication %.2f s (all ranks)\n",
               t.requests / wall, t.prompt / wall, t.generated / wall, 1e3 * ttft.mean, 1e3 * ttft.p50, 1e3 * ttft.p99,
               1e3 * tpot.mean, 1e3 * tpot.p50, 1e3 * tpot.p99, compute, comm);
  std::fprintf(out, "meshlm: prompt tokens %lld computed, %lld reused from the prefix cache (hit rate %.1f%%); KV cache "
                    "%.0f bytes per token per replica; KV blocks per replica %lld: peak %lld used (%lld free), %lld "
                    "caching prefixes at the end; up to %lld sequences at once; %lld preemption%s\n",
               (long long)t.computed, (long long)t.reused, 100.0 * t.hit_rate(), t.kv_per_token,
               (long long)t.kv_blocks, (long long)t.kv_peak, (long long)(t.kv_blocks - t.kv_peak),
               (long long)t.kv_cached, (long long)t.peak_sequences, (long long)t.preemptions,
               t.preemptions == 1 ? "" : "s");
  std::fprintf(out, "meshlm: rank  host          dp pp tp  layers    weights MB   KV MB  peak RSS MB  compute s"
                    "  comm s   sent MB\n");
  for (const RankMetrics& r : ranks)
    std::fprintf(out, "meshlm: %4d  %-12.12s %3d %2d %2d  [%3lld,%3lld) %10.2f %7.2f %12.1f %10.3f %7.3f %9.2f\n",
                 r.world_rank, r.host, r.dp, r.pp, r.tp, (long long)r.layer_begin, (long long)r.layer_end,
                 r.weight_bytes / 1e6, r.kv_bytes / 1e6, r.peak_rss / 1e6, r.compute_s, r.comm_s, r.bytes_sent / 1e6);
  for (const RankMetrics& r : ranks)
    if (r.received_bytes > 0)
      std::fprintf(out, "meshlm: rank %d (%s) was sent its weights: %.2f MB in %.2f s (%.1f MB/s)\n", r.world_rank,
                   r.host, r.received_bytes / 1e6, r.received_s, r.received_bytes / 1e6 / std::max(r.received_s, 1e-9));
  print_comm_ops(out, ranks);
  print_expert_load(out, info, ranks);
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
  j["prompt_tokens_computed"] = t.computed;
  j["prompt_tokens_reused"] = t.reused;
  j["prefix_hit_rate"] = t.hit_rate();
  j["preemptions"] = t.preemptions;
  j["peak_sequences_per_replica"] = t.peak_sequences;
  j["kv_bytes_per_token"] = t.kv_per_token;  // per replica: every rank's cache rows for one position
  j["kv_blocks"] = {{"block_tokens", KVCache::kBlockTokens}, {"per_replica", t.kv_blocks}, {"peak_used", t.kv_peak},
                    {"free_at_peak", t.kv_blocks - t.kv_peak}, {"cached_at_end", t.kv_cached}};
  j["generated_tokens"] = t.generated;
  j["seconds"] = t.wall;
  j["generated_tokens_per_s"] = t.generated / std::max(t.wall, 1e-9);
  j["total_tokens_per_s"] = (t.prompt + t.generated) / std::max(t.wall, 1e-9);
  j["requests_per_s"] = t.requests / std::max(t.wall, 1e-9);
  j["prompt_tokens_per_s"] = t.prompt / std::max(t.wall, 1e-9);
  for (const auto& [name, values] : {std::pair{"ttft_s", &info.latencies.ttft}, std::pair{"tpot_s", &info.latencies.tpot}}) {
    const Stats st = stats_of(*values);
    j[name] = {{"mean", st.mean}, {"p50", st.p50}, {"p99", st.p99}, {"count", values->size()}};
  }
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (const RankMetrics& r : ranks) {
    nlohmann::ordered_json ops = nlohmann::ordered_json::object();
    for (int i = 0; i < kCommOps; ++i)
      if (r.comm_ops[i].calls > 0)
        ops[comm_op_name(CommOp(i))] = {{"calls", r.comm_ops[i].calls}, {"bytes_sent", r.comm_ops[i].bytes_sent},
                                        {"seconds", r.comm_ops[i].seconds}};
    rows.push_back({{"rank", r.world_rank}, {"host", r.host}, {"dp", r.dp}, {"pp", r.pp}, {"tp", r.tp},
                    {"requests", r.requests}, {"prompt_tokens_computed", r.prompt_tokens},
                    {"prompt_tokens_reused", r.reused_tokens}, {"kv_blocks_peak_used", r.kv_blocks_peak}, {"layers", {r.layer_begin, r.layer_end}}, {"weight_bytes", r.weight_bytes},
                    {"kv_cache_bytes", r.kv_bytes}, {"kv_bytes_per_token", r.kv_bytes_per_token}, {"peak_rss_bytes", r.peak_rss}, {"compute_s", r.compute_s},
                    {"comm_s", r.comm_s}, {"bytes_sent", r.bytes_sent}, {"comm_by_call", ops}, {"wall_s", r.wall_s},
                    {"weights_received_bytes", r.received_bytes}, {"weights_received_s", r.received_s}});
    if (info.expert_rows.size() == ranks.size()) {
      rows.back()["expert_rows"] = info.expert_rows[size_t(&r - ranks.data())];
      rows.back()["expert_work"] = r.expert_work;
    }
  }
  j["ranks"] = rows;
  if (info.expert_rows.size() == ranks.size())
    j["expert_load"] = {{"moe_split", moe_split_name(info.topology.moe_split)},
                        {"busiest_rank_share", busiest_expert_share(ranks)},
                        {"even_share", 1.0 / info.topology.tp}};
  std::ofstream f(path);
  MESH_CHECK(f.good(), path, ": cannot write the metrics file");
  f << j.dump(2) << "\n";
  MESH_CHECK(f.good(), path, ": write failed");
}

}  // namespace meshlm
