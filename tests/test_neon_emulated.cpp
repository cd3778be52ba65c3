// The NEON kernels (affine, 16-bit skinny matmul, and the int8 panel kernel's sdot) run on x86 through SIMDe's NEON
// emulation (the same source the Arm build compiles, over emulated intrinsics), so a change to them is tested on
// every machine, not only on Arm hosts.
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/arm/neon.h>
#if defined(__clang__)
// SIMDe 0.7.4 checks vshll_n_u16's shift against 1..15 (clang enforces its checks); NEON takes 0..16, and the
// kernels widen bf16 by the shift of 16.
#undef vshll_n_u16
#define vshll_n_u16(a, n) vshlq_n_u32(vmovl_u16(a), (n))
#endif
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <utility>

#include "affine_slice.h"
#include "core/dtype.h"
#include "kernels/affine_digits.h"
#include "kernels/affine_int8.h"
#include "kernels/matvec.h"
#include "kernels/qgemm_tiles.h"
#include "qgemm_check.h"

namespace meshlm {
namespace neon_affine {
#include "kernels/simd_neon_ops.h"
#include "kernels/affine_neon_ops.h"
#include "kernels/affine_impl.h"
}  // namespace neon_affine
namespace neon_matvec {
#include "kernels/simd_neon_ops.h"
constexpr int kRows = 4, kPrefetch = 0;  // as matvec_arm.cpp
#include "kernels/matvec_impl.h"
}  // namespace neon_matvec
namespace neon_qgemm {
#include "kernels/qgemm_neon_impl.h"
}  // namespace neon_qgemm
namespace neon_bf16 {
// bfdot's arithmetic (per fp32 lane j, plus a[2j] b[2j] + a[2j+1] b[2j+1]) in SIMDe's NEON, which has no bf16
// types: element 2j is the low half of 32-bit lane j, and a bf16 is the top half of its fp32.
using bf16x8 = uint16x8_t;
inline bf16x8 load_bf16(const uint16_t* p) { return vld1q_u16(p); }
inline float32x4_t bf16_dot(float32x4_t acc, bf16x8 a, bf16x8 b) {
  const uint32x4_t a32 = vreinterpretq_u32_u16(a), b32 = vreinterpretq_u32_u16(b), top = vdupq_n_u32(0xffff0000u);
  acc = vfmaq_f32(acc, vreinterpretq_f32_u32(vshlq_n_u32(a32, 16)), vreinterpretq_f32_u32(vshlq_n_u32(b32, 16)));
  return vfmaq_f32(acc, vreinterpretq_f32_u32(vandq_u32(a32, top)), vreinterpretq_f32_u32(vandq_u32(b32, top)));
}
#include "kernels/bf16dot_neon_impl.h"
}  // namespace neon_bf16

namespace {

TEST(NeonEmulated, AffineKernelMatchesThePlainFormula) {
  for (int bits : {4, 8}) {
    for (auto [group, cols, params] : {std::tuple{32, 96, DType::kF32}, {64, 192, DType::kBF16},
                                       {128, 256, DType::kF16}, {32, 8320, DType::kBF16}}) {
      const Slice s(bits, group, 13, cols, 0, uint32_t(bits * 100 + group), params);
      const WeightView w = s.view();
      for (int64_t n : {1, 2, 3, 4, 5, 8}) {
        std::mt19937 rng(static_cast<uint32_t>(n));
        std::uniform_real_distribution<float> u(-1, 1);
        std::vector<float> x(size_t(n * cols)), y(size_t(n * s.rows), NAN), xsum, paired;
        for (float& v : x) v = u(rng);
        affine_xsums(x.data(), n, w, xsum);
        pair_x(x.data(), n, cols, paired);  // what matmul passes the 4-bit kernel
        neon_affine::rows(bits == 4 ? paired.data() : x.data(), n, w, xsum.data(), 0, s.rows, y.data());
        for (int64_t i = 0; i < n; ++i)
          for (int64_t r = 0; r < s.rows; ++r) {
            double want = 0;
            for (int64_t c = 0; c < cols; ++c) want += s.weight(r, c) * x[size_t(i * cols + c)];
            ASSERT_NEAR(y[size_t(i * s.rows + r)], want, 1e-4 * (1 + std::fabs(want)))
                << bits << " bits, group " << group << ", n " << n << ", row " << r;
          }
      }
    }
  }
}

TEST(NeonEmulated, MatvecMatchesNaiveForEveryDtype) {
  std::mt19937 rng(3);
  std::normal_distribution<float> d;
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (auto [n, rows, cols] : {std::tuple{1, 7, 5}, {3, 64, 48}, {4, 9, 100}, {2, 33, 129}, {8, 70, 64}}) {
      std::vector<float> x(size_t(n * cols)), wf(size_t(rows * cols));
      for (float& v : x) v = d(rng);
      for (float& v : wf) v = d(rng);
      std::vector<uint16_t> w16;
      for (float v : wf) w16.push_back(dt == DType::kBF16 ? f32_to_bf16(v) : f32_to_f16(v));
      const WeightView w{dt == DType::kF32 ? static_cast<const void*>(wf.data()) : w16.data(), dt, rows, cols};
      std::vector<float> y(size_t(n * rows), NAN), ref(y.size());
      std::vector<float> paired;  // read for bf16 weights
      pair_x(x.data(), n, cols, paired);
      neon_matvec::rows(x.data(), n, w, 0, rows, y.data(), paired.data());
      matmul_naive(x.data(), n, w, ref.data());
      for (size_t i = 0; i < y.size(); ++i)
        ASSERT_NEAR(y[i], ref[i], 1e-4 * (1 + std::fabs(ref[i])))
            << dtype_name(dt) << " n=" << n << " rows=" << rows << " cols=" << cols << " i=" << i;
    }
  }
}

TEST(NeonEmulated, DotProductKernelMatchesPlainLoops) {
  test::check_int8_kernel("neondot (emulated)", [](const QuantizedX& x, const WeightView& w, int64_t r0, int64_t r1,
                                                   float* y) { neon_qgemm::rows(x, w, r0, r1, y); });
}

// Fast mode's MLX kernel on panels (4 and 8 bits, groups of 32 / 64 / 128, every param dtype) against the plain
// formula on x rounded as the kernel rounds it: 21 rows end inside a panel, a slice starts at row 5, and each view
// is computed as two row ranges. Exact mode's digits (kernels/affine_digits.h) through the same kernel: within fp32
// rounding of the plain formula on x itself.
TEST(NeonEmulated, AffineInt8KernelMatchesThePlainFormulaOnRoundedXAndOnDigits) {
  for (int bits : {4, 8}) {
    for (auto [group, cols, params] : {std::tuple{32, 256, DType::kBF16}, {64, 384, DType::kF16},
                                       {128, 512, DType::kF32}, {64, 640, DType::kBF16}}) {
      const Slice s(bits, group, 21, cols, 0, uint32_t(bits * 100 + group), params);
      std::vector<uint8_t> buf(size_t((s.rows + kPanelRows - 1) / kPanelRows) * affine_panel_bytes(s.view().affine));
      affine_to_panels(s.view(), 0, s.rows, buf.data());
      const WeightView whole = affine_panel_view(s.view(), buf.data());
      for (int64_t n : {1, 2, 3, 5}) {
        std::mt19937 rng(static_cast<uint32_t>(n));
        std::uniform_real_distribution<float> u(-1, 1);
        std::vector<float> x(size_t(n * cols)), xbuf;
        for (float& v : x) v = u(rng);
        const float* xs = affine_int8_prepared(x.data(), n, whole, xbuf);  // as the kernel takes x (4 bits: paired)
        QuantizedX xq, xr, xd;  // x in int8, the same rounding in column order, and x as digits
        quantize_x(xs, n, cols, kAffineXOffset, xq);
        quantize_x(x.data(), n, cols, 0, xr);
        quantize_x_shape(kXDigits * n, cols, xd);
        quantize_x_digits(xs, cols, group, 0, n, xd);
        for (int64_t first : {0, 5}) {
          const WeightView w = whole.row_slice(first, s.rows);
          std::vector<float> y(size_t(n * w.rows), NAN), yd(size_t(kXDigits * n * w.rows), NAN), exact(y.size());
          for (auto [xin, out] : {std::pair{&xq, &y}, {&xd, &yd}}) {
            neon_qgemm::affine_rows(*xin, w, 0, w.rows / 2, out->data(), w.rows);
            neon_qgemm::affine_rows(*xin, w, w.rows / 2, w.rows, out->data(), w.rows);
          }
          add_digit_rows(yd.data(), n, w.rows, 0, w.rows, exact.data());
          for (int64_t i = 0; i < n; ++i)
            for (int64_t r = 0; r < w.rows; ++r) {
              double want = 0, on_x = 0, mag = 0;
              for (int64_t c = 0; c < cols; ++c) {
                const double xv = double(xr.d[size_t((i * cols + c) / kQBlock)]) * xr.q[size_t(i * cols + c)];
                want += s.weight(first + r, c) * xv, mag += std::fabs(s.weight(first + r, c) * xv);
                on_x += s.weight(first + r, c) * x[size_t(i * cols + c)];
              }
              ASSERT_NEAR(y[size_t(i * w.rows + r)], want, 1e-5 * mag + 1e-5)
                  << bits << " bits, group " << group << ", n " << n << ", row " << first + r;
              ASSERT_NEAR(exact[size_t(i * w.rows + r)], on_x, 5e-7 * mag + 1e-9)
                  << "digits, " << bits << " bits, group " << group << ", n " << n << ", row " << first + r;
            }
        }
      }
    }
  }
}

// Fast mode's bf16 kernel (bfdot) against the plain formula on x rounded to bf16 (unrounded in the columns past the
// last multiple of 8): 1..65 rows of x (the blocks of 4, and the tiles past 4), weight rows that are not a multiple
// of the blocks' 4 or 8, a column tail, and a row range that starts mid-matrix (the rows outside it untouched).
TEST(NeonEmulated, Bf16DotKernelMatchesThePlainFormulaOnRoundedX) {
  std::mt19937 rng(5);
  std::normal_distribution<float> d;
  for (auto [rows, cols] : {std::pair{13, 64}, {37, 203}, {8, 8}, {70, 1000}}) {
    std::vector<uint16_t> w16(size_t(rows * cols));
    for (uint16_t& v : w16) v = f32_to_bf16(d(rng));
    const WeightView w{w16.data(), DType::kBF16, rows, cols};
    for (int64_t n : {1, 2, 3, 4, 5, 9, 17, 65}) {
      std::vector<float> x(size_t(n * cols));
      for (float& v : x) v = d(rng);
      std::vector<uint16_t> xh(x.size());
      f32_to_bf16(x.data(), xh.data(), xh.size());
      for (int64_t r0 : {int64_t(0), int64_t(3)}) {
        std::vector<float> y(size_t(n * rows), NAN);
        neon_bf16::gemm_rows(x.data(), xh.data(), n, w, r0, rows, y.data());
        for (int64_t i = 0; i < n; ++i)
          for (int64_t r = 0; r < rows; ++r) {
            const float got = y[size_t(i * rows + r)];
            if (r < r0) {
              ASSERT_TRUE(std::isnan(got)) << "row " << r << " is outside the range";
              continue;
            }
            double want = 0, mag = 0;
            for (int64_t c = 0; c < cols; ++c) {
              const size_t at = size_t(i * cols + c);
              const double xv = c < cols - cols % 8 ? bf16_to_f32(xh[at]) : x[at];
              const double t = double(bf16_to_f32(w16[size_t(r * cols + c)])) * xv;
              want += t, mag += std::fabs(t);
            }
            ASSERT_NEAR(got, want, 1e-5 * mag + 1e-6) << "rows " << rows << ", cols " << cols << ", n " << n
                                                      << ", row " << r << ", x row " << i;
          }
      }
    }
  }
}

}  // namespace
}  // namespace meshlm
