// --compute exact for MLX affine 4- and 8-bit weights held as panels (kernels/affine_int8.h): x in blocks of 32 as
// three int8 digits, x ≈ u (h 2^16 + m 2^8 + l), with u a power of two per group of w that puts the group's largest
// |x| / u between about 2^22 and 2^23: 23 significant bits where fp32 has 24, so each x moves by at most u / 2, about
// 2^-23 of the group's largest. The int8 panel kernels take the three digits as three rows of x (scales u 2^16, u 2^8
// and u: their sums are exact integers) and y adds the three rows' results; on x86 a tile of its own sums each digit
// over a whole group and combines them once per group (qgemm_x86.cpp tile_digits). Against the fp32 kernel that dequantizes
// each weight (scale q + bias, rounded) this rounds x instead, by as little, and the integer sums round nothing; it
// reads the panels as fast mode does, from one stream (meshlm bench tg b1, MLX 4-bit: see bench/RESULTS.md).
// On AVX-512 VNNI and NEON sdot, which sum in int32; AVX2's maddubs would saturate on digits of -128.
#pragma once
#include <cstdint>

#include "kernels/matmul.h"
#include "kernels/qpanel.h"

namespace meshlm {

// Each x row is this many rows of digits (h, m, l).
constexpr int64_t kXDigits = 3;

// Whether exact mode multiplies w's panels by digits here (affine_int8_ok, on AVX-512 VNNI or NEON sdot).
bool affine_exact_ok(const WeightView& w);

// Whether matmul in `mode` takes w (stored rows) as panels: fast mode where the int8 kernels do (affine_int8_ok),
// exact mode where the digits do (affine_exact_ok). Loading repacks those (load_weights' panels_for).
bool affine_panels_pay(const WeightView& w, Compute mode);

// Rows [i0, i1) of x (n, cols; cols a multiple of group, group of 32) into rows [3 i0, 3 i1) of out, shaped by
// quantize_x_shape(3 n, cols): digit j of row i in row 3 i + j, its block scale u 2^(16 - 8 j) with u one power of
// two per `group` columns (w's groups: the x86 kernel sums a whole group before scaling), corr its block sum (the
// int8 kernels' offset kAffineXOffset).
void quantize_x_digits(const float* x, int64_t cols, int64_t group, int64_t i0, int64_t i1, QuantizedX& out);

// y[i * ld + r] = Σ_j digits[(3 i + j) * ld + r] for i in [0, n), r in [r0, r1).
void add_digit_rows(const float* digits, int64_t n, int64_t ld, int64_t r0, int64_t r1, float* y);

// y[i * w.rows + r] for the x rows i of `digits` (quantize_x_digits with w's group), r in [r0, r1), from w's panels
// (affine_exact_ok), through ydigits (3 n, w.rows): the digit rows' results, which add_digit_rows adds.
void affine_digit_rows(const QuantizedX& digits, const WeightView& w, int64_t r0, int64_t r1, float* ydigits,
                       float* y);

}  // namespace meshlm
