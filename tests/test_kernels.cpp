// Kernels against naive loops: matmul in every weight dtype, rmsnorm, RoPE, attention, dtype conversion.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <random>
#include <stdexcept>

#include "kernels/attention.h"
#include "core/quant.h"
#include "core/thread_pool.h"
#include "kernels/matmul.h"
#include "kernels/matvec.h"
#include "kernels/ops.h"
#include "kernels/vexp.h"
#include "model/rope.h"
#include "test_support.h"

namespace meshlm {
namespace {

using test::randn;

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

// y = x · wᵀ by `run` against the double-precision loops, for every weight dtype and shapes that leave SIMD tails.
template <typename Run>
void check_against_naive(const char* what, Run run) {
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (auto [n, rows, cols] : {std::tuple{1, 7, 5}, {3, 64, 48}, {4, 9, 100}, {2, 33, 129}, {8, 70, 64},
                                 {9, 40, 37}, {17, 300, 33}, {5, 2000, 40}, {1, 130, 2048}}) {
      const auto x = randn(size_t(n * cols), 1), wf = randn(size_t(rows * cols), 2);
      const auto w16 = to_16(wf, dt);
      const WeightView w{dt == DType::kF32 ? static_cast<const void*>(wf.data()) : w16.data(), dt, rows, cols};
      std::vector<float> y(size_t(n * rows), NAN), ref(y.size());
      run(x.data(), n, w, y.data());
      matmul_naive(x.data(), n, w, ref.data());
      for (size_t i = 0; i < y.size(); ++i)
        ASSERT_NEAR(y[i], ref[i], 1e-4 * (1 + std::fabs(ref[i])))
            << what << " " << dtype_name(dt) << " n=" << n << " rows=" << rows << " cols=" << cols << " i=" << i;
    }
  }
}

TEST(Matmul, MatchesNaiveForEveryDtypeAndShape) {
  check_against_naive("matmul", [](const float* x, int64_t n, const WeightView& w, float* y) { matmul(x, n, w, y); });
}

TEST(Matmul, EverySupportedInstructionSetMatchesNaive) {
  int tested = 0;
  for (Isa isa : {Isa::kPortable, Isa::kAvx2, Isa::kAvx512, Isa::kNeon, Isa::kAvx512Bf16}) {
    if (!isa_supported(isa)) continue;
    ++tested;
    check_against_naive(isa_name(isa), [isa](const float* x, int64_t n, const WeightView& w, float* y) {
      matvec_rows(isa, x, n, w, 0, w.rows, y);
    });
  }
  EXPECT_GE(tested, 2) << "the portable kernel and at least this CPU's own";
  std::printf("[ kernels ] best instruction set here: %s\n", isa_name(best_isa()));
}

// --compute fast: bf16 weights meet bf16-rounded activations where the CPU has vdpbf16ps or bfdot (about 0.2% RMS
// off the fp32 product, at every number of rows); f32 and f16 weights stay as exact.
TEST(Matmul, FastModeRoundsActivationsToBf16ForBf16WeightsOnly) {
  const bool bf16dot = bf16_dot_active();
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (auto [n, rows, cols] :
         {std::tuple{1, 33, 70}, {5, 20, 64}, {2, 19, 300}, {7, 65, 96}, {40, 17, 33}, {65, 100, 256}}) {
      const auto x = randn(size_t(n * cols), 8), wf = randn(size_t(rows * cols), 9);
      const auto w16 = to_16(wf, dt);
      const WeightView w{dt == DType::kF32 ? static_cast<const void*>(wf.data()) : w16.data(), dt, rows, cols};
      std::vector<float> y(size_t(n * rows), NAN), ref(y.size());
      matmul_naive(x.data(), n, w, ref.data());
      set_compute(Compute::kFast);
      matmul(x.data(), n, w, y.data());
      set_compute(Compute::kExact);
      double err = 0, norm = 0;
      for (size_t i = 0; i < y.size(); ++i) err += (y[i] - ref[i]) * (y[i] - ref[i]), norm += ref[i] * ref[i];
      const bool rounded = bf16dot && dt == DType::kBF16;
      EXPECT_LT(std::sqrt(err / norm), rounded ? 1e-2 : 1e-6) << dtype_name(dt) << " n=" << n << " cols=" << cols;
      if (rounded) {
        EXPECT_GT(std::sqrt(err / norm), 1e-4) << "x was not rounded to bf16";
      }
    }
  }
}

