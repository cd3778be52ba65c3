// Elementwise and per-row kernels on fp32 activations. Pure functions on pointers and sizes.
#pragma once
#include <cstdint>

namespace meshlm {

// out[i, :] = x[i, :] / sqrt(mean(x[i, :]^2) + eps) * w, for n rows of `dim`. out may alias x.
void rmsnorm(const float* x, const float* w, float* out, int64_t n, int64_t dim, float eps);

// x[i, :] += b for n rows of `dim`.
void add_bias(float* x, const float* b, int64_t n, int64_t dim);

// x[i] += y[i] for n elements.
void add_inplace(float* x, const float* y, int64_t n);


// Rotate-half RoPE on one token: x is (n_heads, head_dim); element i pairs with i + head_dim/2.
// cos, sin are (head_dim/2) for this token's position.
void rope_rotate_half(float* x, int64_t n_heads, int64_t head_dim, const float* cos, const float* sin);

// Interleaved RoPE (DeepSeek-V3's rope dims): in each of n vectors of 2*half values, `stride` floats apart, the pair
// (2i, 2i+1) rotates by angle i. cos, sin: (half) for this token's position.
void rope_interleaved(float* x, int64_t n, int64_t stride, int64_t half, const float* cos, const float* sin);

}  // namespace meshlm
