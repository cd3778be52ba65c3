// MLX affine weights: unpacking every bit width MLX writes (values crossing byte and word boundaries, rows ending
// mid-word), repacking a column slice, and the fused kernel and the sgemm path against a plain double reference on
// slices that start inside a group.
#include <gtest/gtest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <random>

#include "kernels/affine.h"
#include "kernels/affine_int8.h"
#include "kernels/matmul.h"
#include "kernels/matvec.h"
#include "kernels/qgemm.h"
#include "kernels/qpanel.h"
#include "affine_slice.h"

namespace meshlm {
namespace {

const int kBits[] = {2, 3, 4, 5, 6, 8};

TEST(Affine, UnpacksEveryBitWidth) {
  std::mt19937 rng(5);
  for (int bits : kBits) {
    const int64_t n = 77;  // 77·bits is a whole number of words for no width here: the row ends mid-word
    std::vector<uint32_t> v(static_cast<size_t>(n));
    for (auto& x : v) x = rng() & ((1u << bits) - 1);
    const auto row = pack(v, bits, affine_row_bytes(n, bits));
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(affine_value(row.data(), i, bits), v[size_t(i)]) << bits << " bits, " << i;
  }
}

TEST(Affine, RepacksAColumnSliceFromAnyBitOffset) {
  std::mt19937 rng(6);
  for (int bits : kBits) {
    std::vector<uint32_t> v(200);
    for (auto& x : v) x = rng() & ((1u << bits) - 1);
    const auto row = pack(v, bits, affine_row_bytes(200, bits));
    for (int64_t first : {0, 1, 13, 32, 63}) {
      const int64_t n = 101;
      std::vector<uint8_t> out(affine_row_bytes(n, bits) + 8, 0);
      affine_repack(row.data(), uint64_t(first * bits), n, bits, out.data());
      for (int64_t i = 0; i < n; ++i)
        ASSERT_EQ(affine_value(out.data(), i, bits), v[size_t(first + i)]) << bits << " bits from " << first;
    }
  }
}

// Every instruction set the CPU has (4 and 8 bits have SIMD kernels for whole groups; the rest, and slices inside
// groups, the portable one).
class AffineIsa : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!isa_supported(GetParam())) GTEST_SKIP() << isa_name(GetParam()) << " is not on this CPU";
    set_matmul_isa(GetParam());
  }
  void TearDown() override { set_matmul_isa(best_isa()); }
};

// Scales and biases in each dtype mlx writes (F32, and the model's F16 or BF16, kept as stored).
TEST_P(AffineIsa, KernelsMatchThePlainFormulaOnSlicesInsideGroups) {
  for (int bits : kBits) {
    for (auto [group, phase, cols, params] :
         {std::tuple{32, 0, 96, DType::kF32}, {64, 24, 100, DType::kBF16}, {128, 100, 300, DType::kF16},
          {32, 31, 33, DType::kF32}, {64, 0, 192, DType::kBF16}, {128, 0, 256, DType::kF16},  // whole groups
          {32, 0, 8320, DType::kBF16}}) {  // 260 groups: more than one chunk of 16-bit params converted at once
      const Slice s(bits, group, 37, cols, phase, uint32_t(bits * 1000 + phase), params);
      const WeightView w = s.view();
      std::vector<float> row(static_cast<size_t>(cols));
      weight_row(w, 5, row.data());
      for (int64_t c = 0; c < cols; ++c) ASSERT_NEAR(row[size_t(c)], s.weight(5, c), 1e-6) << bits << " bits";
      for (int64_t n : {1, 3, 8, 40}) {  // 40 rows: dequantized panels through sgemm
        std::mt19937 rng(static_cast<uint32_t>(n));
        std::uniform_real_distribution<float> u(-1, 1);
        std::vector<float> x(size_t(n * cols)), y(size_t(n * s.rows));
        for (float& v : x) v = u(rng);
        matmul(x.data(), n, w, y.data());
        for (int64_t i = 0; i < n; ++i)
          for (int64_t r = 0; r < s.rows; ++r) {
            double want = 0;
            for (int64_t c = 0; c < cols; ++c) want += s.weight(r, c) * x[size_t(i * cols + c)];
            ASSERT_NEAR(y[size_t(i * s.rows + r)], want, 1e-4 * (1 + std::fabs(want)))
                << bits << " bits, group " << group << ", phase " << phase << ", cols " << cols << ", params "
                << dtype_name(params) << ", n " << n << ", row " << r;
          }
      }
    }
  }
}