TEST(Matmul, SplitOverThreadsGivesTheSameResult) {
  for (int threads : {2, 3}) {
    set_matmul_threads(threads);
    check_against_naive("threads", [](const float* x, int64_t n, const WeightView& w, float* y) { matmul(x, n, w, y); });
  }
  set_matmul_threads(1);
}

TEST(Quant, BlocksRoundTripWithinHalfAStep) {
  auto x = randn(4 * kQBlock, 5);
  x[7] = 0;  // a zero, and a block of zeros
  for (int j = 0; j < kQBlock; ++j) x[size_t(2 * kQBlock + j)] = 0;
  std::vector<BlockQ8_0> q8(4);
  std::vector<BlockQ4_0> q4(4);
  quantize_q8_0(x.data(), int64_t(x.size()), q8.data());
  quantize_q4_0(x.data(), int64_t(x.size()), q4.data());
  std::vector<float> back8(x.size()), back4(x.size());
  dequantize_q8_0(q8.data(), int64_t(x.size()), back8.data());
  dequantize_q4_0(q4.data(), int64_t(x.size()), back4.data());
  for (size_t b = 0; b < 4; ++b) {
    float amax = 0;
    for (int j = 0; j < kQBlock; ++j) amax = std::max(amax, std::fabs(x[b * kQBlock + size_t(j)]));
    for (int j = 0; j < kQBlock; ++j) {
      const size_t i = b * kQBlock + size_t(j);
      EXPECT_NEAR(back8[i], x[i], amax / 127 * 0.5f * 1.01f + 1e-6f) << i;  // half a q8 step (f16 scale rounding)
      EXPECT_NEAR(back4[i], x[i], amax / 8 * 0.5f * 1.01f + 1e-6f) << i;    // half a q4 step
    }
  }
  EXPECT_EQ(back8[7], 0.0f);
  EXPECT_EQ(back8[2 * kQBlock + 3], 0.0f);
  EXPECT_EQ(back4[2 * kQBlock + 3], 0.0f);
}

TEST(ThreadPool, EveryMemberRunsEachJobOnceAndSharesCoverTheRange) {
  ThreadPool pool(3);
  std::vector<std::atomic<int>> hits(3);
  for (int job = 0; job < 1000; ++job) pool.run([&](int t) { hits[size_t(t)].fetch_add(1); });
  for (auto& h : hits) EXPECT_EQ(h.load(), 1000);
  for (int64_t n : {0, 1, 15, 16, 17, 100, 1000}) {
    for (int parts : {1, 2, 3, 7}) {
      int64_t at = 0;
      for (int t = 0; t < parts; ++t) {
        const Share s = share_of(n, parts, t, 16);
        EXPECT_EQ(s.begin, at) << n << "/" << parts;
        if (s.end < n) {
          EXPECT_EQ(s.end % 16, 0);
        }
        at = s.end;
      }
      EXPECT_EQ(at, n);
    }
  }
}

