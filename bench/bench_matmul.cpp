// matmul by weight dtype, rows of x and instruction set, next to OpenBLAS sgemm, each row against the ceilings
// measured at start-up in the same run: streaming read bandwidth for decode (pct_of_bw) and the sgemm rate for larger
// batches (pct_of_sgemm).
//   build/bench/bench_matmul [--threads=N] [--benchmark_filter=decode]
// decode/*: one step over 1 GiB of weights (32 matrices of 4096 x 4096 at 16 bits, 16 at f32), larger than any cache,
// as a decode step of a 1 GB model is; decode_affine/mlx4|mlx8 the same over MLX affine weights (_fast: --compute
// fast; _stored: exact mode's fp32 kernel on the rows as stored). batch/*: one 2048 x 2048 matrix (cache-resident) at
// n rows.
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/aligned.h"
#include "core/thread_pool.h"
#include "core/timer.h"
#include "kernels/affine_digits.h"
#include "kernels/affine_int8.h"
#include "kernels/blas_core.h"
#include "kernels/matmul.h"
#include "kernels/matvec.h"
#include "kernels/qpanel.h"
#include "kernels/roofline.h"

namespace meshlm {
namespace {

double g_read_gbps = 0, g_sgemm_gflops = 0;

// Weights in `dtype`, filled with small random values.
struct Weights {
  std::vector<float, LineAligned<float>> f32;  // line-aligned, as the loader keeps weights (core/aligned.h)
  std::vector<uint16_t, LineAligned<uint16_t>> b16;
  AlignedBytes q;
  std::vector<WeightView> views;
  Weights(DType dtype, int64_t count, int64_t rows, int64_t cols) {
    uint32_t state = 1;
    const auto next = [&] {  // a cheap generator: 1 GiB of normal variates would take longer than the benchmark
      state = state * 1664525u + 1013904223u;
      return (float(state >> 8) / float(1 << 24) - 0.5f) * 0.04f;
    };
    const size_t each = size_t(rows * cols);
    if (is_quantized(dtype)) {  // random rows quantized and packed as --weight-dtype does at load
      const size_t each_packed = packed_bytes(dtype, rows, cols), pb = panel_bytes(dtype, cols);
      q.resize(each_packed * size_t(count));
      std::vector<float> panel(static_cast<size_t>(kPanelRows * cols));
      for (int64_t k = 0; k < count; ++k) {
        for (int64_t r = 0; r < rows; r += kPanelRows) {
          for (float& v : panel) v = next();
          quantize_panel(dtype, panel.data(), std::min(kPanelRows, rows - r), cols,
                         q.data() + size_t(k) * each_packed + size_t(r / kPanelRows) * pb);
        }
        views.push_back({q.data() + size_t(k) * each_packed, dtype, rows, cols});
      }
      return;
    }
    if (dtype == DType::kF32) f32.resize(each * size_t(count));
    else b16.resize(each * size_t(count));
    for (float& v : f32) v = next();
    for (uint16_t& v : b16) v = dtype == DType::kBF16 ? f32_to_bf16(next()) : f32_to_f16(next());
    for (int64_t k = 0; k < count; ++k) {
      const void* p = dtype == DType::kF32 ? static_cast<const void*>(f32.data() + size_t(k) * each)
                                           : static_cast<const void*>(b16.data() + size_t(k) * each);
      views.push_back({p, dtype, rows, cols});
    }
  }
};

// Rates per iteration from the loop's own wall time, and as percents of the ceilings.
void report(benchmark::State& state, double seconds, double weight_bytes, double flops) {
  const double per_s = double(state.iterations()) / seconds;
  state.counters["weight_GBps"] = weight_bytes * 1e-9 * per_s;
  state.counters["GFLOPps"] = flops * 1e-9 * per_s;
  state.counters["pct_of_bw"] = weight_bytes * 1e-9 * per_s / g_read_gbps * 100;
  state.counters["pct_of_sgemm"] = flops * 1e-9 * per_s / g_sgemm_gflops * 100;
}

// One decode step (n rows) over 1 GiB of weights. isa < 0: matmul's own choice; fast: --compute fast.
void decode(benchmark::State& state, DType dtype, int isa, bool fast = false) {
  const int64_t n = state.range(0), dim = 4096;
  const int64_t count = (int64_t(1) << 30) / (dim * int64_t(row_bytes(dtype, dim)));
  const Weights w(dtype, count, dim, dim);
  std::vector<float> x(size_t(n * dim), 0.01f), y(size_t(n * dim));
  const Isa saved = matmul_isa();
  if (isa >= 0) {
    if (!isa_supported(Isa(isa))) return state.SkipWithError("instruction set not supported here");
    set_matmul_isa(Isa(isa));
  }
  set_compute(fast ? Compute::kFast : Compute::kExact);
  const Timer t;
  for (auto _ : state) {
    for (const WeightView& v : w.views) matmul(x.data(), n, v, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  const double seconds = t.seconds();
  set_compute(Compute::kExact);
  set_matmul_isa(saved);
  report(state, seconds, double(count * dim) * double(row_bytes(dtype, dim)), 2.0 * double(n * count * dim * dim));
}

// `count` MLX affine matrices of dim x dim (bits, groups of 64; scales and biases in bf16, as mlx-community's files
// hold them), held as loading holds them in a compute mode (panels where its kernels take them) or, `stored`, as the
// file stores them (exact mode: the fp32 kernel).
struct AffineWeights {
  static constexpr int64_t kGroup = 64;
  AlignedBytes packed, panels;
  std::vector<uint16_t, LineAligned<uint16_t>> scales, biases;
  std::vector<WeightView> views;
  size_t per_matrix;  // bytes of one matrix as stored: values, scales and biases
  AffineWeights(int bits, int64_t count, int64_t dim, Compute mode, bool stored) {
    const int64_t groups = dim / kGroup;
    const size_t row = affine_row_bytes(dim, bits);
    per_matrix = size_t(dim) * (row + 2 * sizeof(uint16_t) * groups);
    packed.resize(size_t(count * dim) * row + 8);
    scales.resize(size_t(count * dim * groups)), biases.resize(scales.size());
    uint32_t seed = 1;
    for (uint8_t& b : packed) b = uint8_t((seed = seed * 1664525u + 1013904223u) >> 24);
    for (size_t i = 0; i < scales.size(); ++i) scales[i] = f32_to_bf16(0.001f), biases[i] = f32_to_bf16(-0.008f);
    for (int64_t k = 0; k < count; ++k) {
      WeightView v{packed.data() + size_t(k * dim) * row, DType::kAffine, dim, dim, {}};
      v.affine = {bits,           int(kGroup), 0, groups, scales.data() + k * dim * groups,
                  biases.data() + k * dim * groups, row, DType::kBF16};
      views.push_back(v);
    }
    if (stored || !affine_panels_pay(views[0], mode)) return;
    const size_t pb = affine_panel_bytes(views[0].affine);  // the rows repacked as load_weights does
    panels.resize(size_t(count * dim / kPanelRows) * pb);
    for (int64_t k = 0; k < count; ++k) {
      uint8_t* at = panels.data() + size_t(k * dim / kPanelRows) * pb;
      affine_to_panels(views[size_t(k)], 0, dim, at);
      views[size_t(k)] = affine_panel_view(views[size_t(k)], at);
    }
    packed = {}, scales = {}, biases = {};
  }
};

// One decode step (n rows) over 1 GiB of MLX affine weights (AffineWeights; the scales and biases counted in the
// bytes).
void decode_affine(benchmark::State& state, int bits, Compute mode, bool stored = false) {
  const int64_t n = state.range(0), dim = 4096;
  const size_t per_matrix = size_t(dim) * (affine_row_bytes(dim, bits) + 4 * size_t(dim / AffineWeights::kGroup));
  const int64_t count = (int64_t(1) << 30) / int64_t(per_matrix);
  const AffineWeights w(bits, count, dim, mode, stored);
  std::vector<float> x(size_t(n * dim), 0.01f), y(size_t(n * dim));
  const Timer t;
  set_compute(mode);
  for (auto _ : state) {
    for (const WeightView& v : w.views) matmul(x.data(), n, v, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  set_compute(Compute::kExact);
  report(state, t.seconds(), double(count) * double(w.per_matrix), 2.0 * double(n * count * dim * dim));
}

// n rows against one cache-resident 2048 x 2048 MLX affine matrix (AffineWeights) in a compute mode.
void batch_affine(benchmark::State& state, int bits, Compute mode) {
  const int64_t n = state.range(0), dim = 2048;
  const AffineWeights w(bits, 1, dim, mode, false);
  std::vector<float> x(size_t(n * dim)), y(size_t(n * dim));
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.01f * float(int(i % 37) - 18);  // blocks of unequal scales
  const Timer t;
  set_compute(mode);
  for (auto _ : state) {
    matmul(x.data(), n, w.views[0], y.data());
    benchmark::DoNotOptimize(y.data());
  }
  set_compute(Compute::kExact);
  report(state, t.seconds(), double(w.per_matrix), 2.0 * double(n * dim * dim));
}

// n rows against one cache-resident 2048 x 2048 matrix: matmul (kFast: with --compute fast), OpenBLAS sgemm on fp32
// weights (kSgemm), or our skinny kernel at any n (kSkinny: where it stops winning sets kSkinnyRows;
// kSkinnyBf16Dot: the AVX512_BF16 kernel, which is not the default).
enum Path { kMatmul, kFast, kSgemm, kSkinny, kSkinnyBf16Dot };
void batch(benchmark::State& state, DType dtype, Path path) {
  const bool sgemm = path == kSgemm;
  const int64_t n = state.range(0), dim = 2048;
  const Weights w(sgemm ? DType::kF32 : dtype, 1, dim, dim);
  std::vector<float> x(size_t(n * dim), 0.01f), y(size_t(n * dim));
  if (sgemm) openblas_set_num_threads(kernel_pool().size());  // the reference uses as many threads as matmul
  const Timer t;
  for (auto _ : state) {
    if (sgemm) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(dim), int(dim), 1.0f, x.data(), int(dim),
                  w.f32.data(), int(dim), 0.0f, y.data(), int(dim));
    } else if (path == kSkinny || path == kSkinnyBf16Dot) {
      const Isa isa = path == kSkinny ? matmul_isa() : Isa::kAvx512Bf16;
      if (!isa_supported(isa)) return state.SkipWithError("instruction set not supported here");
      kernel_pool().run([&](int m) {
        const Share s = share_of(dim, kernel_pool().size(), m, 16);
        matvec_rows(isa, x.data(), n, w.views[0], s.begin, s.end, y.data());
      });
    } else {
      set_compute(path == kFast ? Compute::kFast : Compute::kExact);
      matmul(x.data(), n, w.views[0], y.data());
      set_compute(Compute::kExact);
    }
    benchmark::DoNotOptimize(y.data());
  }
  const double seconds = t.seconds();
  openblas_set_num_threads(1);
  report(state, seconds, double(dim) * double(row_bytes(sgemm ? DType::kF32 : dtype, dim)), 2.0 * double(n * dim * dim));
}

void decode_rows(benchmark::internal::Benchmark* b) { b->ArgName("n")->Arg(1)->Arg(4)->Arg(8)->Unit(benchmark::kMillisecond); }
void batch_rows(benchmark::internal::Benchmark* b) {
  b->ArgName("n");
  for (int64_t n : {1, 8, 16, 32, 64, 512}) b->Arg(n);
  b->Unit(benchmark::kMillisecond);
}

BENCHMARK_CAPTURE(decode, bf16, DType::kBF16, -1)->Apply(decode_rows);
BENCHMARK_CAPTURE(decode, f16, DType::kF16, -1)->Apply(decode_rows);
BENCHMARK_CAPTURE(decode, f32, DType::kF32, -1)->Apply(decode_rows);
BENCHMARK_CAPTURE(decode, q8_0, DType::kQ8_0, -1)->Apply(decode_rows);
BENCHMARK_CAPTURE(decode, q4_0, DType::kQ4_0, -1)->Apply(decode_rows);
BENCHMARK_CAPTURE(decode_affine, mlx4, 4, Compute::kExact)->Apply(decode_rows);
BENCHMARK_CAPTURE(decode_affine, mlx8, 8, Compute::kExact)->Apply(decode_rows);
BENCHMARK_CAPTURE(decode_affine, mlx4_stored, 4, Compute::kExact, true)->Apply(decode_rows);
BENCHMARK_CAPTURE(decode_affine, mlx8_stored, 8, Compute::kExact, true)->Apply(decode_rows);
BENCHMARK_CAPTURE(decode_affine, mlx4_fast, 4, Compute::kFast)->Apply(decode_rows);
BENCHMARK_CAPTURE(decode_affine, mlx8_fast, 8, Compute::kFast)->Apply(decode_rows);
BENCHMARK_CAPTURE(decode, bf16_avx512bf16, DType::kBF16, int(Isa::kAvx512Bf16))->Apply(decode_rows);
BENCHMARK_CAPTURE(decode, bf16_fast, DType::kBF16, -1, true)->Apply(decode_rows);
BENCHMARK_CAPTURE(decode, bf16_avx2, DType::kBF16, int(Isa::kAvx2))->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(decode, bf16_portable, DType::kBF16, int(Isa::kPortable))->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(batch, sgemm_f32_reference, DType::kF32, kSgemm)->Apply(batch_rows);
BENCHMARK_CAPTURE(batch, matmul_f32, DType::kF32, kMatmul)->Apply(batch_rows);
BENCHMARK_CAPTURE(batch, matmul_bf16, DType::kBF16, kMatmul)->Apply(batch_rows);
BENCHMARK_CAPTURE(batch, matmul_f16, DType::kF16, kMatmul)->Apply(batch_rows);
BENCHMARK_CAPTURE(batch, matmul_q8_0, DType::kQ8_0, kMatmul)->Apply(batch_rows);
BENCHMARK_CAPTURE(batch, matmul_q4_0, DType::kQ4_0, kMatmul)->Apply(batch_rows);
BENCHMARK_CAPTURE(batch, fast_bf16, DType::kBF16, kFast)->Apply(batch_rows);
BENCHMARK_CAPTURE(batch, fast_q8_0, DType::kQ8_0, kFast)->Apply(batch_rows);
BENCHMARK_CAPTURE(batch, fast_q4_0, DType::kQ4_0, kFast)->Apply(batch_rows);
BENCHMARK_CAPTURE(batch, skinny_bf16, DType::kBF16, kSkinny)->Apply(batch_rows);
BENCHMARK_CAPTURE(batch, skinny_bf16_avx512bf16, DType::kBF16, kSkinnyBf16Dot)->Apply(batch_rows);
BENCHMARK_CAPTURE(batch, skinny_f32, DType::kF32, kSkinny)->Apply(batch_rows);
BENCHMARK_CAPTURE(batch_affine, mlx4, 4, Compute::kExact)->Apply(batch_rows);
BENCHMARK_CAPTURE(batch_affine, mlx8, 8, Compute::kExact)->Apply(batch_rows);
BENCHMARK_CAPTURE(batch_affine, mlx4_fast, 4, Compute::kFast)->Apply(batch_rows);
BENCHMARK_CAPTURE(batch_affine, mlx8_fast, 8, Compute::kFast)->Apply(batch_rows);

}  // namespace
}  // namespace meshlm

int main(int argc, char** argv) {
  meshlm::ensure_openblas_core(argv);
  int threads = 1;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) threads = std::stoi(argv[i] + 10);
    else args.push_back(argv[i]);
  }
  meshlm::set_matmul_threads(threads);
  meshlm::g_read_gbps = meshlm::measure_read_bandwidth();
  meshlm::g_sgemm_gflops = meshlm::measure_sgemm_peak();
  std::fprintf(stderr, "ceilings: %d thread(s), %s kernels; read bandwidth %.2f GB/s; sgemm %.1f GFLOP/s\n", threads,
              meshlm::isa_name(meshlm::matmul_isa()), meshlm::g_read_gbps, meshlm::g_sgemm_gflops);
  int n = int(args.size());
  benchmark::Initialize(&n, args.data());
  benchmark::AddCustomContext("threads", std::to_string(threads));
  benchmark::AddCustomContext("isa", meshlm::isa_name(meshlm::matmul_isa()));
  benchmark::AddCustomContext("read_gbps", std::to_string(meshlm::g_read_gbps));
  benchmark::AddCustomContext("sgemm_gflops", std::to_string(meshlm::g_sgemm_gflops));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