// --compute fast: 4- and 8-bit whole groups meet int8 activations, on panels repacked at load (every n, and row
// slices that start inside a panel) and, for views of the stored rows, repacked per call from kAffineInt8MinN rows.
// Against the plain formula on x rounded as the kernel rounds it (tight), and on x itself (within x's rounding);
// where the kernel does not apply, fast = exact. 21 rows end inside a panel; 100 rows of 4096 columns span three
// tiles of panels repacked per call.
TEST(AffineFast, Int8KernelMatchesThePlainFormulaOnRoundedX) {
  const Isa saved = matmul_isa();
  for (Isa isa : {Isa::kAvx512, Isa::kAvx2}) {
  if (!isa_supported(isa)) continue;
  set_matmul_isa(isa);  // AVX-512 without VNNI: the AVX2 kernel too
  int tested = 0;
  for (int bits : {4, 8, 3}) {
    for (auto [group, cols, rows, params] :
         {std::tuple{32, 256, 21, DType::kBF16}, {64, 384, 21, DType::kF16}, {128, 512, 21, DType::kF32},
          {64, 640, 21, DType::kBF16}, {32, 96, 21, DType::kF32}, {64, 4096, 100, DType::kBF16}}) {
      const Slice s(bits, group, rows, cols, 0, uint32_t(bits * 100 + group), params);
      const WeightView stored = s.view();
      std::vector<uint8_t> buf;
      const bool ok = affine_int8_ok(stored);
      const WeightView panels = ok ? panel_view(stored, buf) : stored;
      for (int64_t n : {int64_t(1), int64_t(2), int64_t(7), kAffineInt8MinN - 1, kAffineInt8MinN, int64_t(33)}) {
        std::mt19937 rng(static_cast<uint32_t>(n));
        std::uniform_real_distribution<float> u(-1, 1);
        std::vector<float> x(size_t(n * cols));
        for (float& v : x) v = u(rng);
        x[3] = 0;
        QuantizedX xr;  // x as the int8 kernel rounds it: blocks of 32, scale amax / 127
        quantize_x(x.data(), n, cols, 0, xr);
        // (view, first row of the matrix, int8 expected)
        for (auto [w, r0, int8] : {std::tuple{stored, int64_t(0), ok && n >= kAffineInt8MinN},
                                   {panels, int64_t(0), ok}, {panels.row_slice(5, s.rows), int64_t(5), ok}}) {
          std::vector<float> y(size_t(n * w.rows));
          set_compute(Compute::kFast);
          matmul(x.data(), n, w, y.data());
          set_compute(Compute::kExact);
          tested += int8;
          double err = 0, norm = 0;
          for (int64_t i = 0; i < n; ++i)
            for (int64_t r = 0; r < w.rows; ++r) {
              double on_rounded = 0, on_x = 0, mag = 0;
              for (int64_t c = 0; c < cols; ++c) {
                const double xq = double(xr.d[size_t((i * cols + c) / 32)]) * xr.q[size_t(i * cols + c)];
                const double xv = x[size_t(i * cols + c)], wv = s.weight(r0 + r, c);
                on_rounded += wv * xq, on_x += wv * xv, mag += std::fabs(wv * xv);
              }
              const double got = y[size_t(i * w.rows + r)];
              ASSERT_NEAR(got, int8 ? on_rounded : on_x, 1e-5 * mag + 1e-5)
                  << bits << " bits, group " << group << ", cols " << cols << ", n " << n << ", row " << r0 + r
                  << (w.affine.panels ? ", panels, " : ", stored, ") << isa_name(isa);
              err += (got - on_x) * (got - on_x), norm += on_x * on_x;
            }
          if (int8) {
            EXPECT_GT(std::sqrt(err / norm), 1e-5) << "x was not rounded to int8";
          }
          EXPECT_LT(std::sqrt(err / norm), 0.02);
        }
      }
    }
  }
  EXPECT_GT(tested, 0) << isa_name(isa) << ": the int8 kernel never ran";
  }
  set_matmul_isa(saved);
}