// A member's exception (a worker's or the caller's) reaches the caller after every member is done, and the pool
// keeps working afterwards.
TEST(ThreadPool, ExceptionsReachTheCaller) {
  ThreadPool pool(3);
  for (int thrower : {0, 1, 2}) {
    std::atomic<int> ran{0};
    EXPECT_THROW(pool.run([&](int t) {
      ran.fetch_add(1);
      if (t == thrower) throw std::runtime_error("member " + std::to_string(t));
    }),
                 std::runtime_error);
    EXPECT_EQ(ran.load(), 3);
  }
  std::atomic<int> after{0};
  pool.run([&](int) { after.fetch_add(1); });
  EXPECT_EQ(after.load(), 3);
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

// cos and sin at `pos` for a head_dim / theta / scaling, each (head_dim / 2).
struct Angles {
  std::vector<float> cos, sin;
};
Angles rope_angles(int head_dim, double theta, int pos, RopeScaling scaling = {}) {
  ModelConfig c;
  c.head_dim = head_dim;
  c.rope_theta = theta;
  c.rope_scaling = scaling;
  Angles a{std::vector<float>(size_t(head_dim / 2)), std::vector<float>(size_t(head_dim / 2))};
  Rope(c).angles(pos, a.cos.data(), a.sin.data());
  return a;
}

TEST(Rope, RotateHalfPairsIWithIPlusHalf) {
  const Angles a = rope_angles(4, 10000, 3);
  EXPECT_NEAR(a.cos[0], std::cos(3.0), 1e-6);
  EXPECT_NEAR(a.sin[1], std::sin(3.0 / 100.0), 1e-6);  // inv_freq[1] = 10000^(-2/4)
  float x[4] = {1, 2, 3, 4};
  rope_rotate_half(x, 1, 4, a.cos.data(), a.sin.data());
  EXPECT_NEAR(x[0], 1 * a.cos[0] - 3 * a.sin[0], 1e-6);
  EXPECT_NEAR(x[2], 3 * a.cos[0] + 1 * a.sin[0], 1e-6);
  EXPECT_NEAR(x[1], 2 * a.cos[1] - 4 * a.sin[1], 1e-6);
}

TEST(Rope, Llama3ScalingKeepsHighAndDividesLowFrequencies) {
  RopeScaling llama3;
  llama3.type = RopeScaling::Type::kLlama3;
  llama3.factor = 8;
  llama3.original_max_position = 8192;
  const Angles plain = rope_angles(64, 500000, 1000), scaled = rope_angles(64, 500000, 1000, llama3);
  EXPECT_FLOAT_EQ(plain.cos[0], scaled.cos[0]);  // highest frequency untouched
  const double inv = 1.0 / std::pow(500000.0, 62.0 / 64);  // lowest frequency: angle divided by 8
  EXPECT_NEAR(scaled.sin[31], std::sin(1000 * inv / 8), 1e-6);
}

TEST(Rope, LinearScalingDividesPositions) {
  RopeScaling linear;
  linear.type = RopeScaling::Type::kLinear;
  linear.factor = 4;
  // Position 12 at factor 4 turns like position 3 unscaled.
  const Angles plain = rope_angles(8, 10000, 3), scaled = rope_angles(8, 10000, 12, linear);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_NEAR(scaled.cos[i], plain.cos[i], 1e-6);
    EXPECT_NEAR(scaled.sin[i], plain.sin[i], 1e-6);
  }
}

// Keys and values of T positions in one contiguous run of rows: the table 0, 1, 2, ... over blocks of B positions.
struct Contiguous {
  std::vector<int> table;
  KvRows rows;
  Contiguous(const std::vector<float>& k, const std::vector<float>& v, int64_t T, int64_t row_floats, int64_t B = 4) {
    for (int64_t b = 0; b * B < T; ++b) table.push_back(int(b));
    rows = {k.data(), v.data(), table.data(), B, row_floats};
  }
};

