#include "app/request_queue.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "core/check.h"
#include "model/kv_cache.h"
#include "runtime/kv_blocks.h"

namespace meshlm {
namespace {
constexpr int kTagAsk = 41;    // driver -> rank 0: int64 requests wanted
constexpr int kTagGrant = 42;  // rank 0 -> driver: uint64 request indices; none: the job has no more


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

}  // namespace

RequestQueue::RequestQueue(Group& world, std::vector<int> drivers, const std::vector<Request>& requests, int batch)
    : world_(world), drivers_(std::move(drivers)), total_(requests.size()), left_(requests.size()),
      batch_(std::max(1, batch)) {
  const auto me = std::find(drivers_.begin(), drivers_.end(), world_.rank());
  MESH_CHECK(me != drivers_.end() && drivers_.front() == 0, "request queue on a rank that drives no replica");
  replica_ = int(me - drivers_.begin());
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
  owned_.resize(drivers_.size());
  for (int d = 0; d < int(drivers_.size()); ++d) {  // the deal: every driver computes the same
    const std::vector<uint64_t> dealt = grant(d, size_t(batch_));
    if (d == replica_) local_.assign(dealt.begin(), dealt.end());
  }
}

std::vector<uint64_t> RequestQueue::grant(int replica, size_t n) {
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

void RequestQueue::ask() {
  if (asked_ || ended_here_ || replica_ == 0) return;
  const int64_t want = batch_;
  world_.send(&want, sizeof want, 0, kTagAsk);
  asked_ = true;
}

void RequestQueue::take_grant(const std::vector<uint8_t>& message) {
  MESH_CHECK(message.size() % sizeof(uint64_t) == 0, "malformed request grant");
  asked_ = false;
  if (message.empty()) ended_here_ = true;
  for (size_t at = 0; at < message.size(); at += sizeof(uint64_t)) {
    uint64_t i = 0;
    std::memcpy(&i, message.data() + at, sizeof i);
    MESH_CHECK(i < total_, "request grant beyond the job");
    local_.push_back(size_t(i));
  }
}

std::optional<size_t> RequestQueue::take(bool wait) {
  if (replica_ == 0) {
    serve();
    if (local_.empty() && left_ > 0) {
      const std::vector<uint64_t> next = grant(0, 1);
      local_.assign(next.begin(), next.end());
    }
  } else {
    if (asked_ && world_.probe(0, kTagGrant)) {
      world_.recv_bytes(in_, 0, kTagGrant);
      take_grant(in_);
    }
    if (local_.size() < size_t(batch_)) ask();  // ask ahead, before the slots run dry
    while (wait && local_.empty() && !ended_here_) {
      ask();
      world_.recv_bytes(in_, 0, kTagGrant);
      take_grant(in_);
    }
  }
  if (local_.empty()) return std::nullopt;
  const size_t i = local_.front();
  local_.pop_front();
  ++taken_;
  return i;
}

void RequestQueue::serve() {
  if (replica_ != 0) return;
  while (world_.probe(MPI_ANY_SOURCE, kTagAsk)) {
    const int from = world_.recv_bytes(in_, MPI_ANY_SOURCE, kTagAsk);
    int64_t want = 0;
    MESH_CHECK(in_.size() == sizeof want, "malformed request ask from rank ", from);
    std::memcpy(&want, in_.data(), sizeof want);
    const size_t replica = size_t(std::find(drivers_.begin(), drivers_.end(), from) - drivers_.begin());
    MESH_CHECK(replica < drivers_.size(), "request ask from rank ", from, ", which drives no replica");
    const size_t share = std::max<size_t>(1, left_ / drivers_.size());
    const std::vector<uint64_t> indices = grant(int(replica), std::min(size_t(std::max<int64_t>(want, 0)), share));
    if (indices.empty()) ++ended_;
    world_.send(indices.data(), int64_t(indices.size() * sizeof(uint64_t)), from, kTagGrant);
  }
}

}  // namespace meshlm
