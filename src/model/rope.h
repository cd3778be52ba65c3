// RoPE inverse frequencies (with Llama-3 / linear scaling) and per-position cos/sin, computed in double.
#pragma once
#include <vector>

#include "io/hf_config.h"

namespace meshlm {

class Rope {
 public:
  explicit Rope(const ModelConfig& c);
  int half() const { return int(inv_freq_.size()); }
  // cos, sin: (head_dim / 2) for `pos`.
  void angles(int pos, float* cos, float* sin) const;

 private:
  std::vector<double> inv_freq_;  // (head_dim / 2)
};

}  // namespace meshlm
