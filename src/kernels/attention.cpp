#include "kernels/attention.h"

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

}  // namespace meshlm
