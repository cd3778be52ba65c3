// All-reduce by message size through our Comm: MPI_Allreduce (comm/group.h, what the embedding uses), Open MPI's
// MPI_Iallreduce (start + wait), and ours (comm/async_allreduce.h, what the tensor-parallel layers use) with fp32 and
// bf16 on the wire. Run it under mpirun; rank 0 prints, every rank runs the same fixed number of iterations so the
// collectives stay in step.
//   mpirun -np 2 build/bench/bench_comm [--benchmark_filter=f32] [--max-bytes=N]
//   ../shared/cluster/vcluster mpirun -np 2 build/bench/bench_comm      (emulated links)
//   ../shared/cluster/vcluster mpirun --ucx -np 2 build/bench/bench_comm   (the UCX path; scripts/bench_ucx runs both)
// Counters: lat_us (time per all-reduce), algbw_GBps (payload bytes / time) and busbw_GBps (algbw · 2(p-1)/p, the
// bytes each rank's link carries in a ring all-reduce; comparable across rank counts, as in nccl-tests).
#include <benchmark/benchmark.h>
#include <mpi.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "comm/async_allreduce.h"
#include "comm/comm.h"
#include "comm/group.h"

namespace meshlm {
namespace {

Group* g_world = nullptr;

enum class Mode { kMpi, kMpiNonblocking, kOursF32, kOursBF16 };

// Iterations for a message: enough for ~50 MB of traffic, between 20 and 2000.
int64_t iterations_for(int64_t bytes) { return std::clamp<int64_t>(int64_t(50e6) / std::max<int64_t>(bytes, 1), 20, 2000); }

void allreduce(benchmark::State& state, Mode mode) {
  const int64_t bytes = state.range(0);  // payload per rank as the layer has it (fp32)
  const int64_t n = std::max<int64_t>(1, bytes / 4);
  std::vector<float> x(static_cast<size_t>(n), 1.0f);
  AsyncAllreduce ours;
  MPI_Barrier(g_world->raw());
  for (auto _ : state) {
    if (mode == Mode::kMpi) {
      g_world->allreduce_sum(x.data(), n);
    } else if (mode == Mode::kMpiNonblocking) {
      MPI_Request r = g_world->iallreduce_sum(x.data(), n);
      Group::wait_allreduce(r);
    } else {
      ours.start(*g_world, x.data(), n, mode == Mode::kOursBF16 ? WireDType::kBF16 : WireDType::kF32, 7);
      ours.wait();
    }
    std::fill(x.begin(), x.end(), 1.0f);  // keep the values finite
  }
  const double p = g_world->size();
  state.counters["lat_us"] =  // seconds / (1e-6 · iterations)
      benchmark::Counter(1e-6, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.counters["algbw_GBps"] = benchmark::Counter(double(n) * 4 * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["busbw_GBps"] =
      benchmark::Counter(double(n) * 4 * 1e-9 * 2 * (p - 1) / p, benchmark::Counter::kIsIterationInvariantRate);
  state.SetBytesProcessed(int64_t(state.iterations()) * n * 4);
}

// Ping-pong between rank 0 and the last rank (what a pipeline's stage-to-stage sends do); the other ranks wait.
// lat_us is one way (half a round trip).
void ping_pong(benchmark::State& state) {
  const int64_t bytes = state.range(0);
  std::vector<uint8_t> buf(static_cast<size_t>(bytes));
  const int me = g_world->rank(), last = g_world->size() - 1;
  MPI_Barrier(g_world->raw());
  for (auto _ : state) {
    if (me == 0) {
      g_world->send(buf.data(), bytes, last, 9);
      g_world->recv_bytes(buf, last, 9);
    } else if (me == last) {
      g_world->recv_bytes(buf, 0, 9);
      g_world->send(buf.data(), bytes, 0, 9);
    }
  }
  state.counters["lat_us"] =
      benchmark::Counter(2e-6, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.counters["algbw_GBps"] = benchmark::Counter(double(bytes) * 2e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void register_all(int64_t max_bytes) {
  const struct {
    const char* name;
    Mode mode;
  } modes[] = {{"allreduce/mpi_f32", Mode::kMpi}, {"allreduce/mpi_iallreduce_f32", Mode::kMpiNonblocking},
               {"allreduce/ours_f32", Mode::kOursF32}, {"allreduce/ours_bf16", Mode::kOursBF16}};
  for (const auto& m : modes)
    for (int64_t bytes = 4; bytes <= max_bytes; bytes *= 4)
      benchmark::RegisterBenchmark(m.name, [mode = m.mode](benchmark::State& s) { allreduce(s, mode); })
          ->Arg(bytes)
          ->ArgName("bytes")
          ->Iterations(iterations_for(bytes))
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
  for (int64_t bytes = 4; bytes <= max_bytes; bytes *= 16)
    benchmark::RegisterBenchmark("pingpong", ping_pong)
        ->Arg(bytes)
        ->ArgName("bytes")
        ->Iterations(iterations_for(bytes))
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
}

// Prints nothing: ranks other than 0 run the same benchmarks in step with rank 0.
class Silent : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>&) override {}
};

}  // namespace
}  // namespace meshlm

int main(int argc, char** argv) {
  using namespace meshlm;
  MpiSession mpi(&argc, &argv);
  Group world(MPI_COMM_WORLD);
  g_world = &world;
  int64_t max_bytes = 16 << 20;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--max-bytes=", 12) == 0) {
      max_bytes = std::stoll(argv[i] + 12);
      continue;
    }
    // Only rank 0 writes --benchmark_out.
    if (mpi.world_rank() != 0 && std::strncmp(argv[i], "--benchmark_out", 15) == 0) continue;
    args.push_back(argv[i]);
  }
  int n = int(args.size());
  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 1;
  register_all(max_bytes);
  benchmark::AddCustomContext("ranks", std::to_string(mpi.world_size()));
  // The point-to-point layer mpirun was told to use (--mca pml ucx sets OMPI_MCA_pml in every rank): ob1 (Open MPI's
  // own TCP / shared memory transports) unless UCX was asked for.
  const char* pml = std::getenv("OMPI_MCA_pml");
  benchmark::AddCustomContext("pml", pml && *pml ? pml : "ob1 (default)");
  std::vector<char> hosts(size_t(mpi.world_size()) * 64, 0);
  char mine[64] = {};
  std::snprintf(mine, sizeof mine, "%s", mpi.host().c_str());
  MPI_Gather(mine, 64, MPI_CHAR, hosts.data(), 64, MPI_CHAR, 0, MPI_COMM_WORLD);
  std::string host_list;
  for (int r = 0; r < mpi.world_size(); ++r) host_list += (r ? "," : "") + std::string(&hosts[size_t(r) * 64]);
  benchmark::AddCustomContext("hosts", host_list);
  if (mpi.world_rank() == 0) {
    benchmark::RunSpecifiedBenchmarks();
  } else {
    Silent silent;
    benchmark::RunSpecifiedBenchmarks(&silent);
  }
  benchmark::Shutdown();
  return 0;
}