// The panels hold exactly the stored values: every row dequantized from them (the embedding lookup of a tied head),
// also through a slice starting inside a panel, equals the stored row's.
TEST(AffineFast, PanelsHoldTheStoredValues) {
  for (int bits : {4, 8})
    for (auto [group, params] : {std::pair{32, DType::kBF16}, {64, DType::kF16}, {128, DType::kF32}}) {
      const Slice s(bits, group, 37, 256, 0, uint32_t(bits + group), params);
      std::vector<uint8_t> buf;
      const WeightView stored = s.view(), panels = panel_view(stored, buf), slice = panels.row_slice(19, 37);
      std::vector<float> want(256), got(256);
      for (int64_t r = 0; r < s.rows; ++r) {
        weight_row(stored, r, want.data());
        weight_row(panels, r, got.data());
        ASSERT_EQ(got, want) << bits << " bits, group " << group << ", row " << r;
        if (r < 19) continue;
        weight_row(slice, r - 19, got.data());
        ASSERT_EQ(got, want) << bits << " bits, group " << group << ", row " << r << " of a slice";
      }
    }
}

// Bytes copied to the very end of a readable mapping whose next page is not readable: a kernel that reads one byte
// past them faults.
class Guarded {
 public:
  explicit Guarded(const std::vector<uint8_t>& bytes) {
    page_ = size_t(sysconf(_SC_PAGESIZE));
    pages_ = (bytes.size() + page_ - 1) / page_ + 1;
    base_ = static_cast<uint8_t*>(mmap(nullptr, pages_ * page_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (base_ == MAP_FAILED) throw std::runtime_error("mmap failed");
    mprotect(base_ + (pages_ - 1) * page_, page_, PROT_NONE);
    data_ = base_ + (pages_ - 1) * page_ - bytes.size();
    std::memcpy(data_, bytes.data(), bytes.size());
  }
  ~Guarded() { munmap(base_, pages_ * page_); }
  Guarded(const Guarded&) = delete;
  Guarded& operator=(const Guarded&) = delete;
  const uint8_t* data() const { return data_; }

 private:
  size_t page_ = 0, pages_ = 0;
  uint8_t* base_ = nullptr;
  uint8_t* data_ = nullptr;
};

// The int8 kernels read nothing past the matrix, whose last byte ends a readable page: the panels of 21 rows (the
// last panel's padding rows are in it), and the stored rows, scales and biases that panels are repacked from per call.
TEST(AffineFast, ReadsNothingPastTheMatrix) {
  for (int bits : {4, 8})
    for (int64_t n : {int64_t(1), int64_t(3), kAffineInt8MinN}) {
      const Slice s(bits, 32, 21, 96, 0, uint32_t(bits + n), DType::kBF16);
      if (!affine_int8_ok(s.view())) GTEST_SKIP() << "no int8 kernel on this CPU";
      const std::vector<uint8_t> packed(s.packed.begin(), s.packed.begin() + long(21 * affine_row_bytes(96, bits)));
      const Guarded w_bytes(packed), scales(s.held_scales), biases(s.held_biases);
      WeightView stored = s.view();
      stored.data = w_bytes.data(), stored.affine.scales = scales.data(), stored.affine.biases = biases.data();
      std::vector<uint8_t> buf;
      panel_view(s.view(), buf);
      const Guarded panel_bytes(buf);
      const WeightView panels = affine_panel_view(s.view(), panel_bytes.data());
      std::vector<float> x(size_t(n * 96), 0.5f), fast(size_t(n * 21)), exact(fast.size());
      matmul(x.data(), n, s.view(), exact.data());
      for (const WeightView& w : {stored, panels}) {
        set_compute(Compute::kFast);
        matmul(x.data(), n, w, fast.data());
        set_compute(Compute::kExact);
        for (size_t i = 0; i < fast.size(); ++i) EXPECT_NEAR(fast[i], exact[i], 0.02 * (1 + std::fabs(exact[i])));
      }
    }
}

INSTANTIATE_TEST_SUITE_P(Isas, AffineIsa, ::testing::Values(Isa::kPortable, Isa::kAvx2, Isa::kAvx512, Isa::kNeon),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

}  // namespace
}  // namespace meshlm
