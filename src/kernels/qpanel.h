// Repacked q8_0 / q4_0 weights: 16 rows interleaved per panel, so one 64-byte load holds 4 columns of 16 rows and an
// int8 dot-product instruction (vpdpbusd) against 4 broadcast activation bytes yields 16 row sums at once, with no
// horizontal sums (as llama.cpp's q4_0_8x8 repack does for 8 rows). Every byte is read once, at any batch size.
//
// A matrix of R rows holds ceil(R / 16) panels, one after another; a panel holds its cols / 32 blocks in order:
//   [16 f16 scales, one per row]                                                    32 bytes
//   q8_0: [8 groups g][16 rows r][4 bytes t] = q(r, 4g + t) + 128 as unsigned       512 bytes
//   q4_0: [4 chunks c][16 rows r][4 bytes t] = nib(r, 4c + t) | nib(r, 16 + 4c + t) << 4   256 bytes
// so w(r, k) = d(r) * (u(r, k) - offset) with offset 128 (q8_0) or 8 (q4_0), u unsigned. Rows past the end of
// the matrix are zeros (scale 0).
#pragma once
#include <cstdint>
#include <vector>

#include "core/dtype.h"
#include "core/quant.h"

namespace meshlm {

struct WeightView;

constexpr int64_t kPanelRows = 16;

size_t panel_block_bytes(DType dtype);                  // 544 (q8_0) or 288 (q4_0)
size_t panel_bytes(DType dtype, int64_t cols);          // one panel: cols / 32 blocks
size_t packed_bytes(DType dtype, int64_t rows, int64_t cols);
inline int weight_offset(DType dtype) { return dtype == DType::kQ8_0 ? 128 : 8; }

// Within a panel block: the byte of row lane l, column k (0..31) among the quants (q4_0: k and k + 16 share it),
// the unsigned weight u there, and the lane's scale.
inline size_t quant_byte(DType dtype, int64_t l, int64_t k) {
  const int64_t j = dtype == DType::kQ8_0 ? k : k % 16;
  return size_t((j / 4) * 64 + l * 4 + j % 4);
}
inline int panel_quant(DType dtype, const uint8_t* block, int64_t l, int64_t k) {
  const int byte = block[32 + quant_byte(dtype, l, k)];
  return dtype == DType::kQ8_0 ? byte : k < 16 ? (byte & 0x0f) : (byte >> 4);
}
inline float panel_scale(const uint8_t* block, int64_t l) {
  return f16_to_f32(uint16_t(block[l * 2] | block[l * 2 + 1] << 8));
}

// Quantizes `rows` (<= 16) fp32 rows of x (rows, cols) into the panel at `out` (panel_bytes), as quantize_q8_0 /
// quantize_q4_0 would (same scales and values), and zero-fills the rows after them.
void quantize_panel(DType dtype, const float* x, int64_t rows, int64_t cols, uint8_t* out);

// Rows [r0, r1) of a packed view as fp32 (out: (r1 - r0, cols)).
void dequantize_panel_rows(const WeightView& w, int64_t r0, int64_t r1, float* out);

// Activations for the int8 kernels: each row of x in blocks of 32 int8 with an fp32 scale (x ≈ d q, q in
// [-127, 127]), and per block -offset * Σq, which turns the unsigned-weight dot product into the signed one.
struct QuantizedX {
  int64_t n = 0, blocks = 0;
  std::vector<int8_t> q;     // (n, blocks * 32)
  std::vector<float> d;      // (n, blocks)
  std::vector<int32_t> corr; // (n, blocks): -offset * Σ_j q[j]
};
void quantize_x(const float* x, int64_t n, int64_t cols, int offset, QuantizedX& out);
// The same in two steps, so that threads can share the rows: size `out` for (n, cols), then fill rows [i0, i1)
// (with AVX-512 where the CPU has it: the same values as the portable code, bit for bit).
void quantize_x_shape(int64_t n, int64_t cols, QuantizedX& out);
void quantize_x_rows(const float* x, int64_t cols, int offset, int64_t i0, int64_t i1, QuantizedX& out,
                     bool simd = true);

}  // namespace meshlm
