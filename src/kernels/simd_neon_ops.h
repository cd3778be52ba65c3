// The fp32 vector operations (and 16-bit weight loads) the Arm kernels share (NEON, 4 lanes). Included (no include guard, on purpose) inside each
// kernel's own namespace, after <arm_neon.h>.
using V = float32x4_t;
constexpr int kLanes = 4;
inline V zero() { return vdupq_n_f32(0.0f); }
inline V add(V a, V b) { return vaddq_f32(a, b); }
inline V fma(V a, V b, V c) { return vfmaq_f32(c, a, b); }
inline float sum(V v) { return vaddvq_f32(v); }
inline V broadcast(float f) { return vdupq_n_f32(f); }
inline V load_f32(const float* p) { return vld1q_f32(p); }
inline void store_f32(float* p, V v) { vst1q_f32(p, v); }
inline V load_bf16(const uint16_t* p) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16)); }
inline V load_f16(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
// 2 kLanes bf16 values as fp32 with no widening: the low halves of the 32-bit words (the even values), the high halves.
inline void load_bf16_pairs(const uint16_t* p, V& even, V& odd) {
  const uint32x4_t v = vreinterpretq_u32_u16(vld1q_u16(p));
  even = vreinterpretq_f32_u32(vshlq_n_u32(v, 16));
  odd = vreinterpretq_f32_u32(vandq_u32(v, vdupq_n_u32(0xffff0000u)));
}
