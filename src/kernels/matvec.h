// Skinny matmul: y = x · Wᵀ for a few rows of x (decode), with the weights converted to fp32 in registers as they
// stream past, so no fp32 copy of them is written anywhere. One implementation per instruction set, chosen at run
// time from what the CPU has (AVX-512 with or without AVX512_BF16, AVX2 with FMA and F16C, NEON), and a portable one
// for the rest.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/matmul.h"

namespace meshlm {

// kAvx512Bf16: bf16 weights by vdpbf16ps (matvec_bf16dot.cpp), the rest as kAvx512.
enum class Isa { kPortable, kAvx2, kAvx512, kNeon, kAvx512Bf16 };

Isa best_isa();               // the widest this CPU supports (checked once)
const char* isa_name(Isa isa);  // "portable", "avx2", "avx512", "neon", "avx512bf16"
bool isa_supported(Isa isa);

// y[i * w.rows + r] = x[i] · w[r] for i in [0, n), r in [r0, r1). Sums in fp32 with fused multiply-adds.
// isa must be supported. bf16 weights read x rearranged by pair_x: `paired` if the caller made it once for the
// whole product (null: made here, per call).
void matvec_rows(Isa isa, const float* x, int64_t n, const WeightView& w, int64_t r0, int64_t r1, float* y,
                 const float* paired = nullptr);

// xp (n, cols): x per 32 columns as its 16 even columns, then its 16 odd ones (the columns past the last multiple of
// 32 as they are), so that a load of packed 16-bit pairs or nibbles splits into even and odd values without shuffles.
void pair_x(const float* x, int64_t n, int64_t cols, std::vector<float>& xp);

// --compute fast for bf16 weights (AVX512_BF16: matvec_bf16dot.cpp; Arm's BF16 extension: bf16dot_arm.cpp; called
// where bf16_dot_active()): y rows [r0, r1) = bf16(x) · wᵀ, with xh = bf16(x) (n, cols) made by the caller; x
// itself is read for the columns past the last multiple of 32 (Arm: of 8).
void bf16_gemm_rows(const float* x, const uint16_t* xh, int64_t n, const WeightView& w, int64_t r0, int64_t r1,
                    float* y);

// Sum of n floats with isa's widest loads (what a streaming read can reach: the decode roofline's probe).
float read_sum(Isa isa, const float* p, int64_t n);

// 16 ones, the probe's multiplier (so that every instruction set can use its fused multiply-add as an add).
extern const float kOnes[16];

}  // namespace meshlm
