// Multi-head latent attention (DeepSeek-V3) in absorbed form, over a sequence's cached latent rows.
//
// Position t's cache row is [c (r), k_pe (dr)]: the normed latent and the rotated rope key, shared by every head.
// A head's query row is [W_kᵀ·q_nope (r), q_pe (dr)], so its score against t is one dot product of r + dr values
// (q_nope·k_nope = (W_kᵀ·q_nope)·c), and its output is Σ pₜ·cₜ (r values), which the caller takes through the head's
// W_v. Many query rows see the same keys, so scores and outputs are two sgemm calls.
#pragma once
#include <cstdint>
#include <vector>

namespace meshlm {

// One sequence's latent rows in one layer: position t is row t % block_tokens of block table[t / block_tokens].
struct LatentRows {
  const float* rows = nullptr;  // the layer's blocks: (n_blocks, block_tokens, r + dr)
  const int* table = nullptr;
  int64_t block_tokens = 1;
  int64_t r = 0, dr = 0;
};

// Positions [0, keys) gathered into contiguous rows: g (keys, r + dr).
void mla_gather(const LatentRows& kv, int64_t keys, std::vector<float>& g);

// For query rows i in [0, rows) (q + i·ldq, r + dr values), which see positions [0, first + i·step] of g:
// out + i·ldo (r values) = softmax(scale · q_i · gᵀ) · g[:, :r]. step 0: the heads of one token; step 1: one head
// over consecutive tokens. scores: scratch. OpenBLAS sgemm on the calling thread, query rows 64 at a time.
void mla_attend(const float* q, int64_t rows, int64_t ldq, int64_t first, int64_t step, const float* g, int64_t r,
                int64_t dr, float scale, std::vector<float>& scores, float* out, int64_t ldo);

// The same, expanded (as transformers computes it) for one head over consecutive tokens: row i sees positions
// [0, first + i]; q rows are [q_nope (dn), q_pe (dr)] (ldq apart), k (keys, dn) and v (keys, dv) the head's keys and
// values expanded from g's latents, g[:, r:] the shared rope keys. out + i·ldo: dv values.
void mla_attend_expanded(const float* q, int64_t rows, int64_t ldq, int64_t first, const float* g, const float* k,
                         const float* v, int64_t r, int64_t dr, int64_t dn, int64_t dv, float scale,
                         std::vector<float>& scores, float* out, int64_t ldo);

}  // namespace meshlm
