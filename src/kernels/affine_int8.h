// --compute fast for MLX affine 4- and 8-bit weights (whole groups of 32, 64 or 128) in prefill-sized batches: each
// member repacks its rows, a tile at a time, into 16-row panels that the q8_0 / q4_0 int8 kernel (qgemm_x86.cpp)
// reads with one extra FMA per block, and multiplies them by x in int8 blocks of 32 (AVX-512 VNNI). A panel block
// (32 columns) holds
//   [16 fp32 scales][16 fp32 biases], one per row (its group's)                               128 bytes
//   8 bits: [8 groups g][16 rows r][4 bytes t] = q(r, 4g + t), unsigned as stored            512 bytes
//   4 bits: [4 words c][16 rows r][4 bytes] = the row's packed word c of the block, as stored 256 bytes
// A stored 4-bit word holds columns 8c..8c+7, the even ones in its low nibbles, so x comes rearranged per 32 columns
// into its 16 even columns, then its 16 odd ones (pair_x), and the kernel is q4_0's. With x ≈ d q per block,
// a block adds d (scale Σ u q + bias Σ q): the dequantized weights times the rounded x. Decode batches under
// kAffineInt8MinN, which cannot amortize repacking per call, read the stored rows instead (affine_dot_rows: the
// same formula, summed in another order).
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/matmul.h"
#include "kernels/qpanel.h"

namespace meshlm {

// Rows of x from which fast mode takes the panels (1 thread, 2048 columns, 16-32 MiB of weights: per row of x the
// panels at 16 rows and affine_dot_rows at 15 cost the same for 4 bits, and the panels 8% more for 8 bits).
constexpr int64_t kAffineInt8MinN = 16;

// x is quantized with this offset, so that QuantizedX::corr = Σq (the biases' multiplier).
constexpr int kAffineXOffset = -1;

// Whether the int8 kernel takes w here (4 or 8 bits, phase 0, group a multiple of 32, AVX-512 VNNI).
bool affine_int8_ok(const WeightView& w);
// The fp32 rows to quantize (quantize_x_rows with kAffineXOffset) for w: x itself for 8 bits, x paired (pair_x,
// into xbuf) for 4 bits.
const float* affine_int8_prepared(const float* x, int64_t n, const WeightView& w, std::vector<float>& xbuf);
// Panels for rows [r0, r1) of w (the rows after r1 in the last panel zero) into out.
void affine_to_panels(const WeightView& w, int64_t r0, int64_t r1, uint8_t* out);
size_t affine_panel_bytes(const WeightView& w);  // one panel
// y[i * w.rows + r] for i in [0, x.n), r in [r0, r1), repacking a tile of rows at a time (per-thread scratch).
void affine_int8_rows(const QuantizedX& x, const WeightView& w, int64_t r0, int64_t r1, float* y);

// Fast-mode decode batches (under kAffineInt8MinN rows): the stored rows against x in int8 blocks, with no repacking
// (affine_dot_x86.cpp). x is laid out per 64-byte chunk of a weight row: 64 columns (8 bits), or 128 (4 bits: the
// chunk's even columns, then its odd ones).
// Columns per 64-byte chunk of a row: the kernel's unit, and the x layout's.
constexpr int64_t affine_chunk_cols(int bits) { return bits == 4 ? 128 : 64; }
struct AffineDotX {
  int64_t n = 0, chunks = 0, groups = 0;  // chunks per weight row, groups per row
  QuantizedX rounded;                     // x in blocks of 32 (offset kAffineXOffset: corr = Σu)
  std::vector<int8_t> q;                  // (n, chunks, chunk columns) u in the chunk's order, zero past cols
  std::vector<float> lane_d;              // (n, chunks, 16) the block scale d of each 4-byte lane's columns
  std::vector<float> xsum;                // (n, groups) Σ d u over each group: the biases' multiplier
};
// Whether affine_dot_rows takes w: affine_int8_ok, and groups of a power of two (as MLX writes: 32, 64, 128).
bool affine_dot_ok(const WeightView& w);
void affine_dot_prepare(const float* x, int64_t n, const WeightView& w, AffineDotX& out);
// y[i * w.rows + r] for i in [0, x.n), r in [r0, r1).
void affine_dot_rows(const AffineDotX& x, const WeightView& w, int64_t r0, int64_t r1, float* y);

}  // namespace meshlm
