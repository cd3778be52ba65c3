#include "app/request_queue.h"

#include <algorithm>
#include <cstring>

#include "core/check.h"

namespace meshlm {
namespace {
constexpr int kTagAsk = 41;    // driver -> rank 0: int64 requests wanted
constexpr int kTagGrant = 42;  // rank 0 -> driver: uint64 request indices; none: the job has no more


}  // namespace

RequestQueue::RequestQueue(Group& world, std::vector<int> drivers, const std::vector<Request>& requests, int batch)
    : world_(world), drivers_(std::move(drivers)), total_(requests.size()),
      dispatch_(requests, int(drivers_.size())), batch_(std::max(1, batch)) {
  const auto me = std::find(drivers_.begin(), drivers_.end(), world_.rank());
  MESH_CHECK(me != drivers_.end() && drivers_.front() == 0, "request queue on a rank that drives no replica");
  replica_ = int(me - drivers_.begin());
  for (int d = 0; d < int(drivers_.size()); ++d) {  // the deal: every driver computes the same
    const std::vector<uint64_t> dealt = dispatch_.grant(d, size_t(batch_));
    if (d == replica_) local_.assign(dealt.begin(), dealt.end());
  }
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
    if (local_.empty() && dispatch_.left() > 0) {
      const std::vector<uint64_t> next = dispatch_.grant(0, 1);
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
    const size_t share = std::max<size_t>(1, dispatch_.left() / drivers_.size());
    const std::vector<uint64_t> indices =
        dispatch_.grant(int(replica), std::min(size_t(std::max<int64_t>(want, 0)), share));
    if (indices.empty()) ++ended_;
    world_.send(indices.data(), int64_t(indices.size() * sizeof(uint64_t)), from, kTagGrant);
  }
}

}  // namespace meshlm
