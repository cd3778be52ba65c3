#include "app/prefix_dispatch.h"

#include <unordered_map>

#include "model/kv_cache.h"
#include "runtime/kv_blocks.h"

namespace meshlm {

// Requests keyed by the deepest whole KV block of their prompt that another request's prompt also has (0: none).
std::vector<uint64_t> prefix_keys(const std::vector<Request>& requests) {
  const int64_t B = KVCache::kBlockTokens;
  std::vector<std::vector<uint64_t>> chains(requests.size());
  std::unordered_map<uint64_t, int> count;
  for (size_t i = 0; i < requests.size(); ++i) {
    const std::vector<int>& p = requests[i].prompt;
    uint64_t h = 0;
    for (int64_t j = 0; j < (int64_t(p.size()) - 1) / B; ++j) {  // the blocks a sharer could reuse
      h = block_hash(h, &p[size_t(j * B)], B);
      chains[i].push_back(h);
      ++count[h];
    }
  }
  std::vector<uint64_t> keys(requests.size(), 0);
  for (size_t i = 0; i < requests.size(); ++i)
    for (auto it = chains[i].rbegin(); it != chains[i].rend(); ++it)
      if (count[*it] > 1) {
        keys[i] = *it;
        break;
      }
  return keys;
}

PrefixDispatch::PrefixDispatch(const std::vector<Request>& requests, int replicas)
    : owned_(size_t(replicas)), left_(requests.size()) {
  const std::vector<uint64_t> keys = prefix_keys(requests);
  std::unordered_map<uint64_t, size_t> group_of;
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto [it, added] = group_of.emplace(keys[i], groups_.size());
    if (keys[i] == 0 || added) {
      groups_.emplace_back();
      groups_.back().items.push_back(i);
    } else {
      groups_[it->second].items.push_back(i);
    }
  }
}

std::vector<uint64_t> PrefixDispatch::grant(int replica, size_t n) {
  std::vector<uint64_t> out;
  const auto take = [&](size_t g) {
    std::deque<size_t>& items = groups_[g].items;
    while (out.size() < n && !items.empty()) out.push_back(items.front()), items.pop_front();
  };
  std::vector<size_t>& mine = owned_[size_t(replica)];
  for (size_t k = 0; k < mine.size() && out.size() < n; ++k) take(mine[k]);
  std::erase_if(mine, [&](size_t g) { return groups_[g].items.empty(); });
  for (; out.size() < n && next_group_ < groups_.size(); ++next_group_) {
    PrefixGroup& g = groups_[next_group_];
    if (g.owner >= 0 || g.items.empty()) continue;
    g.owner = replica;
    take(next_group_);
    if (!g.items.empty()) {
      mine.push_back(next_group_++);
      break;
    }
  }
  while (out.size() < n) {  // nothing of its own is left: help with the largest backlog of another replica
    size_t best = groups_.size();
    for (const std::vector<size_t>& theirs : owned_)
      for (size_t g : theirs)
        if (!groups_[g].items.empty() && (best == groups_.size() || groups_[g].items.size() > groups_[best].items.size()))
          best = g;
    if (best == groups_.size()) break;
    std::deque<size_t>& items = groups_[best].items;
    while (out.size() < n && !items.empty()) out.push_back(items.back()), items.pop_back();
  }
  left_ -= out.size();
  return out;
}

}  // namespace meshlm
