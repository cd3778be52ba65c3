#include "kernels/ops.h"

#include <cmath>

namespace meshlm {

void rmsnorm(const float* x, const float* w, float* out, int64_t n, int64_t dim, float eps) {
  for (int64_t i = 0; i < n; ++i) {
    const float* xi = x + i * dim;
    float* oi = out + i * dim;
    double ss = 0;
    for (int64_t k = 0; k < dim; ++k) ss += double(xi[k]) * xi[k];
    const float scale = float(1.0 / std::sqrt(ss / double(dim) + double(eps)));
    for (int64_t k = 0; k < dim; ++k) oi[k] = xi[k] * scale * w[k];
  }
}

void add_bias(float* x, const float* b, int64_t n, int64_t dim) {
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < dim; ++k) x[i * dim + k] += b[k];
}

void add_inplace(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void rope_rotate_half(float* x, int64_t n_heads, int64_t head_dim, const float* cos, const float* sin) {
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* xh = x + h * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      const float a = xh[i], b = xh[i + half];
      xh[i] = a * cos[i] - b * sin[i];
      xh[i + half] = b * cos[i] + a * sin[i];
    }
  }
}

}  // namespace meshlm

namespace meshlm {

void rope_interleaved(float* x, int64_t n, int64_t stride, int64_t half, const float* cos, const float* sin) {
  for (int64_t h = 0; h < n; ++h) {
    float* xh = x + h * stride;
    for (int64_t i = 0; i < half; ++i) {
      const float a = xh[2 * i], b = xh[2 * i + 1];
      xh[2 * i] = a * cos[i] - b * sin[i];
      xh[2 * i + 1] = b * cos[i] + a * sin[i];
    }
  }
}

}  // namespace meshlm
