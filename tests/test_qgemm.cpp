// q8_0 / q4_0 weights in 16-row panels: the packing against the row formats, and the int8 kernels of every
// instruction set the CPU has against plain loops, on shapes that leave partial panels, slices that start
// mid-panel, and 1..65 activation rows; then matmul in both compute modes.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "core/quant.h"
#include "kernels/affine_int8.h"
#include "kernels/matmul.h"
#include "kernels/qgemm.h"
#include "affine_slice.h"
#include "qgemm_check.h"
#include "test_support.h"

namespace meshlm {
namespace {

using test::pack;
using test::randn;

TEST(QPanel, HoldsWhatTheRowFormatsHold) {
  for (DType dt : {DType::kQ8_0, DType::kQ4_0}) {
    for (auto [rows, cols] : {std::pair{1, 32}, {16, 64}, {17, 96}, {37, 32}, {50, 160}}) {
      auto wf = randn(size_t(rows * cols), 7);
      for (int64_t k = 0; k < cols; ++k) wf[size_t(k)] = 0;  // a row of zeros
      const auto packed = pack(dt, wf, rows, cols);
      const WeightView w{packed.data(), dt, rows, cols};
      std::vector<float> got(static_cast<size_t>(cols)), want(static_cast<size_t>(cols));
      std::vector<uint8_t> blocks(row_bytes(dt, cols));
      for (int64_t r = 0; r < rows; ++r) {
        if (dt == DType::kQ8_0) {
          quantize_q8_0(wf.data() + r * cols, cols, reinterpret_cast<BlockQ8_0*>(blocks.data()));
          dequantize_q8_0(reinterpret_cast<BlockQ8_0*>(blocks.data()), cols, want.data());
        } else {
          quantize_q4_0(wf.data() + r * cols, cols, reinterpret_cast<BlockQ4_0*>(blocks.data()));
          dequantize_q4_0(reinterpret_cast<BlockQ4_0*>(blocks.data()), cols, want.data());
        }
        weight_row(w, r, got.data());
        ASSERT_EQ(got, want) << dtype_name(dt) << " rows=" << rows << " r=" << r;
        // The same row through slices that start at every lane before it.
        for (int64_t s : {int64_t(0), r / 2, r}) {
          weight_row(w.row_slice(s, rows), r - s, got.data());
          ASSERT_EQ(got, want) << dtype_name(dt) << " slice from " << s << " r=" << r;
        }
      }
    }
  }
}

// The activations' int8 blocks: the SIMD path gives the portable loop's bits (ties, zeros and a block of zeros
// included), and every value is within half a step of x.
TEST(QPanel, ActivationBlocksAreTheSameOnEveryPath) {
  const int64_t n = 7, cols = 96;
  auto x = randn(size_t(n * cols), 21);
  for (int64_t k = 0; k < kQBlock; ++k) x[size_t(cols + k)] = 0;  // a block of zeros
  x[5] = 0.5f, x[6] = -0.5f, x[7] = 2.5f;                          // ties once scaled, given x[8] = 127
  x[8] = 127.0f;
  QuantizedX simd, plain;
  quantize_x_shape(n, cols, simd);
  quantize_x_shape(n, cols, plain);
  quantize_x_rows(x.data(), cols, 128, 0, 3, simd);  // in two parts, as threads share them
  quantize_x_rows(x.data(), cols, 128, 3, n, simd);
  quantize_x_rows(x.data(), cols, 128, 0, n, plain, /*simd=*/false);
  EXPECT_EQ(simd.q, plain.q);
  EXPECT_EQ(simd.d, plain.d);
  EXPECT_EQ(simd.corr, plain.corr);
  for (int64_t k = 0; k < n * cols; ++k)
    ASSERT_NEAR(plain.d[size_t(k / kQBlock)] * plain.q[size_t(k)], x[size_t(k)], plain.d[size_t(k / kQBlock)] * 0.5f + 1e-6f) << k;
  EXPECT_EQ(plain.q[5], 0);   // 0.5 rounds to even
  EXPECT_EQ(plain.q[7], 2);   // 2.5 rounds to even
  EXPECT_EQ(plain.d[size_t(cols / kQBlock)], 0.0f);
}

TEST(QGemm, EveryInstructionSetMatchesPlainLoops) {
  int tested = 0;
  for (QIsa isa : {QIsa::kPortable, QIsa::kAvx2, QIsa::kAvx512Vnni, QIsa::kNeonDot}) {
    if (!qisa_supported(isa)) continue;
    ++tested;
    test::check_int8_kernel(qisa_name(isa), [isa](const QuantizedX& x, const WeightView& w, int64_t r0, int64_t r1,
                                                  float* y) { qgemm_rows(isa, x, w, r0, r1, y); });
  }
  EXPECT_GE(tested, 1);
  std::printf("[ qgemm ] int8 kernels here: %s\n", qisa_name(best_qisa()));
}

// Through matmul: exact mode multiplies prefill-sized batches in fp32 (off only by summation order), decode and
// fast mode round x to int8 (about 0.3% RMS for q8_0 weights).
TEST(QGemm, MatmulInBothComputeModes) {
  for (DType dt : {DType::kQ8_0, DType::kQ4_0}) {
    const int64_t rows = 70, cols = 256;
    const auto wf = randn(size_t(rows * cols), 3);
    const auto packed = pack(dt, wf, rows, cols);
    const WeightView w{packed.data(), dt, rows, cols};
    for (int64_t n : {1, 8, 33, 64}) {
      const auto x = randn(size_t(n * cols), 5);
      std::vector<float> ref(size_t(n * rows));
      matmul_naive(x.data(), n, w, ref.data());
      for (Compute mode : {Compute::kExact, Compute::kFast}) {
        set_compute(mode);
        std::vector<float> y(ref.size(), NAN);
        matmul(x.data(), n, w, y.data());
        double err = 0, norm = 0;
        for (size_t i = 0; i < y.size(); ++i) err += (y[i] - ref[i]) * (y[i] - ref[i]), norm += ref[i] * ref[i];
        const bool int8 = mode == Compute::kFast || n <= kSkinnyRowsQ;
        EXPECT_LT(std::sqrt(err / norm), int8 ? 0.02 : 1e-6)
            << dtype_name(dt) << " n=" << n << (mode == Compute::kFast ? " fast" : " exact");
        EXPECT_GT(std::sqrt(err / norm), int8 ? 1e-5 : 0.0) << "x was not rounded to int8";
      }
    }
  }
  set_compute(Compute::kExact);
}

// Split over threads, the int8 paths give the bits one thread gives: each member quantizes its share of x's rows
// into the caller's buffers and multiplies its share of the weight rows. (Exact prefill goes through sgemm, whose
// summation order follows the shares' sizes: the same to 1e-4.)
TEST(QGemm, ThreadsShareTheWorkWithTheSameBits) {
  const int64_t rows = 300, cols = 256;
  const auto wf = randn(size_t(rows * cols), 13);
  const auto q8 = pack(DType::kQ8_0, wf, rows, cols), q4 = pack(DType::kQ4_0, wf, rows, cols);
  const Slice mlx4(4, 64, rows, cols, 0, 5, DType::kBF16), mlx8(8, 32, rows, cols, 0, 6, DType::kF16);
  const std::vector<std::pair<const char*, WeightView>> weights = {
      {"q8_0", {q8.data(), DType::kQ8_0, rows, cols}}, {"q4_0", {q4.data(), DType::kQ4_0, rows, cols}},
      {"mlx4", mlx4.view()}, {"mlx8", mlx8.view()}};
  for (const auto& [name, w] : weights) {
    for (int64_t n : {3, 20, 40, 100}) {
      const auto x = randn(size_t(n * cols), uint32_t(n));
      for (Compute mode : {Compute::kExact, Compute::kFast}) {
        set_compute(mode);
        std::vector<float> one(size_t(n * rows)), three(one.size());
        set_matmul_threads(1);
        matmul(x.data(), n, w, one.data());
        set_matmul_threads(3);
        matmul(x.data(), n, w, three.data());
        set_matmul_threads(1);
        const std::string where = std::string(name) + " n=" + std::to_string(n) + (mode == Compute::kFast ? " fast" : " exact");
        const bool int8 = n <= kSkinnyRowsQ || (mode == Compute::kFast && (is_quantized(w.dtype) || (affine_int8_ok(w) && n >= kAffineInt8MinN)));
        if (int8) {
          EXPECT_EQ(one, three) << where;
        } else {
          for (size_t i = 0; i < one.size(); ++i) ASSERT_NEAR(one[i], three[i], 1e-4 * (1 + std::fabs(one[i]))) << where;
        }
      }
    }
  }
  set_compute(Compute::kExact);
}

}  // namespace
}  // namespace meshlm
