// The key/value cache of this rank's layers and kv heads: a pool of blocks of block_tokens positions each, which
// sequences use through block tables (the scheduler's KvBlocks decides who holds which). Every rank of a replica
// has the same number of blocks, so one block id names the same positions on each: a tensor rank keeps its heads'
// keys and values there, a pipeline stage its layers'.
//
// The pool is allocated untouched: the memory a block uses is only committed when a sequence first writes it.
// Multi-head latent attention (DeepSeek-V3) keeps one plane, the latent rows, in k(); other models keys and values.
#pragma once
#include <cstdint>
#include <memory>

namespace meshlm {

class KVCache {
 public:
  static constexpr int64_t kBlockTokens = 16;  // positions per block

  KVCache() = default;
  // n_layers local layers, n_blocks blocks, kv_dim = n_kv_heads_local * head_dim (ModelConfig::cache_row);
  // planes: 2 (keys and values) or 1 (keys only: MLA's latent).
  KVCache(int64_t n_layers, int64_t n_blocks, int64_t kv_dim, int planes = 2)
      : n_blocks_(n_blocks), kv_dim_(kv_dim), planes_(planes),
        floats_(size_t(n_layers * n_blocks * kBlockTokens * kv_dim)), k_(new float[floats_]),
        v_(planes == 2 ? new float[floats_] : nullptr) {}

  // (kBlockTokens, kv_dim) rows of one block in one layer.
  float* k(int64_t layer, int64_t block) { return k_.get() + offset(layer, block); }
  float* v(int64_t layer, int64_t block) { return v_.get() + offset(layer, block); }
  const float* k_layer(int64_t layer) const { return k_.get() + offset(layer, 0); }
  const float* v_layer(int64_t layer) const { return v_.get() + offset(layer, 0); }
  int64_t n_blocks() const { return n_blocks_; }
  int64_t kv_dim() const { return kv_dim_; }
  uint64_t bytes() const { return uint64_t(planes_) * floats_ * sizeof(float); }
  // Blocks that hold `positions` positions.
  static int64_t blocks_for(int64_t positions) { return (positions + kBlockTokens - 1) / kBlockTokens; }
  // Bytes of one block over n_layers layers of kv_dim values in `planes` planes.
  static uint64_t block_bytes(int64_t n_layers, int64_t kv_dim, int planes = 2) {
    return uint64_t(planes * n_layers * kBlockTokens * kv_dim) * sizeof(float);
  }

 private:
  size_t offset(int64_t layer, int64_t block) const { return size_t((layer * n_blocks_ + block) * kBlockTokens * kv_dim_); }
  int64_t n_blocks_ = 0, kv_dim_ = 0;
  int planes_ = 2;
  size_t floats_ = 0;
  std::unique_ptr<float[]> k_, v_;  // (n_layers, n_blocks, kBlockTokens, kv_dim)
};

}  // namespace meshlm
