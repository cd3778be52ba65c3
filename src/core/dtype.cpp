#include "core/dtype.h"

#include "core/cpu_x86.h"
#include "core/quant.h"

#include <cmath>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace meshlm {

size_t dtype_size(DType dtype) { return dtype == DType::kF32 ? 4 : 2; }

bool is_quantized(DType dtype) { return dtype == DType::kQ8_0 || dtype == DType::kQ4_0; }

size_t row_bytes(DType dtype, int64_t cols) {
  if (dtype == DType::kQ8_0) return size_t(cols / kQBlock) * sizeof(BlockQ8_0);
  if (dtype == DType::kQ4_0) return size_t(cols / kQBlock) * sizeof(BlockQ4_0);
  return size_t(cols) * dtype_size(dtype);
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "F32";
    case DType::kF16: return "F16";
    case DType::kBF16: return "BF16";
    case DType::kQ8_0: return "Q8_0";
    case DType::kQ4_0: return "Q4_0";
    case DType::kAffine: return "AFFINE";
  }
  return "?";
}

void f32_to_bf16(const float* src, uint16_t* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
}

uint16_t f32_to_f16(float f) {
#if defined(__F16C__) || defined(__aarch64__)
  _Float16 v = _Float16(f);
  uint16_t h;
  std::memcpy(&h, &v, 2);
  return h;
#else
  // Portable round-to-nearest-even through the bit pattern.
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000;
  int32_t exp = int32_t((x >> 23) & 0xff) - 127 + 15;
  uint32_t man = x & 0x7fffff;
  if (((x >> 23) & 0xff) == 0xff) return uint16_t(sign | 0x7c00 | (man ? 0x200 : 0));
  if (exp >= 0x1f) return uint16_t(sign | 0x7c00);
  if (exp <= 0) {
    if (exp < -10) return uint16_t(sign);
    man |= 0x800000;
    uint32_t shift = uint32_t(14 - exp);
    uint32_t half = 1u << (shift - 1), rest = man & ((1u << shift) - 1);
    uint32_t r = man >> shift;
    if (rest > half || (rest == half && (r & 1))) ++r;
    return uint16_t(sign | r);
  }
  uint32_t r = (uint32_t(exp) << 10) | (man >> 13), rest = man & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (r & 1))) ++r;
  return uint16_t(sign | r);
#endif
}

#if defined(__x86_64__)
// F16C converts 8 halves per instruction; chosen at run time so the binary still runs on CPUs without it.
__attribute__((target("avx,f16c"))) static void f16_to_f32_f16c(const uint16_t* s, float* d, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
  for (; i < n; ++i) d[i] = f16_to_f32(s[i]);
}
static const bool kHasF16c = cpu_has_f16c() && __builtin_cpu_supports("avx");
#endif

void to_f32(const void* src, DType dtype, float* dst, size_t n) {
  switch (dtype) {
    case DType::kF32:
      std::memcpy(dst, src, n * 4);
      return;
    case DType::kF16: {
      auto* s = static_cast<const uint16_t*>(src);
#if defined(__x86_64__)
      if (kHasF16c) return f16_to_f32_f16c(s, dst, n);
#endif
      for (size_t i = 0; i < n; ++i) dst[i] = f16_to_f32(s[i]);
      return;
    }
    case DType::kBF16: {
      auto* s = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i]);
      return;
    }
    case DType::kQ8_0: return dequantize_q8_0(static_cast<const BlockQ8_0*>(src), int64_t(n), dst);
    case DType::kQ4_0: return dequantize_q4_0(static_cast<const BlockQ4_0*>(src), int64_t(n), dst);
    case DType::kAffine: return;  // not here: affine_dequant_rows (kernels/affine.h) knows the groups
  }
}

}  // namespace meshlm
