#include "kernels/attention.h"

#include "kernels/vexp.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace meshlm {
namespace {

// Calls f(t, offset of row t) for the positions [first, last], a block at a time.
template <class F>
void for_rows(const KvRows& kv, int64_t first, int64_t last, F&& f) {
  for (int64_t t = first; t <= last;) {
    const int64_t b = t / kv.block_tokens, end = std::min(last + 1, (b + 1) * kv.block_tokens);
    const int64_t base = kv.block_offset(b) - b * kv.block_tokens * kv.row_floats;  // + t * row_floats: row t
    for (; t < end; ++t) f(t, base + t * kv.row_floats);
  }
}

// q · k over n values in 16 independent lanes (so that the compiler vectorizes it without reordering any sum),
// then the lanes and the tail.
inline __attribute__((always_inline)) float dot(const float* a, const float* b, int64_t n) {
  float lane[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) lane[j] += a[i + j] * b[i + j];
  float sum = 0;
  for (int j = 0; j < 16; ++j) sum += lane[j];
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

}  // namespace

// Decode attention reads every cached key and value once per query head: built for each instruction set.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void attend(const float* q, const KvRows& kv, int64_t first, int64_t last, const AttentionShape& shape,
            float* scores, float* out) {
  const int64_t hd = shape.head_dim;
  const float scale = float(1.0 / std::sqrt(double(hd)));
  for (int64_t h = 0; h < shape.n_heads; ++h) {
    const float* qh = q + h * hd;
    const int64_t kvh = (shape.first_q_head + h) / shape.group - shape.first_kv_head;
    float max_score = -INFINITY;
    for_rows(kv, first, last, [&](int64_t t, int64_t row) {
      scores[t] = dot(qh, kv.k + row + kvh * hd, hd) * scale;
      max_score = std::max(max_score, scores[t]);
    });
    const float inv = float(1.0 / exp_shifted(scores + first, last - first + 1, max_score));
    float* oh = out + h * hd;
    std::fill(oh, oh + hd, 0.0f);
    for_rows(kv, first, last, [&](int64_t t, int64_t row) {
      const float p = scores[t] * inv;
      const float* vt = kv.v + row + kvh * hd;
      for (int64_t i = 0; i < hd; ++i) oh[i] += p * vt[i];
    });
  }
}

void attend_run(const float* q, int64_t m, int64_t pos0, int64_t window, const KvRows& kv, const AttentionShape& shape,
                int64_t h0, int64_t h1, RunScratch& scratch, float* out) {
  constexpr int64_t kRows = 64;  // query rows per block: each block's keys end at its own last position
  const int64_t hd = shape.head_dim, kv_stride = shape.n_kv_heads * hd, q_stride = shape.n_heads * hd;
  const float scale = float(1.0 / std::sqrt(double(hd)));
  const auto first_of = [&](int64_t pos) { return window > 0 ? std::max<int64_t>(0, pos - window + 1) : int64_t(0); };
  // Keys [g0, g1] in contiguous rows (g1 - g0 + 1, kv_stride).
  const int64_t g0 = first_of(pos0), g1 = pos0 + m - 1;
  scratch.k.resize(size_t((g1 - g0 + 1) * kv_stride));
  scratch.v.resize(scratch.k.size());
  for_rows(kv, g0, g1, [&](int64_t t, int64_t row) {
    std::memcpy(&scratch.k[size_t((t - g0) * kv_stride)], kv.k + row, size_t(kv_stride) * sizeof(float));
    std::memcpy(&scratch.v[size_t((t - g0) * kv_stride)], kv.v + row, size_t(kv_stride) * sizeof(float));
  });
  for (int64_t b0 = 0; b0 < m; b0 += kRows) {
    const int64_t rows = std::min(kRows, m - b0), p_first = pos0 + b0, p_last = p_first + rows - 1;
    const int64_t k0 = first_of(p_first), keys = p_last - k0 + 1;
    if (scratch.scores.size() < size_t(rows * keys)) scratch.scores.resize(size_t(rows * keys));
    float* s = scratch.scores.data();  // (rows, keys): key k0 + j in column j
    for (int64_t h = h0; h < h1; ++h) {
      const int64_t kvh = (shape.first_q_head + h) / shape.group - shape.first_kv_head;
      const float* qh = q + b0 * q_stride + h * hd;
      const float* kh = scratch.k.data() + (k0 - g0) * kv_stride + kvh * hd;
      const float* vh = scratch.v.data() + (k0 - g0) * kv_stride + kvh * hd;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(keys), int(hd), scale, qh, int(q_stride), kh,
                  int(kv_stride), 0.0f, s, int(keys));
      for (int64_t i = 0; i < rows; ++i)  // causal (and window) mask, softmax over the keys row i may see
        softmax_masked(s + i * keys, keys, first_of(p_first + i) - k0, p_first + i - k0);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(hd), int(keys), 1.0f, s, int(keys), vh,
                  int(kv_stride), 0.0f, out + b0 * q_stride + h * hd, int(q_stride));
    }
  }
}

}  // namespace meshlm
