// Causal GQA attention over a sequence's cached keys and values, read through its block table: of one query token
// (decode), or of a run of consecutive tokens of one sequence (a prefill chunk) by sgemm.
#pragma once
#include <cstdint>
#include <vector>

namespace meshlm {

struct AttentionShape {
  int64_t n_heads = 0;      // query heads (this rank's)
  int64_t n_kv_heads = 0;   // kv heads in the cache rows (this rank's)
  int64_t head_dim = 0;
  int64_t group = 1;        // query heads per kv head
  int64_t first_q_head = 0;   // global index of this rank's first query head
  int64_t first_kv_head = 0;  // global index of this rank's first kv head
};

// One sequence's keys and values in one layer: position t's row (n_kv_heads * head_dim values) is row
// t % block_tokens of block table[t / block_tokens]. A contiguous cache is the table 0, 1, 2, ...
struct KvRows {
  const float* k = nullptr;  // the layer's blocks: (n_blocks, block_tokens, n_kv_heads * head_dim)
  const float* v = nullptr;
  const int* table = nullptr;
  int64_t block_tokens = 1;
  int64_t row_floats = 0;  // n_kv_heads * head_dim
  int64_t block_offset(int64_t b) const { return int64_t(table[b]) * block_tokens * row_floats; }
};

// out (n_heads, head_dim) = softmax(q · Kᵀ / sqrt(head_dim)) · V over cache positions [first, last].
// q: (n_heads, head_dim). Local query head h (global first_q_head + h) reads global kv head (first_q_head + h) /
// group. scores: scratch of at least last + 1 floats.
void attend(const float* q, const KvRows& kv, int64_t first, int64_t last, const AttentionShape& shape,
            float* scores, float* out);

// Scratch of one thread running attend_run.
struct RunScratch {
  std::vector<float> scores;  // (query rows, keys)
  std::vector<float> k, v;    // the run's keys and values gathered into contiguous rows
};

// The same for m consecutive tokens of one sequence at positions pos0 .. pos0 + m - 1, for local query heads [h0, h1)
// only (so threads can share the heads). q, out: (m, n_heads * head_dim) rows. window: sliding window (0: none).
// The keys and values the run sees are gathered from their blocks once; then per block of query rows
// scores = Q·Kᵀ and out = P·V are OpenBLAS sgemm calls (single-threaded in the caller's thread), with the causal
// mask and the softmax taken as attend() takes them.
void attend_run(const float* q, int64_t m, int64_t pos0, int64_t window, const KvRows& kv, const AttentionShape& shape,
                int64_t h0, int64_t h1, RunScratch& scratch, float* out);

}  // namespace meshlm
