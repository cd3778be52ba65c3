#include "runtime/kv_blocks.h"

#include <algorithm>

#include "core/check.h"

namespace meshlm {

uint64_t block_hash(uint64_t parent, const int* tokens, int64_t n) {
  uint64_t h = parent ^ 0x9e3779b97f4a7c15ull;
  for (int64_t i = 0; i < n; ++i) {  // splitmix64 steps over the tokens
    h += uint64_t(uint32_t(tokens[i])) + 0x9e3779b97f4a7c15ull;
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
    h ^= h >> 31;
  }
  return h;
}

KvBlocks::KvBlocks(int64_t n_blocks, int64_t block_tokens, bool prefix_cache)
    : block_tokens_(block_tokens), prefix_cache_(prefix_cache), meta_(size_t(n_blocks)) {
  MESH_CHECK(n_blocks >= 1 && block_tokens >= 1, "a KV cache needs at least one block of at least one position");
  for (int64_t b = n_blocks - 1; b >= 0; --b) free_.push_back(int(b));
}

void KvBlocks::forget(int block) {
  Meta& m = meta_[size_t(block)];
  if (!m.cached) return;
  by_hash_.erase(m.hash);
  m.cached = false;
  m.tokens.clear();
}

int KvBlocks::allocate() {
  int block = -1;
  if (!free_.empty()) {
    block = free_.back();
    free_.pop_back();
  } else if (!idle_.empty()) {
    block = idle_.begin()->second;
    idle_.erase(idle_.begin());
    forget(block);
  } else {
    return -1;
  }
  meta_[size_t(block)].refs = 1;
  ++meta_[size_t(block)].generation;
  peak_ = std::max(peak_, ++used_);
  return block;
}

void KvBlocks::hold(int block) {
  Meta& m = meta_.at(size_t(block));
  MESH_CHECK(m.cached || m.refs > 0, "KV block ", block, " is neither held nor cached");
  if (m.refs++ == 0) {
    idle_.erase({m.released_at, block});
    peak_ = std::max(peak_, ++used_);
  }
}

void KvBlocks::release(int block) {
  Meta& m = meta_.at(size_t(block));
  MESH_CHECK(m.refs > 0, "KV block ", block, " released more often than held");
  if (--m.refs > 0) return;
  --used_;
  if (m.cached) {
    m.released_at = ++clock_;
    idle_.insert({m.released_at, block});
  } else {
    free_.push_back(block);
  }
}

int KvBlocks::find(uint64_t hash, int parent, const int* tokens) const {
  if (!prefix_cache_) return -1;
  const auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return -1;
  const Meta& m = meta_[size_t(it->second)];
  if (m.parent != parent || (parent >= 0 && meta_[size_t(parent)].generation != m.parent_generation) ||
      !std::equal(m.tokens.begin(), m.tokens.end(), tokens))
    return -1;
  return it->second;
}

void KvBlocks::publish(int block, uint64_t hash, int parent, const int* tokens) {
  Meta& m = meta_.at(size_t(block));
  MESH_CHECK(m.refs > 0, "KV block ", block, " published while nobody holds it");
  if (!prefix_cache_ || m.cached || by_hash_.count(hash)) return;
  m.cached = true;
  m.hash = hash;
  m.parent = parent;
  m.parent_generation = parent >= 0 ? meta_.at(size_t(parent)).generation : 0;
  m.tokens.assign(tokens, tokens + block_tokens_);
  by_hash_[hash] = block;
}

}  // namespace meshlm
