// Causal GQA attention over a sequence's cached keys and values: of one query token (decode), or of a run of
// consecutive tokens of one sequence (a prefill chunk) by sgemm.
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

// out (n_heads, head_dim) = softmax(q · Kᵀ / sqrt(head_dim)) · V over cache positions [first, last].
// q: (n_heads, head_dim). k_cache, v_cache: (positions, n_kv_heads * head_dim) rows of this sequence.
// Local query head h (global first_q_head + h) reads global kv head (first_q_head + h) / group. scores: scratch of at least last + 1 floats.
void attend(const float* q, const float* k_cache, const float* v_cache, int64_t first, int64_t last,
            const AttentionShape& shape, float* scores, float* out);

// The same for m consecutive tokens of one sequence at positions pos0 .. pos0 + m - 1, for local query heads [h0, h1)
// only (so threads can share the heads). q, out: (m, n_heads * head_dim) rows. window: sliding window (0: none).
// Per block of query rows, scores = Q·Kᵀ and out = P·V are OpenBLAS sgemm calls (single-threaded in the caller's
// thread); the causal mask and the softmax are taken as attend() takes them. scores: scratch, grown as needed.
void attend_run(const float* q, int64_t m, int64_t pos0, int64_t window, const float* k_cache, const float* v_cache,
                const AttentionShape& shape, int64_t h0, int64_t h1, std::vector<float>& scores, float* out);

}  // namespace meshlm
