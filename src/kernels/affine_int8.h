// --compute fast for MLX affine 4-bit weights (whole groups of 32, 64 or 128): the activations in int8 blocks of 32,
// multiplied by the packed unsigned values as stored (AVX-512 VNNI vpdpbusd on 64 packed bytes, 128 values, at a
// time), each lane's integer sum scaled by its group's scale and its block's scale; the biases' share is bias·Σx per
// group with x's fp32 sums. Used for prefill-sized batches; decode keeps the fp32 kernels (affine.h), which are bound
// by memory already. (8 bits: this row-at-a-time form measured 1.0-1.15x the exact path, so it is not used; both
// want the weights repacked in panels as q8_0/q4_0 are.)
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/matmul.h"

namespace meshlm {

// x prepared for one affine matrix: per row, per chunk of 128 values, the chunk's int8 values as the packed bytes'
// 32-bit lanes meet them, and each lane's block scale.
struct AffineQX {
  int64_t n = 0, chunks = 0, groups = 0;
  std::vector<int8_t> q;     // (n, chunks, 128): each lane's 8 values, the even ones (64 bytes), then the odd ones
  std::vector<float> lane_d; // (n, chunks, 16)
  std::vector<float> xsum;   // (n, groups) fp32 sums of x per group
};

// Whether the int8 kernel takes w here (4 bits, phase 0, group 32/64/128, whole chunks, AVX-512 VNNI).
bool affine_int8_ok(const WeightView& w);
void affine_int8_x(const float* x, int64_t n, const WeightView& w, AffineQX& out);
// y[i * w.rows + r] for i in [0, x.n), r in [r0, r1).
void affine_int8_rows(const AffineQX& x, const WeightView& w, int64_t r0, int64_t r1, float* y);

}  // namespace meshlm
