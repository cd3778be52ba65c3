#include "kernels/matmul.h"

#include <cblas.h>

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

void matmul(const float* x, int64_t n, const WeightView& w, float* y) {
  if (n == 0 || w.rows == 0) return;
  if (w.dtype == DType::kF32) {
    // One sgemm, or panels of about 4 MiB of weights when something must progress in between.
    const int64_t panel = progress_hook ? std::max<int64_t>(64, (1 << 20) / std::max<int64_t>(1, w.cols)) : w.rows;
    for (int64_t r0 = 0; r0 < w.rows; r0 += panel) {
      const int64_t nr = std::min(panel, w.rows - r0);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(nr), int(w.cols), 1.0f, x, int(w.cols),
                  static_cast<const float*>(w.data) + r0 * w.cols, int(w.cols), 0.0f, y + r0, int(w.rows));
      progress();
    }
    return;
  }
  // Rows per block: about 1 MiB of fp32 scratch (at least 64 rows, so sgemm gets a wide enough panel),
  // converted once and used by every row of x.
  const int64_t block = std::max<int64_t>(64, (256 * 1024) / std::max<int64_t>(1, w.cols));
  thread_local std::vector<float> scratch;  // (block, cols) fp32
  scratch.resize(size_t(std::min(block, w.rows) * w.cols));
  const auto* base = static_cast<const uint8_t*>(w.data);
  const size_t row_bytes = size_t(w.cols) * dtype_size(w.dtype);
  for (int64_t r0 = 0; r0 < w.rows; r0 += block) {
    const int64_t nr = std::min(block, w.rows - r0);
    to_f32(base + size_t(r0) * row_bytes, w.dtype, scratch.data(), size_t(nr * w.cols));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(nr), int(w.cols), 1.0f, x, int(w.cols),
                scratch.data(), int(w.cols), 0.0f, y + r0, int(w.rows));
    progress();
  }
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
