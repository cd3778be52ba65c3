#include "model/row_parallel.h"

#include <algorithm>
#include <cstring>

#include "core/check.h"
#include "core/dtype.h"
#include "model/parallel_layout.h"

namespace meshlm {
namespace {
constexpr int64_t kMinPartRows = 16;  // no slivers: each part is one message with its own latency

WeightView rows_of(const WeightView& w, Range r) {
  WeightView v = w;
  v.data = static_cast<const uint8_t*>(w.data) + size_t(r.begin) * row_bytes(w.dtype, w.cols);
  v.rows = r.size();
  return v;
}
}  // namespace

void RowParallel::progress(void* self) {
  auto* me = static_cast<RowParallel*>(self);
  if (me->outer_) me->outer_(me->outer_context_);
  for (MPI_Request& r : me->pending_)
    if (r != MPI_REQUEST_NULL) {  // one test drives all of MPI's progress engine
      Group::test(r);
      break;
    }
}

void RowParallel::run(const float* x, int64_t n, const WeightView& w, float* y) {
  if (!tp_) return matmul(x, n, w, y);
  const int64_t rows = w.rows;
  const int chunks = int(std::clamp<int64_t>(std::min<int64_t>(comm_.chunks, rows / kMinPartRows), 1, rows));
  const bool bf16 = comm_.wire == WireDType::kBF16;
  if (chunks == 1 && !bf16) {  // no overlap asked for: the plain blocking form
    matmul(x, n, w, y);
    return tp_->allreduce_sum(y, n * rows);
  }
  part_.resize(size_t(n * rows));
  if (bf16) wire_.resize(part_.size());
  pending_.assign(size_t(chunks), MPI_REQUEST_NULL);
  outer_ = matmul_progress(&outer_context_);
  set_matmul_progress(&RowParallel::progress, this);
  for (int c = 0; c < chunks; ++c) {
    const Range r = even_split(rows, chunks, c);
    float* part = &part_[size_t(n * r.begin)];  // (n, r.size())
    matmul(x, n, rows_of(w, r), part);
    if (bf16) {
      uint16_t* wire = &wire_[size_t(n * r.begin)];
      f32_to_bf16(part, wire, size_t(n * r.size()));
      pending_[size_t(c)] = tp_->iallreduce_sum_bf16(wire, n * r.size());
    } else {
      pending_[size_t(c)] = tp_->iallreduce_sum(part, n * r.size());
    }
  }
  set_matmul_progress(outer_, outer_context_);
  for (int c = 0; c < chunks; ++c) {
    Group::wait_allreduce(pending_[size_t(c)]);
    const Range r = even_split(rows, chunks, c);
    if (bf16) to_f32(&wire_[size_t(n * r.begin)], DType::kBF16, &part_[size_t(n * r.begin)], size_t(n * r.size()));
    for (int64_t i = 0; i < n; ++i)  // part row i -> y row i, columns r
      std::memcpy(y + i * rows + r.begin, &part_[size_t(n * r.begin + i * r.size())], size_t(r.size()) * sizeof(float));
  }
}

}  // namespace meshlm