// The same rows scattered over a pool of blocks in shuffled order (padding rows of garbage), read through a table.
struct Paged {
  std::vector<float> k, v;
  std::vector<int> table;
  KvRows rows;
  Paged(const std::vector<float>& kc, const std::vector<float>& vc, int64_t T, int64_t row_floats, int64_t B) {
    const int64_t n = (T + B - 1) / B, pool = 2 * n + 1;
    std::vector<int> order(static_cast<size_t>(pool));
    for (int64_t i = 0; i < pool; ++i) order[size_t(i)] = int(i);
    std::shuffle(order.begin(), order.end(), std::mt19937(3));
    table.assign(order.begin(), order.begin() + n);
    k.assign(size_t(pool * B * row_floats), 1e6f);  // unused rows: huge, so reading one would show
    v = k;
    for (int64_t t = 0; t < T; ++t)
      for (int64_t i = 0; i < row_floats; ++i) {
        const size_t at = size_t((table[size_t(t / B)] * B + t % B) * row_floats + i);
        k[at] = kc[size_t(t * row_floats + i)], v[at] = vc[size_t(t * row_floats + i)];
      }
    rows = {k.data(), v.data(), table.data(), B, row_floats};
  }
};

// Over the softmax range (x - max in [-100, 0], both ends and the subnormal cut-off included, 0 exactly 1), at a
// length that leaves a tail past the vector lanes: within 2e-7 relative of exp in double (1e-37 absolute below
// -87), and the sum in double over what was written.
TEST(Softmax, ExponentialsMatchExpAcrossTheRange) {
  std::vector<float> x;
  for (float v = -100.0f; v <= 0.0f; v += 0.0137f) x.push_back(v);
  for (float v : {0.0f, -1e-30f, -87.0f, -87.5f, -88.7f, -103.9f, -0.6931472f, -0.3465736f}) x.push_back(v);
  ASSERT_NE(x.size() % 16, 0u);
  for (float shift : {0.0f, 3.5f}) {
    std::vector<float> row(x.size());
    for (size_t j = 0; j < x.size(); ++j) row[j] = x[j] + shift;
    const std::vector<float> in = row;
    const double sum = exp_shifted(row.data(), int64_t(row.size()), shift);
    double want_sum = 0, worst = 0;
    for (size_t j = 0; j < x.size(); ++j) {
      const double e = std::exp(double(in[j]) - double(shift));
      want_sum += row[j];
      if (e > 1e-37) worst = std::max(worst, std::fabs(row[j] - e) / e);
      else EXPECT_LT(row[j], 1e-37) << in[j];
    }
    EXPECT_LT(worst, 2e-7) << "shift " << shift;
    EXPECT_NEAR(sum, want_sum, 1e-12 * want_sum);
  }
  float one = 2.0f;
  EXPECT_EQ(exp_shifted(&one, 1, 2.0f), 1.0);
  EXPECT_EQ(one, 1.0f);
}

// SiLU over [-100, 100] (exp's argument past both clamps), a tail past the vector lanes included.
TEST(Softmax, SiluMatchesDoubleAcrossTheRange) {
  std::vector<float> g, u;
  for (float v = -100.0f; v <= 100.0f; v += 0.0371f) g.push_back(v), u.push_back(1.0f + 0.001f * float(u.size() % 7));
  ASSERT_NE(g.size() % 16, 0u);
  const std::vector<float> in = g;
  silu_mul(g.data(), u.data(), int64_t(g.size()));
  for (size_t i = 0; i < g.size(); ++i) {
    const double want = double(in[i]) / (1.0 + std::exp(-double(in[i]))) * u[i];
    ASSERT_NEAR(g[i], want, 1e-6 * std::fabs(want) + 1e-30) << in[i];
  }
}

