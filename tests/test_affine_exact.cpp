// --compute exact on MLX panels: x as three int8 digits (kernels/affine_digits.h). The digits rebuild x to within half
// a unit of 23 bits, never leave int8 (blocks at the edge of the top digit's range), and the panel kernel on them
// matches the plain formula on x itself as tightly as fp32 kernels do; exact mode loads MLX matrices as panels only
// where that kernel runs.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "affine_slice.h"
#include "io/hf_config.h"
#include "io/weight_index.h"
#include "kernels/affine_digits.h"
#include "kernels/affine_int8.h"
#include "kernels/matvec.h"
#include "kernels/qgemm.h"
#include "model/weights.h"
#include "test_support.h"

namespace meshlm {
namespace {

// x rebuilt from its digits (double), one block of row i at a time: Σ_t d_t q_t.
double rebuilt(const QuantizedX& q, int64_t i, int64_t k) {
  const int64_t blocks = q.blocks, b = k / kQBlock;
  double v = 0;
  for (int64_t t = 0; t < kXDigits; ++t) {
    const int64_t row = kXDigits * i + t;
    v += double(q.d[size_t(row * blocks + b)]) * q.q[size_t(row * blocks * kQBlock + k)];
  }
  return v;
}

TEST(AffineDigits, RebuildXWithinHalfAUnitOf23Bits) {
  const float top = 8355711.0f / 8388608.0f;  // the largest |x| / 2^23 whose top digit fits an int8 at unit 2^-23
  std::vector<std::vector<float>> blocks = {
      {top}, {-top}, {std::nextafter(top, 1.0f)}, {-std::nextafter(top, 1.0f)}, {0.99999994f}, {-1.0f}, {1.0f},
      {0.5f}, {3e-39f, -1e-40f},  // subnormal
      {1e30f, -7e29f, 1.0f}, {0.0f}};
  std::mt19937 rng(11);
  for (float scale : {1e-6f, 1.0f, 3e4f}) {  // random blocks: every digit of every sign
    std::uniform_real_distribution<float> u(-scale, scale);
    std::vector<float> b(kQBlock);
    for (float& v : b) v = u(rng);
    blocks.push_back(b);
  }
  const int64_t cols = int64_t(blocks.size()) * kQBlock;
  std::vector<float> x(size_t(cols), 0.0f);
  for (size_t b = 0; b < blocks.size(); ++b)
    for (size_t j = 0; j < blocks[b].size(); ++j) x[b * kQBlock + (j * 7) % kQBlock] = blocks[b][j];
  QuantizedX q;
  quantize_x_shape(kXDigits, cols, q);
  quantize_x_digits(x.data(), cols, kQBlock, 0, 1, q);  // a unit per block
  for (int64_t b = 0; b < cols / kQBlock; ++b) {
    double amax = 0;
    for (int64_t j = 0; j < kQBlock; ++j) amax = std::max(amax, std::fabs(double(x[size_t(b * kQBlock + j)])));
    const double unit = q.d[size_t(2 * q.blocks + b)];  // the low digit's scale
    if (amax == 0) {
      for (int64_t k = b * kQBlock; k < (b + 1) * kQBlock; ++k) EXPECT_EQ(rebuilt(q, 0, k), 0.0);
      continue;
    }
    const double subnormal_unit = std::ldexp(1.0, -149);  // the least fp32 can hold: a smaller scale is 0
    if (unit >= subnormal_unit) {
      EXPECT_EQ(double(q.d[size_t(b)]), unit * 65536) << "block " << b;
      EXPECT_EQ(double(q.d[size_t(q.blocks + b)]), unit * 256) << "block " << b;
      int e;
      EXPECT_EQ(std::frexp(unit, &e), 0.5) << "block " << b << ": unit " << unit << " is not a power of two";
      EXPECT_GE(amax / unit, 4177855.0) << "block " << b << ": fewer than 22 bits below the largest";
      EXPECT_LE(amax / unit, 8355711.5) << "block " << b;
    }
    for (int64_t t = 0; t < kXDigits; ++t) {
      int32_t sum = 0;
      for (int64_t j = 0; j < kQBlock; ++j) sum += q.q[size_t((t * q.blocks + b) * kQBlock + j)];
      EXPECT_EQ(q.corr[size_t(t * q.blocks + b)], sum) << "block " << b << ", digit " << t;
    }
    for (int64_t k = b * kQBlock; k < (b + 1) * kQBlock; ++k)
      ASSERT_LE(std::fabs(rebuilt(q, 0, k) - double(x[size_t(k)])), unit > 0 ? unit / 2 : 128 * subnormal_unit)
          << "block " << b << ", x " << x[size_t(k)];
  }
  // A block with inf or NaN: its scales are NaN, so y is NaN (as the fp32 kernels give inf or NaN).
  for (float bad : {std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()}) {
    std::vector<float> xb(kQBlock, 1.0f);
    xb[5] = bad;
    quantize_x_shape(kXDigits, kQBlock, q);
    quantize_x_digits(xb.data(), kQBlock, kQBlock, 0, 1, q);
    for (int64_t t = 0; t < kXDigits; ++t) EXPECT_TRUE(std::isnan(q.d[size_t(t)])) << bad;
  }
}

// A unit per group: every block of a group takes the group's (from its largest |x|, which block 1 holds), and still
// rebuilds x within half of it; the next group has its own.
TEST(AffineDigits, GroupsShareOneUnit) {
  std::vector<float> x(256);
  std::mt19937 rng(12);
  std::uniform_real_distribution<float> u(-1e-3f, 1e-3f);
  for (float& v : x) v = u(rng);
  x[40] = 3.0f, x[200] = -0.25f;  // group 0 (columns 0..127) and group 1
  QuantizedX q;
  quantize_x_shape(kXDigits, 256, q);
  quantize_x_digits(x.data(), 256, 128, 0, 1, q);
  for (int64_t b = 0; b < 8; ++b) {
    const double unit = q.d[size_t(2 * q.blocks + b)];
    const double want = std::ldexp(1.0, (b < 4 ? 2 : -1) - 23);  // 3 = 0.75 · 2^2, 0.25 = 0.5 · 2^-1
    EXPECT_EQ(unit, want) << "block " << b;
    for (int64_t k = b * kQBlock; k < (b + 1) * kQBlock; ++k)
      ASSERT_LE(std::fabs(rebuilt(q, 0, k) - double(x[size_t(k)])), unit / 2) << "column " << k;
  }
}

// Exact mode on panels: at up to kSkinnyRowsQ rows of x, the digits through the int8 panel kernel (the same bits as
// that composition done here), within fp32 rounding of the plain formula on x; beyond, sgemm on the dequantized
// panels. Where the kernel does not run (no VNNI / sdot, or the AVX2 kernel chosen) exact mode takes sgemm at every
// n. 21 rows end inside a panel; 100 rows of 4096 columns span several tiles; 1..65 rows of x (the tiles take 3 digit
// rows, one panel at a time at decode, 4 beyond).
TEST(AffineExact, DigitKernelMatchesThePlainFormulaOnX) {
  const Isa saved = matmul_isa();
  int digits_ran = 0;
  for (Isa isa : {Isa::kAvx512, Isa::kAvx2, Isa::kNeon}) {
    if (!isa_supported(isa)) continue;
    set_matmul_isa(isa);
    for (int bits : {4, 8})
      for (auto [group, cols, rows, params] :
           {std::tuple{32, 256, 21, DType::kBF16}, {64, 384, 21, DType::kF16}, {128, 512, 21, DType::kF32},
            {64, 4096, 100, DType::kBF16}}) {
        const Slice s(bits, group, rows, cols, 0, uint32_t(bits * 10 + group), params);
        std::vector<uint8_t> buf;
        if (!affine_int8_ok(s.view())) continue;
        const WeightView panels = panel_view(s.view(), buf);
        const bool digits = affine_exact_ok(panels);
        for (int64_t n : {int64_t(1), int64_t(2), int64_t(3), int64_t(4), int64_t(5), int64_t(7), int64_t(17),
                          kSkinnyRowsQ, kSkinnyRowsQ + 1, int64_t(65)}) {
          std::mt19937 rng(static_cast<uint32_t>(n + cols));
          std::uniform_real_distribution<float> u(-1, 1);
          std::vector<float> x(size_t(n * cols)), y(size_t(n * rows));
          for (float& v : x) v = u(rng);
          x[7] = 0, x[40] = 1e-3f;
          ASSERT_EQ(compute_mode(), Compute::kExact);
          matmul(x.data(), n, panels, y.data());
          for (int64_t i = 0; i < n; ++i)
            for (int64_t r = 0; r < rows; ++r) {
              double want = 0, mag = 0;
              for (int64_t c = 0; c < cols; ++c) {
                const double p = s.weight(r, c) * x[size_t(i * cols + c)];
                want += p, mag += std::fabs(p);
              }
              ASSERT_NEAR(y[size_t(i * rows + r)], want, 5e-7 * mag + 1e-9)
                  << bits << " bits, group " << group << ", cols " << cols << ", n " << n << ", row " << r << ", "
                  << isa_name(isa) << (digits ? ", digits" : ", sgemm");
            }
          if (!digits || n > kSkinnyRowsQ) continue;
          // The same bits as the digits through the panel kernel: matmul took that path.
          std::vector<float> paired, ydigits(size_t(kXDigits * n * rows)), composed(y.size());
          const float* xs = affine_int8_prepared(x.data(), n, panels, paired);
          QuantizedX q;
          quantize_x_shape(kXDigits * n, cols, q);
          quantize_x_digits(xs, cols, group, 0, n, q);
          affine_digit_rows(q, panels, 0, rows, ydigits.data(), composed.data());
          ASSERT_EQ(composed, y) << bits << " bits, group " << group << ", n " << n << ", " << isa_name(isa);
          ++digits_ran;
        }
      }
  }
  set_matmul_isa(saved);
  if (qisa_supported(QIsa::kAvx512Vnni) || qisa_supported(QIsa::kNeonDot)) {
    EXPECT_GT(digits_ran, 0) << "the digit kernel never ran";
  }
}

// Exact mode loads the MLX matrices as panels where the digit kernel takes them, and as stored elsewhere; fast mode
// where its int8 kernels do. No mode: as stored.
TEST(AffineExact, LoadsPanelsWhereTheComputeModesKernelTakesThem) {
  if (test::shared_dir().empty()) GTEST_SKIP() << "../shared not found";
  const std::string m = test::shared_dir() + "/golden/models/tiny-llama-mlx4";
  const WeightIndex index(m);
  const ModelConfig c = load_model_config(m);
  for (auto mode : {std::optional<Compute>{}, std::optional{Compute::kExact}, std::optional{Compute::kFast}}) {
    const ModelWeights w = load_weights(index, c, ParallelLayout::single(c), DType::kF32, true, mode);
    const Matrix& q = w.layers.at(0).q_proj;
    ASSERT_EQ(q.dtype, DType::kAffine);
    WeightView stored = q.view();
    stored.affine.panels = false;  // what the check sees: the matrix as read
    const bool want = mode && affine_panels_pay(stored, *mode);
    EXPECT_EQ(q.panels, want) << (mode ? (*mode == Compute::kFast ? "fast" : "exact") : "no mode");
    if (mode == Compute::kExact) {
      EXPECT_EQ(want, affine_exact_ok(stored));
    }
  }
}

}  // namespace
}  // namespace meshlm
