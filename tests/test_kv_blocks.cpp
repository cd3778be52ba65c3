// The KV block pool and prefix cache (runtime/kv_blocks.h): reference counts, least-recently-released eviction of
// cached blocks, and lookups that only ever return a block holding exactly the asked-for prefix.
#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "core/check.h"
#include "runtime/kv_blocks.h"

namespace meshlm {
namespace {

constexpr int64_t kB = 4;

std::vector<int> tokens(int first) {
  std::vector<int> t(kB);
  std::iota(t.begin(), t.end(), first);
  return t;
}

TEST(KvBlocks, AllocateUntilEmptyThenReleaseFreesThem) {
  KvBlocks pool(3, kB, true);
  const int a = pool.allocate(), b = pool.allocate(), c = pool.allocate();
  EXPECT_EQ(pool.allocate(), -1);
  EXPECT_EQ(pool.used(), 3);
  EXPECT_EQ(pool.available(), 0);
  pool.release(b);
  EXPECT_EQ(pool.allocate(), b);
  for (int x : {a, b, c}) pool.release(x);
  EXPECT_EQ(pool.used(), 0);
  EXPECT_EQ(pool.peak_used(), 3);
  EXPECT_THROW(pool.release(a), Error) << "released more often than held";
}

TEST(KvBlocks, ACachedBlockIsSharedByRefcountAndKeptAfterRelease) {
  KvBlocks pool(2, kB, true);
  const auto t = tokens(10);
  const uint64_t h = block_hash(0, t.data(), kB);
  const int a = pool.allocate();
  pool.publish(a, h, -1, t.data());
  EXPECT_EQ(pool.find(h, -1, t.data()), a);
  pool.hold(a);  // a second sequence shares it
  pool.release(a);
  pool.release(a);  // nobody holds it: still cached, and available
  EXPECT_EQ(pool.used(), 0);
  EXPECT_EQ(pool.available(), 2);
  EXPECT_EQ(pool.find(h, -1, t.data()), a);
  pool.hold(a);
  EXPECT_EQ(pool.used(), 1);
  EXPECT_EQ(pool.available(), 1) << "a held cached block is not available";
}

TEST(KvBlocks, EvictsTheLeastRecentlyReleasedCachedBlockOnlyWhenNoneIsFree) {
  KvBlocks pool(3, kB, true);
  std::vector<int> blocks;
  std::vector<uint64_t> hashes;
  for (int i = 0; i < 3; ++i) {
    const auto t = tokens(100 * i);
    blocks.push_back(pool.allocate());
    hashes.push_back(block_hash(0, t.data(), kB));
    pool.publish(blocks.back(), hashes.back(), -1, t.data());
  }
  pool.release(blocks[1]), pool.release(blocks[0]), pool.release(blocks[2]);  // released: 1, then 0, then 2
  const int got = pool.allocate();
  EXPECT_EQ(got, blocks[1]) << "least recently released goes first";
  EXPECT_EQ(pool.find(hashes[1], -1, tokens(100).data()), -1) << "an evicted block is forgotten";
  EXPECT_EQ(pool.find(hashes[0], -1, tokens(0).data()), blocks[0]);
  pool.hold(blocks[0]);  // used again: no longer idle, so the next eviction takes block 2
  EXPECT_EQ(pool.allocate(), blocks[2]);
  EXPECT_EQ(pool.allocate(), -1);
}

TEST(KvBlocks, LookupsCheckTokensAndTheParentBlock) {
  KvBlocks pool(4, kB, true);
  const auto t0 = tokens(1), t1 = tokens(50);
  const uint64_t h0 = block_hash(0, t0.data(), kB), h1 = block_hash(h0, t1.data(), kB);
  const int p = pool.allocate(), c = pool.allocate();
  pool.publish(p, h0, -1, t0.data());
  pool.publish(c, h1, p, t1.data());
  EXPECT_EQ(pool.find(h1, p, t1.data()), c);
  auto other = t1;
  other[2] += 1;  // one token apart: a different hash, and the tokens are checked even on a collision
  EXPECT_EQ(pool.find(block_hash(h0, other.data(), kB), p, other.data()), -1);
  EXPECT_EQ(pool.find(h1, p, other.data()), -1);
  EXPECT_EQ(pool.find(h1, -1, t1.data()), -1) << "another parent";
  // The parent is evicted and its block reused for other tokens: the child no longer matches through it.
  pool.release(p);
  pool.release(c);
  const int q = pool.allocate(), r = pool.allocate();  // the two free blocks first
  EXPECT_EQ(pool.find(h1, p, t1.data()), c) << "both still cached";
  const int reused = pool.allocate();  // evicts p (released before c)
  EXPECT_EQ(reused, p);
  pool.publish(reused, h0, -1, t0.data());  // even with the same contents, it is a new allocation
  EXPECT_EQ(pool.find(h1, reused, t1.data()), -1) << "c was computed after the old p";
  (void)q, (void)r;
}

TEST(KvBlocks, HashesDependOnEveryTokenAndTheParent) {
  const auto t = tokens(7);
  auto u = t;
  u[kB - 1] += 1;
  EXPECT_NE(block_hash(0, t.data(), kB), block_hash(0, u.data(), kB));
  EXPECT_NE(block_hash(1, t.data(), kB), block_hash(2, t.data(), kB));
  EXPECT_EQ(block_hash(5, t.data(), kB), block_hash(5, t.data(), kB));
}

TEST(KvBlocks, WithThePrefixCacheOffNothingIsFound) {
  KvBlocks pool(2, kB, false);
  const auto t = tokens(3);
  const int a = pool.allocate();
  pool.publish(a, 42, -1, t.data());
  EXPECT_EQ(pool.find(42, -1, t.data()), -1);
  pool.release(a);
  EXPECT_EQ(pool.cached(), 0);
}

}  // namespace
}  // namespace meshlm
