// What the fused affine kernel (affine_impl.h) needs beyond simd_neon_ops.h, for NEON's 4 lanes. Included (no include
// guard, on purpose) inside the kernel's namespace, after <arm_neon.h> and <cstring>; tests include it over SIMDe's
// NEON to run the NEON kernel on x86.
inline uint32x4_t load_bytes(const uint8_t* p) {  // exactly 4 bytes: the last ones of a row end its buffer
  uint32_t four;
  std::memcpy(&four, p, 4);
  return vmovl_u16(vget_low_u16(vmovl_u8(vcreate_u8(four))));
}
inline uint32x4_t high4(uint32x4_t v) { return vshrq_n_u32(v, 4); }
inline V to_f32(uint32x4_t v) { return vcvtq_f32_u32(v); }
inline uint32x4_t low4(uint32x4_t v) { return vandq_u32(v, vdupq_n_u32(15)); }
#include "kernels/affine_computed_lut.h"
