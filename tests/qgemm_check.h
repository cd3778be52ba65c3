// The int8 panel kernels' check, shared by test_qgemm (every instruction set the CPU has) and test_neon_emulated
// (the NEON kernel through SIMDe): against double loops over the dequantized weights and the int8-rounded x, on
// shapes that leave partial panels, slices that start mid-panel, row ranges split in two, and 1..65 rows of x.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "core/quant.h"
#include "kernels/matmul.h"
#include "kernels/qpanel.h"
#include "test_support.h"

namespace meshlm {
namespace test {

// w (rows, cols) fp32 into panels.
inline std::vector<uint8_t> pack(DType dt, const std::vector<float>& w, int64_t rows, int64_t cols) {
  std::vector<uint8_t> out(packed_bytes(dt, rows, cols));
  for (int64_t r = 0; r < rows; r += kPanelRows)
    quantize_panel(dt, w.data() + r * cols, std::min(kPanelRows, rows - r), cols,
                   out.data() + size_t(r / kPanelRows) * panel_bytes(dt, cols));
  return out;
}

// y = w · x̃ by double loops over the dequantized weights and the int8-rounded x.
inline std::vector<double> reference(const WeightView& w, const QuantizedX& x, std::vector<double>& magnitude) {
  std::vector<double> y(size_t(x.n * w.rows));
  magnitude.assign(y.size(), 0);
  std::vector<float> row(size_t(w.cols));
  for (int64_t r = 0; r < w.rows; ++r) {
    weight_row(w, r, row.data());
    for (int64_t i = 0; i < x.n; ++i) {
      double acc = 0, mag = 0;
      for (int64_t k = 0; k < w.cols; ++k) {
        const double xv = double(x.d[size_t(i * x.blocks + k / kQBlock)]) * x.q[size_t(i * w.cols + k)];
        acc += xv * row[size_t(k)];
        mag += std::fabs(xv * row[size_t(k)]);
      }
      y[size_t(i * w.rows + r)] = acc;
      magnitude[size_t(i * w.rows + r)] = mag;
    }
  }
  return y;
}

using Int8Kernel = std::function<void(const QuantizedX& x, const WeightView& w, int64_t r0, int64_t r1, float* y)>;

inline void check_int8_kernel(const char* name, const Int8Kernel& kernel) {
  for (DType dt : {DType::kQ8_0, DType::kQ4_0}) {
    for (auto [rows, cols] : {std::pair{1, 32}, {15, 96}, {17, 64}, {37, 160}, {65, 32}, {130, 64}}) {
      const auto wf = randn(size_t(rows * cols), 11);
      const auto packed = pack(dt, wf, rows, cols);
      const WeightView whole{packed.data(), dt, rows, cols};
      for (int64_t n : {1, 2, 3, 5, 6, 7, 12, 13, 33, 65}) {
        const auto xf = randn(size_t(n * cols), uint32_t(n));
        QuantizedX x;
        quantize_x(xf.data(), n, cols, weight_offset(dt), x);
        // The whole matrix, and a slice that starts mid-panel (rows [s, rows) of it), over sub-ranges of rows.
        for (int64_t s : {int64_t(0), int64_t(rows / 3)}) {
          const WeightView w = whole.row_slice(s, rows);
          std::vector<double> mag;
          const auto ref = reference(w, x, mag);
          std::vector<float> y(ref.size(), NAN);
          const int64_t mid = w.rows / 2;
          kernel(x, w, 0, mid, y.data());
          kernel(x, w, mid, w.rows, y.data());
          for (size_t i = 0; i < y.size(); ++i)
            ASSERT_NEAR(y[i], ref[i], 1e-5 * mag[i] + 1e-6)
                << name << " " << dtype_name(dt) << " rows=" << rows << " cols=" << cols << " n=" << n
                << " slice from " << s << " i=" << i;
        }
      }
    }
  }
}

}  // namespace test
}  // namespace meshlm
