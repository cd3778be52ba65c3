#include "kernels/matmul.h"

#include <cblas.h>

#include "core/thread_pool.h"
#include "kernels/matvec.h"

#include <algorithm>
#include <vector>

namespace meshlm {

namespace {
ProgressHook progress_hook = nullptr;
void* progress_context = nullptr;
void progress() {
  if (progress_hook) progress_hook(progress_context);
}
}  // namespace

void set_matmul_progress(ProgressHook hook, void* context) {
  progress_hook = hook;
  progress_context = context;
}

namespace {
Isa active_isa = best_isa();

// Rows [r0, r1) of y by OpenBLAS sgemm: f32 weights directly, 16-bit ones converted a block at a time into a
// per-thread fp32 scratch of about 1 MiB (at least 64 rows, so sgemm gets a wide enough panel).
void sgemm_rows(const float* x, int64_t n, const WeightView& w, int64_t r0, int64_t r1, float* y) {
  if (w.dtype == DType::kF32) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(r1 - r0), int(w.cols), 1.0f, x, int(w.cols),
                static_cast<const float*>(w.data) + r0 * w.cols, int(w.cols), 0.0f, y + r0, int(w.rows));
    return;
  }
  const int64_t block = std::max<int64_t>(64, (256 * 1024) / std::max<int64_t>(1, w.cols));
  thread_local std::vector<float> scratch;  // (block, cols) fp32
  scratch.resize(size_t(std::min(block, r1 - r0) * w.cols));
  const auto* base = static_cast<const uint8_t*>(w.data);
  const size_t row_bytes = size_t(w.cols) * dtype_size(w.dtype);
  for (int64_t b0 = r0; b0 < r1; b0 += block) {
    const int64_t nr = std::min(block, r1 - b0);
    to_f32(base + size_t(b0) * row_bytes, w.dtype, scratch.data(), size_t(nr * w.cols));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(nr), int(w.cols), 1.0f, x, int(w.cols),
                scratch.data(), int(w.cols), 0.0f, y + b0, int(w.rows));
  }
}
}  // namespace

void set_matmul_threads(int threads) {
  set_kernel_threads(threads);
  openblas_set_num_threads(1);
}

void set_matmul_isa(Isa isa) { active_isa = isa; }
Isa matmul_isa() { return active_isa; }

void matmul(const float* x, int64_t n, const WeightView& w, float* y) {
  if (n == 0 || w.rows == 0) return;
  ThreadPool& pool = kernel_pool();
  const int parts = int(std::min<int64_t>(pool.size(), std::max<int64_t>(1, w.rows / 64)));
  const bool skinny = n <= kSkinnyRows;
  // Each member takes a contiguous share of the weight rows, in panels of about 1 MiB; between panels member 0
  // lets MPI progress.
  const int64_t panel = std::max<int64_t>(16, (int64_t(1) << 20) / std::max<int64_t>(1, w.cols * int64_t(dtype_size(w.dtype))));
  pool.run([&](int t) {
    if (t >= parts) return;
    const Share share = share_of(w.rows, parts, t, 16);
    for (int64_t p0 = share.begin; p0 < share.end; p0 += panel) {
      const int64_t p1 = std::min(share.end, p0 + panel);
      if (skinny) matvec_rows(active_isa, x, n, w, p0, p1, y);
      else sgemm_rows(x, n, w, p0, p1, y);
      if (t == 0) progress();
    }
  });
}

void matmul_naive(const float* x, int64_t n, const WeightView& w, float* y) {
  std::vector<float> row(size_t(w.cols));
  const auto* base = static_cast<const uint8_t*>(w.data);
  const size_t row_bytes = size_t(w.cols) * dtype_size(w.dtype);
  for (int64_t r = 0; r < w.rows; ++r) {
    to_f32(base + size_t(r) * row_bytes, w.dtype, row.data(), size_t(w.cols));
    for (int64_t i = 0; i < n; ++i) {
      double acc = 0;
      for (int64_t k = 0; k < w.cols; ++k) acc += double(x[i * w.cols + k]) * row[size_t(k)];
      y[i * w.rows + r] = float(acc);
    }
  }
}

}  // namespace meshlm
