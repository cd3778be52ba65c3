// The KV cache's blocks as the scheduler sees them (vLLM's block manager): a fixed pool of blocks of block_tokens
// positions each, which sequences hold through block tables. A block is free, held (reference-counted: sequences
// that share a prefix hold the same blocks), or cached: no longer held but still holding a known prefix, kept for a
// later request until the pool needs it back, least recently released first. A full block is known by the hash of
// every token up to its end (its parent's hash and its own tokens), and a lookup checks its tokens and that its
// parent is the very block (same allocation) it was computed after, so a hash collision can never hand out the
// wrong keys and values.
#pragma once
#include <cstdint>
#include <set>
#include <unordered_map>
#include <vector>

namespace meshlm {

// The hash of a block whose parent block (the one before it in the sequence) hashes to `parent`; 0 for the first.
uint64_t block_hash(uint64_t parent, const int* tokens, int64_t n);

class KvBlocks {
 public:
  KvBlocks(int64_t n_blocks, int64_t block_tokens, bool prefix_cache);

  int64_t block_tokens() const { return block_tokens_; }
  int64_t size() const { return int64_t(meta_.size()); }
  bool prefix_cache() const { return prefix_cache_; }
  // Blocks that allocate() can hand out: free ones and cached ones that nobody holds.
  int64_t available() const { return int64_t(free_.size() + idle_.size()); }
  int64_t used() const { return used_; }        // held by at least one sequence
  int64_t peak_used() const { return peak_; }
  int64_t cached() const { return int64_t(by_hash_.size()); }  // holding a known prefix (held or not)

  // A block for one holder, or -1 when none is available; takes the least recently released cached block when no
  // free one is left (it is forgotten).
  int allocate();
  // One more holder of a block that find() returned.
  void hold(int block);
  // One holder less; a block nobody holds becomes free, or stays cached when it holds a known prefix.
  void release(int block);

  // A cached block with this hash whose parent is `parent` (-1 for a first block) and whose tokens are these
  // block_tokens ones; -1 when there is none (or the prefix cache is off).
  int find(uint64_t hash, int parent, const int* tokens) const;
  // The block's keys and values are now computed for these tokens: later requests may find it. A second block
  // with the same contents is not recorded (the first one stays the one found).
  void publish(int block, uint64_t hash, int parent, const int* tokens);

 private:
  struct Meta {
    int refs = 0;
    bool cached = false;
    uint64_t hash = 0, released_at = 0;
    int parent = -1;
    uint64_t generation = 0, parent_generation = 0;  // generation: bumped at each allocation of the block
    std::vector<int> tokens;  // (block_tokens) when cached
  };
  void forget(int block);

  int64_t block_tokens_;
  bool prefix_cache_;
  std::vector<Meta> meta_;                       // (n_blocks)
  std::vector<int> free_;                        // free blocks, taken from the back
  std::set<std::pair<uint64_t, int>> idle_;      // cached blocks nobody holds: (released_at, block), oldest first
  std::unordered_map<uint64_t, int> by_hash_;    // hash -> cached block
  uint64_t clock_ = 0;
  int64_t used_ = 0, peak_ = 0;
};

}  // namespace meshlm
