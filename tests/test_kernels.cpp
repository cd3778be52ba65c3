// Kernels against naive loops: matmul in every weight dtype, rmsnorm, RoPE, attention, dtype conversion.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "kernels/attention.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "model/rope.h"

namespace meshlm {
namespace {

std::vector<float> randn(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (float& x : v) x = d(g);
  return v;
}

std::vector<uint16_t> to_16(const std::vector<float>& v, DType dt) {
  std::vector<uint16_t> out;
  for (float x : v) out.push_back(dt == DType::kBF16 ? f32_to_bf16(x) : f32_to_f16(x));
  return out;
}

TEST(DType, RoundTrips) {
  for (float x : {0.0f, 1.0f, -2.5f, 65504.0f, 1e-5f, 3.14159f}) {
    EXPECT_NEAR(f16_to_f32(f32_to_f16(x)), x, std::fabs(x) * 1e-3 + 1e-7) << x;
    EXPECT_NEAR(bf16_to_f32(f32_to_bf16(x)), x, std::fabs(x) * 1e-2 + 1e-30) << x;
  }
  EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_TRUE(std::isinf(f16_to_f32(0x7c00)));
}

TEST(Matmul, MatchesNaiveForEveryDtypeAndShape) {
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (auto [n, rows, cols] : {std::tuple{1, 7, 5}, {3, 64, 48}, {17, 300, 33}, {5, 2000, 40}}) {
      const auto x = randn(size_t(n * cols), 1), wf = randn(size_t(rows * cols), 2);
      const auto w16 = to_16(wf, dt);
      const WeightView w{dt == DType::kF32 ? static_cast<const void*>(wf.data()) : w16.data(), dt, rows, cols};
      std::vector<float> y(size_t(n * rows)), ref(y.size());
      matmul(x.data(), n, w, y.data());
      matmul_naive(x.data(), n, w, ref.data());
      for (size_t i = 0; i < y.size(); ++i)
        ASSERT_NEAR(y[i], ref[i], 1e-4 * (1 + std::fabs(ref[i]))) << dtype_name(dt) << " n=" << n << " i=" << i;
    }
  }
}

TEST(Ops, RmsnormSiluBias) {
  const auto x = randn(2 * 6, 3), w = randn(6, 4);
  std::vector<float> out(x.size());
  rmsnorm(x.data(), w.data(), out.data(), 2, 6, 1e-5f);
  for (int r = 0; r < 2; ++r) {
    double ss = 0;
    for (int k = 0; k < 6; ++k) ss += x[size_t(r * 6 + k)] * x[size_t(r * 6 + k)];
    const double s = 1 / std::sqrt(ss / 6 + 1e-5);
    for (int k = 0; k < 6; ++k) EXPECT_NEAR(out[size_t(r * 6 + k)], x[size_t(r * 6 + k)] * s * w[size_t(k)], 1e-5);
  }
  std::vector<float> g = {-1, 0, 2}, u = {2, 3, 0.5};
  silu_mul(g.data(), u.data(), 3);
  EXPECT_NEAR(g[0], -1 / (1 + std::exp(1.0)) * 2, 1e-6);
  EXPECT_NEAR(g[1], 0, 1e-7);
  EXPECT_NEAR(g[2], 2 / (1 + std::exp(-2.0)) * 0.5, 1e-6);
}

TEST(Rope, RotateHalfPairsIWithIPlusHalf) {
  ModelConfig c;
  c.head_dim = 4;
  c.rope_theta = 10000;
  Rope rope(c);
  float cs[2], sn[2];
  rope.angles(3, cs, sn);
  EXPECT_NEAR(cs[0], std::cos(3.0), 1e-6);
  EXPECT_NEAR(sn[1], std::sin(3.0 / 100.0), 1e-6);  // inv_freq[1] = 10000^(-2/4)
  float x[4] = {1, 2, 3, 4};
  rope_rotate_half(x, 1, 4, cs, sn);
  EXPECT_NEAR(x[0], 1 * cs[0] - 3 * sn[0], 1e-6);
  EXPECT_NEAR(x[2], 3 * cs[0] + 1 * sn[0], 1e-6);
  EXPECT_NEAR(x[1], 2 * cs[1] - 4 * sn[1], 1e-6);
}

TEST(Rope, Llama3ScalingKeepsHighAndDividesLowFrequencies) {
  ModelConfig c;
  c.head_dim = 64;
  c.rope_theta = 500000;
  Rope plain(c);
  c.rope_scaling.type = RopeScaling::Type::kLlama3;
  c.rope_scaling.factor = 8;
  c.rope_scaling.original_max_position = 8192;
  Rope scaled(c);
  float pc[32], ps[32], sc[32], ss[32];
  plain.angles(1000, pc, ps);
  scaled.angles(1000, sc, ss);
  EXPECT_FLOAT_EQ(pc[0], sc[0]);  // highest frequency untouched
  // lowest frequency: angle divided by 8
  const double inv = 1.0 / std::pow(500000.0, 62.0 / 64);
  EXPECT_NEAR(ss[31], std::sin(1000 * inv / 8), 1e-6);
}

TEST(Rope, LinearScalingDividesPositions) {
  ModelConfig c;
  c.head_dim = 8;
  c.rope_theta = 10000;
  Rope plain(c);
  c.rope_scaling.type = RopeScaling::Type::kLinear;
  c.rope_scaling.factor = 4;
  Rope scaled(c);
  float pc[4], ps[4], sc[4], ss[4];
  plain.angles(3, pc, ps);
  scaled.angles(12, sc, ss);  // position 12 at factor 4 turns like position 3 unscaled
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(sc[i], pc[i], 1e-6);
    EXPECT_NEAR(ss[i], ps[i], 1e-6);
  }
}

TEST(Attention, MatchesNaiveSoftmaxWithGqa) {
  const int64_t hd = 4, n_heads = 4, n_kv = 2, T = 5;
  const auto q = randn(size_t(n_heads * hd), 5), k = randn(size_t(T * n_kv * hd), 6), v = randn(size_t(T * n_kv * hd), 7);
  std::vector<float> out(size_t(n_heads * hd));
  std::vector<float> scores(static_cast<size_t>(T));
  attend(q.data(), k.data(), v.data(), 1, T - 1, {n_heads, n_kv, hd, 2}, scores.data(), out.data());
  for (int64_t h = 0; h < n_heads; ++h) {
    const int64_t kvh = h / 2;
    std::vector<double> p;
    double mx = -1e30, sum = 0;
    for (int64_t t = 1; t < T; ++t) {
      double d = 0;
      for (int64_t i = 0; i < hd; ++i) d += q[size_t(h * hd + i)] * k[size_t(t * n_kv * hd + kvh * hd + i)];
      p.push_back(d / 2.0);
      mx = std::max(mx, p.back());
    }
    for (double& e : p) sum += e = std::exp(e - mx);
    for (int64_t i = 0; i < hd; ++i) {
      double o = 0;
      for (int64_t t = 1; t < T; ++t) o += p[size_t(t - 1)] / sum * v[size_t(t * n_kv * hd + kvh * hd + i)];
      EXPECT_NEAR(out[size_t(h * hd + i)], o, 1e-5);
    }
  }
}

}  // namespace
}  // namespace meshlm
