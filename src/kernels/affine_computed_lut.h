// The affine kernel's group table (affine_impl.h's Lut, make_lut, lookup) for instruction sets whose vectors cannot
// index 16 values (AVX2 and NEON: 8 and 4 lanes): scale·q + bias computed for each weight. Included (no include guard,
// on purpose) inside the kernel's namespace after the ops it uses: V, broadcast, fma, to_f32 and low4 (a lane's low
// nibble).
struct Lut {
  V scale, bias;
};
inline Lut make_lut(float scale, float bias) { return {broadcast(scale), broadcast(bias)}; }
template <typename Lanes>
inline V lookup(const Lut& lut, Lanes v) {
  return fma(to_f32(low4(v)), lut.scale, lut.bias);
}
