// Storage dtypes of weights and their conversion to fp32 (activations are always fp32).
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

namespace meshlm {

// Stored dtypes (F32, F16, BF16), the block-quantized ones weights can be converted to at load (core/quant.h), and
// MLX affine-quantized weights kept as stored (kernels/affine.h; their bits and group travel with the matrix, so
// row_bytes and to_f32 do not apply to them).
enum class DType { kF32, kF16, kBF16, kQ8_0, kQ4_0, kAffine };

size_t dtype_size(DType dtype);  // bytes per element; not for the quantized dtypes (see row_bytes)
const char* dtype_name(DType dtype);  // safetensors spelling: "F32", "F16", "BF16"; "Q8_0", "Q4_0"
bool is_quantized(DType dtype);
// Bytes of a row of `cols` elements (for quantized dtypes cols is a multiple of 32).
size_t row_bytes(DType dtype, int64_t cols);

inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline float f16_to_f32(uint16_t h) {
#if defined(__F16C__) || defined(__aarch64__)
  _Float16 v;
  std::memcpy(&v, &h, 2);
  return float(v);
#else
  uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13);  // inf / nan
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (man << 13);  // normal
  } else if (man == 0) {
    bits = sign;  // zero
  } else {  // subnormal: renormalize
    exp = 113;
    while (!(man & 0x400)) { man <<= 1; --exp; }
    bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
#endif
}

// Round to nearest even (NaN stays NaN).
inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40);
  bits += 0x7fff + ((bits >> 16) & 1);
  return uint16_t(bits >> 16);
}
void f32_to_bf16(const float* src, uint16_t* dst, size_t n);
uint16_t f32_to_f16(float f);

// dst[i] = float(src[i]) for n elements of the given dtype (for quantized dtypes n is a multiple of 32).
void to_f32(const void* src, DType dtype, float* dst, size_t n);

}  // namespace meshlm
