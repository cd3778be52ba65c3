#include "app/cluster_probe.h"

#include <mpi.h>

#include <algorithm>
#include <map>
#include <thread>

#include "comm/comm.h"
#include "core/timer.h"
#include "kernels/roofline.h"

namespace meshlm {
namespace {

constexpr int kTagPing = 31;

// Ranks a and b bounce `bytes` back and forth `reps` times (after one warm-up); every other rank waits at the
// barriers. Returns, on every rank, the one-way time of the best round trip.
double ping_pong(int a, int b, int64_t bytes, int reps) {
  int me = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  std::vector<char> buf(size_t(std::max<int64_t>(bytes, 1)));
  double best = 1e30;
  MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
  if (me == a || me == b) {
    const int peer = me == a ? b : a;
    for (int rep = 0; rep <= reps; ++rep) {
      const Timer t;
      if (me == a) {
        MPI_CHECK(MPI_Send(buf.data(), int(bytes), MPI_BYTE, peer, kTagPing, MPI_COMM_WORLD));
        MPI_CHECK(MPI_Recv(buf.data(), int(bytes), MPI_BYTE, peer, kTagPing, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
      } else {
        MPI_CHECK(MPI_Recv(buf.data(), int(bytes), MPI_BYTE, peer, kTagPing, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
        MPI_CHECK(MPI_Send(buf.data(), int(bytes), MPI_BYTE, peer, kTagPing, MPI_COMM_WORLD));
      }
      if (rep > 0) best = std::min(best, t.seconds() / 2);
    }
  }
  MPI_CHECK(MPI_Bcast(&best, 1, MPI_DOUBLE, a, MPI_COMM_WORLD));
  return best;
}

// Latency from the smallest message; bandwidth from the slope between it and the largest (a mid-size sample can
// beat the smallest one's time on an emulated link, so no single sample net of the latency is trusted).
LinkSpec fit_link(const std::vector<LinkSample>& s) {
  LinkSpec l;
  l.latency = s.front().seconds;
  const LinkSample& big = s.back();
  l.bandwidth = (big.bytes - s.front().bytes) / std::max(big.seconds - s.front().seconds, 1e-9);
  return l;
}

}  // namespace

ClusterProbe probe_cluster(const HostFacts& facts, bool quick) {
  const Timer timer;
  ClusterProbe out;
  const int world = facts.world_size;
  // Host index of every rank, in order of first appearance.
  std::map<std::string, int> index;
  ClusterSpec& cl = out.cluster;
  for (int r = 0; r < world; ++r) {
    const std::string& name = facts.hosts[size_t(r)];
    auto [it, added] = index.emplace(name, int(cl.hosts.size()));
    if (added) {
      HostSpec h;
      h.name = name, h.ranks = 0, h.memory = 0;
      cl.hosts.push_back(h);
    }
    cl.rank_host.push_back(it->second);
    HostSpec& h = cl.hosts[size_t(it->second)];
    h.ranks += 1, h.memory += facts.free_per_rank[size_t(r)];
  }

  // Ceilings: every rank at once.
  MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
  double mine[3] = {measure_read_bandwidth(int64_t(quick ? 256 : 1024) << 20, quick ? 2 : 4) * 1e9, 0,
                    double(std::max(1u, std::thread::hardware_concurrency()))};
  MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
  // Long enough (tens of ms per repetition) that ranks sharing cores overlap while they measure.
  mine[1] = measure_sgemm_peak(quick ? 256 : 512, 2048, quick ? 3 : 6) * 1e9;
  std::vector<double> all(size_t(3 * world));
  MPI_CHECK(MPI_Allgather(mine, 3, MPI_DOUBLE, all.data(), 3, MPI_DOUBLE, MPI_COMM_WORLD));
  for (int r = 0; r < world; ++r) {
    HostSpec& h = cl.hosts[size_t(cl.rank_host[size_t(r)])];
    h.read_bw += all[size_t(3 * r)], h.flops += all[size_t(3 * r + 1)];
    h.cores = std::max(h.cores, int(all[size_t(3 * r + 2)]));
  }

  // Links: rank 0 to the first rank of each other host; the first two ranks of the first host that has two.
  const std::vector<int64_t> sizes = quick ? std::vector<int64_t>{8, 1 << 20}
                                           : std::vector<int64_t>{8, 4096, 65536, 1 << 20, 8 << 20};
  const auto measure = [&](int a, int b) {
    std::vector<LinkSample> s;
    for (int64_t bytes : sizes) {
      const int reps = bytes > 65536 ? (quick ? 3 : 6) : (quick ? 10 : 50);
      s.push_back({double(bytes), ping_pong(a, b, bytes, reps)});
    }
    return s;
  };
  std::vector<bool> seen(cl.hosts.size(), false);
  seen[size_t(cl.rank_host[0])] = true;
  for (int r = 1; r < world; ++r) {
    if (seen[size_t(cl.rank_host[size_t(r)])]) continue;
    seen[size_t(cl.rank_host[size_t(r)])] = true;
    const std::vector<LinkSample> s = measure(0, r);
    if (out.inter.empty()) out.inter = s;
    for (size_t i = 0; i < s.size(); ++i) out.inter[i].seconds = std::max(out.inter[i].seconds, s[i].seconds);
  }
  for (int a = 0; a + 1 < world && out.intra.empty(); ++a)
    for (int b = a + 1; b < world && out.intra.empty(); ++b)
      if (cl.rank_host[size_t(a)] == cl.rank_host[size_t(b)]) out.intra = measure(a, b);
  // Without a measured pair: shared memory at a typical 1 us and 10 GB/s (it only matters for that kind of pair).
  cl.intra = out.intra.empty() ? LinkSpec{1e-6, 10e9} : fit_link(out.intra);
  cl.inter = out.inter.empty() ? cl.intra : fit_link(out.inter);
  out.seconds = timer.seconds();
  MPI_CHECK(MPI_Bcast(&out.seconds, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD));
  return out;
}

}  // namespace meshlm
