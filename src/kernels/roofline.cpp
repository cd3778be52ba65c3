#include "kernels/roofline.h"

#include <cblas.h>

#include <algorithm>
#include <vector>

#include "core/thread_pool.h"
#include "core/timer.h"
#include "kernels/matmul.h"
#include "kernels/matvec.h"

namespace meshlm {

double measure_read_bandwidth(int64_t bytes, int reps) {
  const int64_t cols = 4096, rows = bytes / int64_t(sizeof(float)) / cols, n = rows * cols;
  std::vector<float> buffer(size_t(n), 1.0f);  // (rows, cols) written once, so every page is really there
  const WeightView as_matrix{buffer.data(), DType::kF32, rows, cols};
  const std::vector<float> x(size_t(cols), 1.0f);
  std::vector<float> y(static_cast<size_t>(rows));  // (rows)
  ThreadPool& pool = kernel_pool();
  std::vector<float> sums(size_t(pool.size()));
  double best = 0;
  for (int rep = 0; rep < 2 * reps; ++rep) {
    // Two ways to stream it, alternately: a plain sum, and four neighbouring rows at a time (as matvec reads them).
    const Timer t;
    pool.run([&](int member) {
      const Share s = share_of(rows, pool.size(), member, 16);
      if (rep % 2 == 0)
        sums[size_t(member)] = read_sum(matmul_isa(), buffer.data() + s.begin * cols, (s.end - s.begin) * cols);
      else matvec_rows(matmul_isa(), x.data(), 1, as_matrix, s.begin, s.end, y.data());
    });
    const double seconds = t.seconds();
    volatile float keep = sums[0] + y[0];  // the sums must be computed
    (void)keep;
    best = std::max(best, double(n) * sizeof(float) / seconds * 1e-9);
  }
  return best;
}

double measure_sgemm_peak(int64_t n, int64_t d, int reps) {
  std::vector<float> x(size_t(n * d), 0.5f), w(size_t(d * d), 0.25f), y(size_t(n * d));  // (n,d) (d,d) (n,d)
  // Each pool member runs single-threaded OpenBLAS on its share of W's rows, as matmul does: OpenBLAS's own threads
  // spin-wait, and next to the pool's they measured half the peak in some runs.
  ThreadPool& pool = kernel_pool();
  double best = 0;
  for (int rep = 0; rep <= reps; ++rep) {  // the first is a warm-up
    const Timer t;
    pool.run([&](int member) {
      const int64_t r0 = d * member / pool.size(), r1 = d * (member + 1) / pool.size();
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(r1 - r0), int(d), 1.0f, x.data(), int(d),
                  w.data() + r0 * d, int(d), 0.0f, y.data() + r0, int(d));
    });
    if (rep > 0) best = std::max(best, 2.0 * double(n * d * d) / t.seconds() * 1e-9);
  }
  return best;
}

}  // namespace meshlm
