// MLX affine-quantized weights, as mlx_lm.convert -q writes them, kept packed: each row is one little-endian bit
// stream of `bits`-bit values (value i in bits [i·bits, (i+1)·bits), bit 0 = the low bit of byte 0, so 3/5/6-bit
// values cross byte and word boundaries), and each run of `group` consecutive inputs shares a scale and a bias:
// w = scale·q + bias. A tensor-parallel column slice may begin inside a group: `phase` inputs of its first group lie
// before its column 0, and the group's scale and bias are used by both ranks. Scales and biases are held in the
// file's dtype (F32, F16 or BF16; mlx writes the model's), so a 4-bit model takes the memory it takes on disk.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/dtype.h"

namespace meshlm {

struct WeightView;

struct AffineView {
  int bits = 0, group = 0;      // bits == 0: not affine
  int64_t phase = 0;            // inputs of the first group before this slice's column 0
  int64_t groups = 0;           // groups per row: ceil((phase + cols) / group)
  const void* scales = nullptr;  // (rows, groups) in param_dtype
  const void* biases = nullptr;  // (rows, groups) in param_dtype
  size_t row_bytes = 0;         // packed bytes per row: 4 * ceil(cols * bits / 32)
  DType param_dtype = DType::kF32;  // of scales and biases: kF32, kF16 or kBF16
  // Repacked for the int8 kernels (kernels/affine_int8.h): the view's data holds 16-row panels with the scales and
  // biases inside (scales, biases: null), row 0 at lane row0 of the first panel. Only phase 0.
  bool panels = false;
};

// Bytes of one 16-row panel (a.panels): per group, 16 scales and 16 biases in param_dtype, then 16 rows of values.
inline size_t affine_panel_bytes(const AffineView& a) {
  return size_t(a.groups) * (32 * dtype_size(a.param_dtype) + size_t(a.group) * 2 * size_t(a.bits));
}

// Scale or bias i (= row · groups + group) of p (a.scales or a.biases) as fp32.
inline float affine_param(const AffineView& a, const void* p, int64_t i) {
  if (a.param_dtype == DType::kF32) return static_cast<const float*>(p)[i];
  const uint16_t h = static_cast<const uint16_t*>(p)[i];
  return a.param_dtype == DType::kBF16 ? bf16_to_f32(h) : f16_to_f32(h);
}

// Packed bytes of a row of `cols` values (whole 32-bit words, as MLX stores them).
inline size_t affine_row_bytes(int64_t cols, int bits) { return size_t((cols * bits + 31) / 32) * 4; }

// Value i of a packed row. The row's buffer must have one readable byte past its end (Matrix pads it).
inline uint32_t affine_value(const uint8_t* row, int64_t i, int bits) {
  const uint64_t bit = uint64_t(i) * uint64_t(bits);
  const uint32_t two = uint32_t(row[bit >> 3]) | (uint32_t(row[(bit >> 3) + 1]) << 8);
  return (two >> (bit & 7)) & ((1u << bits) - 1);
}

// Writes values [first, first + n) of a stream (at bit offset `bit0`) as a new stream from bit 0 of dst (zeroed).
void affine_repack(const uint8_t* src, uint64_t bit0, int64_t n, int bits, uint8_t* dst);

// Rows [r0, r1) of w as fp32: out (r1 - r0, w.cols).
void affine_dequant_rows(const WeightView& w, int64_t r0, int64_t r1, float* out);

// xsum (n, groups): each x row's sum over each group's columns of the slice.
void affine_xsums(const float* x, int64_t n, const WeightView& w, std::vector<float>& xsum);

// Whether affine_rows wants x rearranged by pair_x: 4-bit weights in whole groups, on an x86 SIMD kernel.
bool affine_pairs_x(const WeightView& w);

// y[:, r0:r1] of y (n, w.rows) = x (n, w.cols) · wᵀ, unpacking each group once for all n rows and summing
// scale·Σq·x + bias·Σx in fp32 (xsum from affine_xsums; x from pair_x when affine_pairs_x(w)).
void affine_rows(const float* x, int64_t n, const WeightView& w, const float* xsum, int64_t r0, int64_t r1, float* y);

}  // namespace meshlm