TEST(Attention, MatchesNaiveSoftmaxWithGqa) {
  const int64_t hd = 4, n_heads = 4, n_kv = 2, T = 5;
  const auto q = randn(size_t(n_heads * hd), 5), k = randn(size_t(T * n_kv * hd), 6), v = randn(size_t(T * n_kv * hd), 7);
  std::vector<float> out(size_t(n_heads * hd));
  std::vector<float> scores(static_cast<size_t>(T));
  const Contiguous kv(k, v, T, n_kv * hd);
  attend(q.data(), kv.rows, 1, T - 1, {n_heads, n_kv, hd, 2}, scores.data(), out.data());
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

TEST(Attention, BlockTablesGiveWhatContiguousRowsGive) {
  // 45 positions in blocks of 16 (the last one partly filled), scattered over a pool in shuffled order: decode
  // attention and a prefill run through the table equal the same over contiguous rows, bit for bit.
  const int64_t hd = 8, n_heads = 4, n_kv = 2, T = 45, B = 16;
  const auto q = randn(size_t(20 * n_heads * hd), 21), k = randn(size_t(T * n_kv * hd), 22),
             v = randn(size_t(T * n_kv * hd), 23);
  const AttentionShape shape{n_heads, n_kv, hd, 2};
  const Contiguous flat(k, v, T, n_kv * hd, T);
  const Paged paged(k, v, T, n_kv * hd, B);
  ASSERT_NE(paged.table, (std::vector<int>{0, 1, 2})) << "the shuffle should move the blocks";
  std::vector<float> a(size_t(n_heads * hd)), b(a.size()), scores(static_cast<size_t>(T));
  for (int64_t first : {int64_t(0), int64_t(17)}) {
    attend(q.data(), flat.rows, first, T - 1, shape, scores.data(), a.data());
    attend(q.data(), paged.rows, first, T - 1, shape, scores.data(), b.data());
    EXPECT_EQ(a, b) << "decode from " << first;
  }
  const int64_t m = 20, pos0 = T - m;  // the run's own keys are the last 20 positions
  RunScratch s1, s2;
  for (int64_t window : {int64_t(0), int64_t(9)}) {
    std::vector<float> run_a(size_t(m * n_heads * hd)), run_b(run_a.size());
    attend_run(q.data(), m, pos0, window, flat.rows, shape, 0, n_heads, s1, run_a.data());
    attend_run(q.data(), m, pos0, window, paged.rows, shape, 0, n_heads, s2, run_b.data());
    EXPECT_EQ(run_a, run_b) << "run, window " << window;
  }
}

TEST(Attention, RunOfTokensMatchesTokenByToken) {
  // A prefill run of 150 tokens (three blocks of query rows) at positions 20..169 over a cache of 170, GQA 3/1 with
  // heads split [1, 3) as a second kernel thread would take them; with and without a sliding window; read through
  // a shuffled block table.
  const int64_t hd = 8, n_heads = 3, n_kv = 1, T = 170, pos0 = 20, m = 150;
  const auto q = randn(size_t(m * n_heads * hd), 11), k = randn(size_t(T * n_kv * hd), 12), v = randn(size_t(T * n_kv * hd), 13);
  const AttentionShape shape{n_heads, n_kv, hd, 3};
  const Paged kv(k, v, T, n_kv * hd, 16);
  for (int64_t window : {int64_t(0), int64_t(37)}) {
    std::vector<float> run(q.size(), -1.0f), one(size_t(n_heads * hd)), scores(static_cast<size_t>(T));
    RunScratch scratch;
    attend_run(q.data(), m, pos0, window, kv.rows, shape, 1, 3, scratch, run.data());
    for (int64_t i = 0; i < m; ++i) {
      const int64_t pos = pos0 + i, first = window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
      attend(&q[size_t(i * n_heads * hd)], kv.rows, first, pos, shape, scores.data(), one.data());
      for (int64_t j = 0; j < n_heads * hd; ++j) {
        const float got = run[size_t(i * n_heads * hd + j)];
        if (j < hd) EXPECT_EQ(got, -1.0f) << "head 0 is another thread's";
        else EXPECT_NEAR(got, one[size_t(j)], 1e-5) << "window " << window << " token " << i << " [" << j << "]";
      }
    }
  }
}

}  // namespace
}  // namespace meshlm
