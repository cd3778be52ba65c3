#include "kernels/qpanel.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/quant.h"
#include "kernels/matmul.h"

namespace meshlm {

size_t panel_block_bytes(DType dtype) { return 32 + (dtype == DType::kQ8_0 ? 512 : 256); }
size_t panel_bytes(DType dtype, int64_t cols) { return size_t(cols / kQBlock) * panel_block_bytes(dtype); }
size_t packed_bytes(DType dtype, int64_t rows, int64_t cols) {
  return size_t((rows + kPanelRows - 1) / kPanelRows) * panel_bytes(dtype, cols);
}

void quantize_panel(DType dtype, const float* x, int64_t rows, int64_t cols, uint8_t* out) {
  const int64_t blocks = cols / kQBlock;
  const size_t bb = panel_block_bytes(dtype);
  std::memset(out, 0, panel_bytes(dtype, cols));
  std::vector<BlockQ8_0> q8(size_t(dtype == DType::kQ8_0 ? blocks : 0));
  std::vector<BlockQ4_0> q4(size_t(dtype == DType::kQ4_0 ? blocks : 0));
  for (int64_t l = 0; l < std::min(rows, kPanelRows); ++l) {
    if (dtype == DType::kQ8_0) quantize_q8_0(x + l * cols, cols, q8.data());
    else quantize_q4_0(x + l * cols, cols, q4.data());
    for (int64_t b = 0; b < blocks; ++b) {
      uint8_t* block = out + size_t(b) * bb;
      uint8_t* quants = block + 32;
      const uint16_t d = dtype == DType::kQ8_0 ? q8[size_t(b)].d : q4[size_t(b)].d;
      std::memcpy(block + l * 2, &d, 2);
      for (int64_t k = 0; k < kQBlock; ++k) {
        if (dtype == DType::kQ8_0) {
          quants[quant_byte(dtype, l, k)] = uint8_t(int(q8[size_t(b)].q[k]) + 128);
        } else if (k < 16) {  // the block's byte k holds columns k (low nibble) and k + 16 (high)
          quants[quant_byte(dtype, l, k)] = q4[size_t(b)].q[k];
        }
      }
    }
  }
}

void dequantize_panel_rows(const WeightView& w, int64_t r0, int64_t r1, float* out) {
  const int64_t blocks = w.cols / kQBlock;
  const size_t bb = panel_block_bytes(w.dtype), pb = panel_bytes(w.dtype, w.cols);
  const float offset = float(weight_offset(w.dtype));
  const bool q8 = w.dtype == DType::kQ8_0;
  // Panel by panel: lanes [l0, l1) of each are rows of [r0, r1); out row (lane - l0) of this panel's part.
  for (int64_t lane = w.row0 + r0; lane < w.row0 + r1;) {
    const int64_t l0 = lane % kPanelRows, l1 = std::min<int64_t>(kPanelRows, l0 + (w.row0 + r1 - lane));
    const uint8_t* panel = static_cast<const uint8_t*>(w.data) + size_t(lane / kPanelRows) * pb;
    for (int64_t b = 0; b < blocks; ++b) {
      const uint8_t* block = panel + size_t(b) * bb;
      const uint8_t* quants = block + 32;
      for (int64_t l = l0; l < l1; ++l) {
        const float d = panel_scale(block, l);
        float* o = out + (l - l0) * w.cols + b * kQBlock;
        for (int64_t c = 0; c < (q8 ? 8 : 4); ++c) {
          const uint8_t* src = quants + c * 64 + l * 4;
          for (int t = 0; t < 4; ++t) {
            if (q8) {
              o[c * 4 + t] = d * (float(src[t]) - offset);
            } else {
              o[c * 4 + t] = d * (float(src[t] & 0x0f) - offset);
              o[16 + c * 4 + t] = d * (float(src[t] >> 4) - offset);
            }
          }
        }
      }
    }
    out += (l1 - l0) * w.cols;
    lane += l1 - l0;
  }
}

void quantize_x_shape(int64_t n, int64_t cols, QuantizedX& out) {
  out.n = n;
  out.blocks = cols / kQBlock;
  out.q.resize(size_t(n * cols));
  out.d.resize(size_t(n * out.blocks));
  out.corr.resize(size_t(n * out.blocks));
}

void quantize_x_blocks_avx512(const float* x, int64_t b0, int64_t b1, int offset, QuantizedX& out);

void quantize_x_rows(const float* x, int64_t cols, int offset, int64_t i0, int64_t i1, QuantizedX& out, bool simd) {
  const int64_t b0 = i0 * out.blocks, b1 = i1 * out.blocks;  // rows are whole blocks
#if defined(__x86_64__)
  static const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  if (simd && avx512) return quantize_x_blocks_avx512(x, b0, b1, offset, out);
#endif
  for (int64_t b = b0; b < b1; ++b) {
    const float* xb = x + b * kQBlock;
    int8_t* q = out.q.data() + b * kQBlock;
    float amax = 0;
    for (int j = 0; j < kQBlock; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
    int32_t sum = 0;
    for (int j = 0; j < kQBlock; ++j) sum += q[j] = int8_t(std::nearbyint(xb[j] * id));
    out.d[size_t(b)] = d;
    out.corr[size_t(b)] = -offset * sum;
  }
}

void quantize_x(const float* x, int64_t n, int64_t cols, int offset, QuantizedX& out) {
  quantize_x_shape(n, cols, out);
  quantize_x_rows(x, cols, offset, 0, n, out);
}

}  // namespace meshlm
