#include "model/row_parallel.h"

#include <algorithm>
#include <cstring>

#include "core/check.h"
#include "model/parallel_layout.h"

namespace meshlm {
namespace {
constexpr int64_t kMinPartRows = 16;  // no slivers: each part is one message with its own latency
constexpr int kTagBase = 1000;        // part c's all-reduce uses tags kTagBase + 2c and + 2c + 1
}  // namespace

void RowParallel::progress(void* self) {
  auto* me = static_cast<RowParallel*>(self);
  if (me->outer_) me->outer_(me->outer_context_);
  for (AsyncAllreduce& s : me->sums_) s.test();
}

void RowParallel::run(const float* x, int64_t n, const WeightView& w, float* y) {
  if (!tp_) return matmul(x, n, w, y);
  run_parts(n, w.rows, [&](Range r, float* part) { matmul(x, n, w.row_slice(r.begin, r.end), part); }, y);
}

void RowParallel::run_parts(int64_t n, int64_t rows, const PartFn& compute, float* y) {
  if (!tp_) return compute({0, rows}, y);
  const int chunks = int(std::clamp<int64_t>(std::min<int64_t>(comm_.chunks, rows / kMinPartRows), 1, rows));
  part_.resize(size_t(n * rows));
  if (sums_.size() < size_t(chunks)) sums_.resize(size_t(chunks));
  outer_ = matmul_progress(&outer_context_);
  set_matmul_progress(&RowParallel::progress, this);
  for (int c = 0; c < chunks; ++c) {
    const Range r = even_split(rows, chunks, c);
    float* part = &part_[size_t(n * r.begin)];  // (n, r.size())
    compute(r, part);
    sums_[size_t(c)].start(*tp_, part, n * r.size(), comm_.wire, kTagBase + 2 * c);
  }
  set_matmul_progress(outer_, outer_context_);
  for (int c = 0; c < chunks; ++c) {
    sums_[size_t(c)].wait();
    const Range r = even_split(rows, chunks, c);
    for (int64_t i = 0; i < n; ++i)  // part row i -> y row i, columns r
      std::memcpy(y + i * rows + r.begin, &part_[size_t(n * r.begin + i * r.size())], size_t(r.size()) * sizeof(float));
  }
}

}  // namespace meshlm
