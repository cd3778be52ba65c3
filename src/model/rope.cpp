#include "model/rope.h"

#include <algorithm>
#include <cmath>

namespace meshlm {

double yarn_mscale(double factor, double m) { return factor <= 1 ? 1.0 : 0.1 * m * std::log(factor) + 1.0; }

Rope::Rope(const ModelConfig& c) {
  const int dims = c.mla.on() ? c.mla.rope : c.head_dim, half = dims / 2;
  inv_freq_.resize(size_t(half));
  for (int i = 0; i < half; ++i) inv_freq_[size_t(i)] = 1.0 / std::pow(c.rope_theta, double(2 * i) / dims);
  const RopeScaling& s = c.rope_scaling;
  if (s.type == RopeScaling::Type::kLinear) {
    for (double& f : inv_freq_) f /= s.factor;
  } else if (s.type == RopeScaling::Type::kLlama3) {
    // As transformers' _compute_llama3_parameters: long wavelengths are divided by `factor`, short ones kept,
    // and the band between is interpolated smoothly.
    const double old_len = s.original_max_position;
    const double low_wavelen = old_len / s.low_freq_factor, high_wavelen = old_len / s.high_freq_factor;
    for (double& f : inv_freq_) {
      const double wavelen = 2.0 * M_PI / f;
      if (wavelen > low_wavelen) {
        f = f / s.factor;
      } else if (wavelen >= high_wavelen) {
        const double smooth = (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        f = (1.0 - smooth) * f / s.factor + smooth * f;
      }
    }
  } else if (s.type == RopeScaling::Type::kYarn) {
    // As transformers' _compute_yarn_parameters: dims below the correction range keep their frequency, dims above it
    // are divided by `factor`, with a linear ramp between; cos and sin are scaled by the attention factor.
    const double base = c.rope_theta;
    auto correction = [&](double rotations) {
      return dims * std::log(s.original_max_position / (rotations * 2.0 * M_PI)) / (2.0 * std::log(base));
    };
    const double low = std::max(std::floor(correction(s.beta_fast)), 0.0);
    double high = std::min(std::ceil(correction(s.beta_slow)), double(dims - 1));
    if (low == high) high += 0.001;
    for (int i = 0; i < half; ++i) {
      const double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
      inv_freq_[size_t(i)] *= 1.0 - ramp + ramp / s.factor;
    }
    if (s.attention_factor > 0) attention_factor_ = s.attention_factor;
    else if (s.mscale != 0 && s.mscale_all_dim != 0)
      attention_factor_ = yarn_mscale(s.factor, s.mscale) / yarn_mscale(s.factor, s.mscale_all_dim);
    else attention_factor_ = yarn_mscale(s.factor);
  }
}

void Rope::angles(int pos, float* cos, float* sin) const {
  for (size_t i = 0; i < inv_freq_.size(); ++i) {
    const double a = double(pos) * inv_freq_[i];
    cos[i] = float(std::cos(a) * attention_factor_);
    sin[i] = float(std::sin(a) * attention_factor_);
  }
}

}  // namespace meshlm
