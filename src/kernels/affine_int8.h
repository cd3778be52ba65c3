// --compute fast for MLX affine 4- and 8-bit weights (whole groups of 32, 64 or 128): 16-row panels that the q8_0 /
// q4_0 int8 kernels (qgemm_x86.cpp, qgemm_neon_impl.h) multiply by x in int8 blocks of 32 (AVX-512 VNNI, AVX2
// maddubs, or NEON sdot). A panel holds, per group of the rows (the same bytes as the stored rows, scales and
// biases, reordered):
//   [16 scales][16 biases], one per row, in the stored param dtype                   32 · 2 (or 4) bytes
//   group / 32 blocks of 32 columns:
//     8 bits: [8 groups g][16 rows r][4 bytes t] = q(r, 4g + t), unsigned as stored    512 bytes
//     4 bits: [4 words c][16 rows r][4 bytes] = the row's packed word c of the block, as stored   256 bytes
// A stored 4-bit word holds columns 8c..8c+7, the even ones in its low nibbles, so x comes rearranged per 32 columns
// into its 16 even columns, then its 16 odd ones (pair_x), and the kernel is q4_0's. With x ≈ d u per block, a group
// adds scale Σ_blocks d Σ u q + bias Σ_blocks d Σu: the dequantized weights times the rounded x.
// Fast mode repacks at load (load_weights' affine_panels: every byte then read once, from one stream); views of the
// stored rows meet the same kernel through panels repacked per call, a tile at a time.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/matmul.h"
#include "kernels/qpanel.h"

namespace meshlm {

// Rows of x from which fast mode repacks a view of stored rows per call (fewer: the fp32 kernels, as repacking would
// cost more than it saves; weights loaded in fast mode are panels already).
constexpr int64_t kAffineInt8MinN = 16;

// x is quantized with this offset, so that QuantizedX::corr = Σu (the biases' multiplier).
constexpr int kAffineXOffset = -1;

// Whether the int8 kernels take w here (4 or 8 bits, phase 0, group 32, 64 or 128; AVX-512 VNNI, AVX2 or NEON sdot).
bool affine_int8_ok(const WeightView& w);
// The fp32 rows to quantize (quantize_x_rows with kAffineXOffset) for w: x itself for 8 bits, x paired (pair_x,
// into xbuf) for 4 bits.
const float* affine_int8_prepared(const float* x, int64_t n, const WeightView& w, std::vector<float>& xbuf);
// Panels for rows [r0, r1) of the stored view w (the rows after r1 in the last panel zero) into out
// (affine_panel_bytes(w.affine) per panel).
void affine_to_panels(const WeightView& w, int64_t r0, int64_t r1, uint8_t* out);
// The view of w's rows repacked (all of them) into `panels`.
WeightView affine_panel_view(const WeightView& w, const uint8_t* panels);
// Rows [r0, r1) of a panel view as fp32: out (r1 - r0, w.cols), the same values as the stored rows give.
void affine_panel_dequant_rows(const WeightView& w, int64_t r0, int64_t r1, float* out);
// y[i * w.rows + r] for i in [0, x.n), r in [r0, r1): from the panels of a panel view, or repacking a tile of the
// stored rows at a time (per-thread scratch).
void affine_int8_rows(const QuantizedX& x, const WeightView& w, int64_t r0, int64_t r1, float* y);

}  // namespace meshlm
