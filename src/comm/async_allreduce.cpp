#include "comm/async_allreduce.h"

#include <algorithm>

#include "comm/comm.h"
#include "comm/stall_watch.h"
#include "core/check.h"
#include "core/dtype.h"
#include "core/timer.h"
#include "model/parallel_layout.h"

namespace meshlm {
namespace {
constexpr int64_t kDirectBytes = 64 << 10;  // up to this, one round of whole partials beats two rounds of segments

void check(int rc) { mpi_check(rc, "MPI all-reduce (point to point)"); }
}  // namespace

void AsyncAllreduce::start(const Group& group, float* data, int64_t n, WireDType wire, int tag) {
  MESH_CHECK(stage_ == Stage::kIdle, "an all-reduce with tag ", tag, " is still in flight");
  comm_ = group.raw(), p_ = group.size(), me_ = group.rank(), tag_ = tag, peers_ = &group.world_ranks();
  data_ = data, n_ = n, bf16_ = wire == WireDType::kBF16;
  direct_ = p_ == 2 || n * 4 <= kDirectBytes || n < p_;
  count_comm(CommOp::kAllreduce, 0, 1, 0);
  if (p_ == 1) return;
  if (bf16_) {
    send16_.resize(size_t(n));
    f32_to_bf16(data, send16_.data(), size_t(n));
  }
  post_scatter();
}

// Round 1: direct, my whole partial to every rank; otherwise segment r of it to rank r. Receives: the other ranks'
// partials of my segment (the whole message when direct).
void AsyncAllreduce::post_scatter() {
  const Timer t;
  const Range mine = direct_ ? Range{0, n_} : even_split(n_, p_, me_);
  const int64_t slot = mine.size();
  const MPI_Datatype type = bf16_ ? MPI_UINT16_T : MPI_FLOAT;
  if (bf16_) recv16_.resize(size_t(slot * (p_ - 1)));
  else recv32_.resize(size_t(slot * (p_ - 1)));
  requests_.assign(size_t(2 * (p_ - 1)), MPI_REQUEST_NULL);
  uint64_t bytes = 0;
  for (int r = 0, k = 0; r < p_; ++r) {
    if (r == me_) continue;
    const Range theirs = direct_ ? Range{0, n_} : even_split(n_, p_, r);
    const int s = r < me_ ? r : r - 1;  // slot of rank r in the receive buffer
    void* into = bf16_ ? static_cast<void*>(&recv16_[size_t(s * slot)]) : static_cast<void*>(&recv32_[size_t(s * slot)]);
    const void* from = bf16_ ? static_cast<const void*>(&send16_[size_t(theirs.begin)])
                             : static_cast<const void*>(data_ + theirs.begin);
    check(MPI_Irecv(into, int(slot), type, r, tag_, comm_, &requests_[size_t(k++)]));
    check(MPI_Isend(from, int(theirs.size()), type, r, tag_, comm_, &requests_[size_t(k++)]));
    bytes += uint64_t(theirs.size()) * (bf16_ ? 2 : 4);
  }
  stage_ = Stage::kScatter;
  count_comm(CommOp::kAllreduce, bytes, 0, t.seconds());
}

// Round 2: my summed segment to every rank; the other segments' sums into place.
void AsyncAllreduce::post_gather() {
  const Timer t;
  const Range mine = even_split(n_, p_, me_);
  const MPI_Datatype type = bf16_ ? MPI_UINT16_T : MPI_FLOAT;
  requests_.assign(size_t(2 * (p_ - 1)), MPI_REQUEST_NULL);
  uint64_t bytes = 0;
  for (int r = 0, k = 0; r < p_; ++r) {
    if (r == me_) continue;
    const Range theirs = even_split(n_, p_, r);
    void* into = bf16_ ? static_cast<void*>(&send16_[size_t(theirs.begin)]) : static_cast<void*>(data_ + theirs.begin);
    const void* from = bf16_ ? static_cast<const void*>(&send16_[size_t(mine.begin)])
                             : static_cast<const void*>(data_ + mine.begin);
    check(MPI_Irecv(into, int(theirs.size()), type, r, tag_ + 1, comm_, &requests_[size_t(k++)]));
    check(MPI_Isend(from, int(mine.size()), type, r, tag_ + 1, comm_, &requests_[size_t(k++)]));
    bytes += uint64_t(mine.size()) * (bf16_ ? 2 : 4);
  }
  stage_ = Stage::kGather;
  count_comm(CommOp::kAllreduce, bytes, 0, t.seconds());
}

// data[begin, begin+count) = the sum over the ranks in rank order; this rank's values are its own (as sent).
void AsyncAllreduce::sum_into(int64_t begin, int64_t count) {
  acc_.resize(size_t(count));
  float* acc = acc_.data();
  for (int r = 0; r < p_; ++r) {
    const size_t slot = size_t((r < me_ ? r : r - 1) * count);
    if (bf16_) {
      const uint16_t* v = r == me_ ? &send16_[size_t(begin)] : &recv16_[slot];
      if (r == 0) for (int64_t i = 0; i < count; ++i) acc[i] = bf16_to_f32(v[i]);
      else for (int64_t i = 0; i < count; ++i) acc[i] += bf16_to_f32(v[i]);
    } else {
      const float* v = r == me_ ? data_ + begin : &recv32_[slot];
      if (r == 0) for (int64_t i = 0; i < count; ++i) acc[i] = v[i];
      else for (int64_t i = 0; i < count; ++i) acc[i] += v[i];
    }
  }
  std::copy(acc, acc + count, data_ + begin);
}

void AsyncAllreduce::advance() {
  if (stage_ == Stage::kScatter && direct_) {
    sum_into(0, n_);
    stage_ = Stage::kIdle;
  } else if (stage_ == Stage::kScatter) {
    const Range mine = even_split(n_, p_, me_);
    sum_into(mine.begin, mine.size());
    if (bf16_) {  // every rank, the owner too, keeps the sum as it travelled
      f32_to_bf16(data_ + mine.begin, &send16_[size_t(mine.begin)], size_t(mine.size()));
      to_f32(&send16_[size_t(mine.begin)], DType::kBF16, data_ + mine.begin, size_t(mine.size()));
    }
    post_gather();
  } else {  // gathered
    if (bf16_)
      for (int r = 0; r < p_; ++r) {
        const Range seg = even_split(n_, p_, r);
        if (r != me_) to_f32(&send16_[size_t(seg.begin)], DType::kBF16, data_ + seg.begin, size_t(seg.size()));
      }
    stage_ = Stage::kIdle;
  }
}

bool AsyncAllreduce::test() {
  const Timer t;
  while (stage_ != Stage::kIdle) {
    int done = 0;
    check(MPI_Testall(int(requests_.size()), requests_.data(), &done, MPI_STATUSES_IGNORE));
    if (!done) break;
    advance();
  }
  count_comm(CommOp::kAllreduce, 0, 0, t.seconds());
  return stage_ == Stage::kIdle;
}

void AsyncAllreduce::wait() {
  const StallScope watch(peers_, -1, "a tensor-parallel all-reduce");
  const Timer t;
  while (stage_ != Stage::kIdle) {
    check(MPI_Waitall(int(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE));
    advance();
  }
  count_comm(CommOp::kAllreduce, 0, 0, t.seconds());
}

}  // namespace meshlm
