#include "core/quant.h"

#include <algorithm>
#include <cmath>

#include "core/dtype.h"

namespace meshlm {

void quantize_q8_0(const float* x, int64_t n, BlockQ8_0* out) {
  for (int64_t b = 0; b < n / kQBlock; ++b, x += kQBlock) {
    float amax = 0;
    for (int j = 0; j < kQBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
    out[b].d = f32_to_f16(d);
    for (int j = 0; j < kQBlock; ++j) out[b].q[j] = int8_t(std::nearbyint(x[j] * id));  // ties to even
  }
}

void quantize_q4_0(const float* x, int64_t n, BlockQ4_0* out) {
  for (int64_t b = 0; b < n / kQBlock; ++b, x += kQBlock) {
    float extreme = 0;  // the value of largest magnitude, with its sign: it maps to -8
    for (int j = 0; j < kQBlock; ++j)
      if (std::fabs(x[j]) > std::fabs(extreme)) extreme = x[j];
    const float d = extreme / -8.0f, id = d != 0 ? 1.0f / d : 0.0f;
    out[b].d = f32_to_f16(d);
    for (int j = 0; j < kQBlock / 2; ++j) {
      const int lo = std::min(15, int(x[j] * id + 8.5f)), hi = std::min(15, int(x[j + 16] * id + 8.5f));
      out[b].q[j] = uint8_t(std::max(0, lo) | (std::max(0, hi) << 4));
    }
  }
}

void dequantize_q8_0(const BlockQ8_0* in, int64_t n, float* out) {
  for (int64_t b = 0; b < n / kQBlock; ++b, out += kQBlock) {
    const float d = f16_to_f32(in[b].d);
    for (int j = 0; j < kQBlock; ++j) out[j] = d * float(in[b].q[j]);
  }
}

void dequantize_q4_0(const BlockQ4_0* in, int64_t n, float* out) {
  for (int64_t b = 0; b < n / kQBlock; ++b, out += kQBlock) {
    const float d = f16_to_f32(in[b].d);
    for (int j = 0; j < kQBlock / 2; ++j) {
      out[j] = d * float(int(in[b].q[j] & 0x0f) - 8);
      out[j + 16] = d * float(int(in[b].q[j] >> 4) - 8);
    }
  }
}

}  // namespace meshlm
