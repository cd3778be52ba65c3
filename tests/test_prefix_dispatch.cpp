// Prefix-aware dispatch of requests to data-parallel replicas (app/prefix_dispatch.h): requests sharing a prefix go
// to one replica, every request is handed out exactly once, and a replica with nothing of its own left helps another.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "app/prefix_dispatch.h"

namespace meshlm {
namespace {

// `groups` prefixes of `prefix_len` tokens, `per_group` requests each with a 10-token question, interleaved
// (request i is in group i % groups), then `singles` requests that share nothing.
std::vector<Request> requests_of(int groups, int per_group, int prefix_len, int singles) {
  std::mt19937 rng(3);
  std::vector<std::vector<int>> prefixes(static_cast<size_t>(groups));
  for (auto& p : prefixes)
    for (int k = 0; k < prefix_len; ++k) p.push_back(int(rng() % 1000));
  std::vector<Request> out;
  for (int i = 0; i < groups * per_group + singles; ++i) {
    Request r;
    if (i < groups * per_group) r.prompt = prefixes[size_t(i % groups)];
    for (int k = 0; k < (i < groups * per_group ? 10 : 60); ++k) r.prompt.push_back(int(rng() % 1000));
    out.push_back(r);
  }
  return out;
}

TEST(PrefixDispatch, KeysNameTheDeepestSharedBlock) {
  auto requests = requests_of(2, 3, 40, 2);  // 40 + 10 tokens: blocks [0,16) and [16,32) are shared, not [32,48)
  std::vector<uint64_t> keys = prefix_keys(requests);
  EXPECT_EQ(keys[0], keys[2]);
  EXPECT_EQ(keys[0], keys[4]);
  EXPECT_NE(keys[0], keys[1]);
  EXPECT_NE(keys[0], 0u);
  EXPECT_EQ(keys[6], 0u) << "a request that shares nothing has no key";
  requests[2].prompt[20] += 1;  // one token apart in the second block: it shares only the first
  keys = prefix_keys(requests);
  EXPECT_NE(keys[2], keys[0]);
  EXPECT_NE(keys[2], 0u) << "the first block is still shared with the others of its group";
}

TEST(PrefixDispatch, EachGroupGoesToOneReplicaAndEveryRequestOnce) {
  const auto requests = requests_of(4, 10, 100, 6);  // 46 requests
  const std::vector<uint64_t> keys = prefix_keys(requests);
  PrefixDispatch d(requests, 2);
  std::map<uint64_t, std::set<int>> replicas_of_key;
  std::set<uint64_t> seen;
  // Replicas ask in turn for 5 at a time, as long as both have their own groups left.
  for (int round = 0; d.left() > 0; ++round) {
    const int replica = round % 2;
    for (uint64_t i : d.grant(replica, 5)) {
      EXPECT_TRUE(seen.insert(i).second) << "request " << i << " handed out twice";
      if (keys[i] != 0 && d.left() > 10) replicas_of_key[keys[i]].insert(replica);
    }
  }
  EXPECT_EQ(seen.size(), requests.size());
  EXPECT_EQ(replicas_of_key.size(), 4u);
  for (const auto& [key, replicas] : replicas_of_key) EXPECT_EQ(replicas.size(), 1u) << "a group split early";
}

TEST(PrefixDispatch, AReplicaWithNothingOfItsOwnHelpsAnother) {
  const auto requests = requests_of(1, 20, 64, 0);  // one group: replica 0 takes it, replica 1 must help
  PrefixDispatch d(requests, 2);
  const auto first = d.grant(0, 4);
  EXPECT_EQ(first, (std::vector<uint64_t>{0, 1, 2, 3})) << "the owner takes its group in input order";
  const auto helped = d.grant(1, 4);
  EXPECT_EQ(helped, (std::vector<uint64_t>{19, 18, 17, 16})) << "the helper takes from the back";
  EXPECT_EQ(d.left(), 12u);
}

}  // namespace
}  // namespace meshlm
