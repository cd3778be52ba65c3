#include "kernels/attention.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>

namespace meshlm {

void attend(const float* q, const float* k_cache, const float* v_cache, int64_t first, int64_t last,
            const AttentionShape& shape, float* scores, float* out) {
  const int64_t hd = shape.head_dim, kv_stride = shape.n_kv_heads * hd;
  const float scale = float(1.0 / std::sqrt(double(hd)));
  for (int64_t h = 0; h < shape.n_heads; ++h) {
    const float* qh = q + h * hd;
    const int64_t kvh = (shape.first_q_head + h) / shape.group - shape.first_kv_head;
    float max_score = -INFINITY;
    for (int64_t t = first; t <= last; ++t) {
      const float* kt = k_cache + t * kv_stride + kvh * hd;
      float dot = 0;
      for (int64_t i = 0; i < hd; ++i) dot += qh[i] * kt[i];
      scores[t] = dot * scale;
      max_score = std::max(max_score, scores[t]);
    }
    double sum = 0;
    for (int64_t t = first; t <= last; ++t) {
      scores[t] = std::exp(scores[t] - max_score);
      sum += scores[t];
    }
    const float inv = float(1.0 / sum);
    float* oh = out + h * hd;
    std::fill(oh, oh + hd, 0.0f);
    for (int64_t t = first; t <= last; ++t) {
      const float p = scores[t] * inv;
      const float* vt = v_cache + t * kv_stride + kvh * hd;
      for (int64_t i = 0; i < hd; ++i) oh[i] += p * vt[i];
    }
  }
}

void attend_run(const float* q, int64_t m, int64_t pos0, int64_t window, const float* k_cache, const float* v_cache,
                const AttentionShape& shape, int64_t h0, int64_t h1, std::vector<float>& scores, float* out) {
  constexpr int64_t kRows = 64;  // query rows per block: each block's keys end at its own last position
  const int64_t hd = shape.head_dim, kv_stride = shape.n_kv_heads * hd, q_stride = shape.n_heads * hd;
  const float scale = float(1.0 / std::sqrt(double(hd)));
  const auto first_of = [&](int64_t pos) { return window > 0 ? std::max<int64_t>(0, pos - window + 1) : int64_t(0); };
  for (int64_t b0 = 0; b0 < m; b0 += kRows) {
    const int64_t rows = std::min(kRows, m - b0), p_first = pos0 + b0, p_last = p_first + rows - 1;
    const int64_t k0 = first_of(p_first), keys = p_last - k0 + 1;
    if (scores.size() < size_t(rows * keys)) scores.resize(size_t(rows * keys));
    float* s = scores.data();  // (rows, keys): key k0 + j in column j
    for (int64_t h = h0; h < h1; ++h) {
      const int64_t kvh = (shape.first_q_head + h) / shape.group - shape.first_kv_head;
      const float* qh = q + b0 * q_stride + h * hd;
      const float* kh = k_cache + k0 * kv_stride + kvh * hd;
      const float* vh = v_cache + k0 * kv_stride + kvh * hd;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(keys), int(hd), scale, qh, int(q_stride), kh,
                  int(kv_stride), 0.0f, s, int(keys));
      for (int64_t i = 0; i < rows; ++i) {  // causal (and window) mask, softmax over the keys row i may see
        float* row = s + i * keys;
        const int64_t lo = first_of(p_first + i) - k0, hi = p_first + i - k0;  // columns [lo, hi]
        float max_score = -INFINITY;
        for (int64_t j = lo; j <= hi; ++j) max_score = std::max(max_score, row[j]);
        double sum = 0;
        for (int64_t j = lo; j <= hi; ++j) {
          row[j] = std::exp(row[j] - max_score);
          sum += row[j];
        }
        const float inv = float(1.0 / sum);
        for (int64_t j = lo; j <= hi; ++j) row[j] *= inv;
        std::fill(row, row + lo, 0.0f);
        std::fill(row + hi + 1, row + keys, 0.0f);
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(hd), int(keys), 1.0f, s, int(keys), vh,
                  int(kv_stride), 0.0f, out + b0 * q_stride + h * hd, int(q_stride));
    }
  }
}

}  // namespace meshlm
