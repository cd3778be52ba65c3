// matmul by weight dtype and batch rows, next to OpenBLAS sgemm of the same shape on fp32 weights.
// Reports bytes of weights streamed per second and GFLOP/s (counters), so decode (n=1) can be read against
// memory bandwidth and prefill (large n) against the sgemm peak.
//   build/bench/bench_matmul --benchmark_filter='dim:2048'
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <random>
#include <vector>

#include "kernels/matmul.h"

namespace meshlm {
namespace {

struct Shape {
  int64_t n, rows, cols;
};

void run(benchmark::State& state, DType dtype, bool sgemm) {
  const Shape s{state.range(0), state.range(1), state.range(1)};
  std::mt19937 g(1);
  std::normal_distribution<float> d;
  std::vector<float> x(size_t(s.n * s.cols)), wf(size_t(s.rows * s.cols)), y(size_t(s.n * s.rows));
  for (float& v : x) v = d(g);
  for (float& v : wf) v = d(g);
  std::vector<uint16_t> w16(wf.size());
  for (size_t i = 0; i < wf.size(); ++i) w16[i] = dtype == DType::kBF16 ? f32_to_bf16(wf[i]) : f32_to_f16(wf[i]);
  const WeightView w{dtype == DType::kF32 ? static_cast<const void*>(wf.data()) : w16.data(), dtype, s.rows, s.cols};
  for (auto _ : state) {
    if (sgemm) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(s.n), int(s.rows), int(s.cols), 1.0f, x.data(),
                  int(s.cols), wf.data(), int(s.cols), 0.0f, y.data(), int(s.rows));
    } else {
      matmul(x.data(), s.n, w, y.data());
    }
    benchmark::DoNotOptimize(y.data());
  }
  const double weight_bytes = double(s.rows * s.cols) * (sgemm ? 4 : dtype_size(dtype));
  state.counters["weight_GB/s"] = benchmark::Counter(weight_bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * double(s.n * s.rows * s.cols) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"n", "dim"});
  for (int64_t dim : {512, 2048})
    for (int64_t n : {1, 8, 64, 512}) b->Args({n, dim});
}

BENCHMARK_CAPTURE(run, sgemm_f32_reference, DType::kF32, true)->Apply(args);
BENCHMARK_CAPTURE(run, matmul_f32, DType::kF32, false)->Apply(args);
BENCHMARK_CAPTURE(run, matmul_bf16, DType::kBF16, false)->Apply(args);
BENCHMARK_CAPTURE(run, matmul_f16, DType::kF16, false)->Apply(args);

}  // namespace
}  // namespace meshlm

BENCHMARK_MAIN();
