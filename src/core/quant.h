// Quantize-on-load formats (--weight-dtype q8_0 | q4_0): blocks of 32 weights along a row with one f16 scale, in
// llama.cpp's layouts. q8_0 keeps 8 bits per weight (34 bytes per block), q4_0 4 bits (18 bytes per block).
#pragma once
#include <cstdint>

namespace meshlm {

constexpr int64_t kQBlock = 32;  // weights per block

struct BlockQ8_0 {
  uint16_t d;      // scale (f16): w = d * q
  int8_t q[32];
};
struct BlockQ4_0 {
  uint16_t d;      // scale (f16): w = d * (nibble - 8)
  uint8_t q[16];   // element j in the low nibble of q[j], element j + 16 in the high nibble
};
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18, "blocks must be packed as llama.cpp's");

// n (a multiple of 32) floats into n / 32 blocks.
void quantize_q8_0(const float* x, int64_t n, BlockQ8_0* out);
void quantize_q4_0(const float* x, int64_t n, BlockQ4_0* out);
// n (a multiple of 32) floats back out of n / 32 blocks.
void dequantize_q8_0(const BlockQ8_0* in, int64_t n, float* out);
void dequantize_q4_0(const BlockQ4_0* in, int64_t n, float* out);

}  // namespace meshlm
