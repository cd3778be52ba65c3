#include "kernels/mla_attention.h"

#include <cblas.h>

#include <algorithm>
#include <cstring>

#include "kernels/attention.h"
#include "kernels/vexp.h"

namespace meshlm {

void mla_gather(const LatentRows& kv, int64_t keys, std::vector<float>& g) {
  const int64_t width = kv.r + kv.dr, B = kv.block_tokens;
  g.resize(size_t(keys * width));
  for (int64_t t0 = 0; t0 < keys; t0 += B) {  // a block's rows are contiguous
    const int64_t n = std::min(B, keys - t0);
    std::memcpy(&g[size_t(t0 * width)], kv.rows + int64_t(kv.table[t0 / B]) * B * width,
                size_t(n * width) * sizeof(float));
  }
}

namespace {
// Rows i of s (m, keys) see columns [0, first + i·step].
void causal_softmax(float* s, int64_t m, int64_t keys, int64_t first, int64_t step) {
  for (int64_t i = 0; i < m; ++i) softmax_masked(s + i * keys, keys, 0, first + i * step);
}
constexpr int64_t kRows = 64;  // query rows per block: each block's keys end at its own last position
}  // namespace

void mla_attend(const float* q, int64_t rows, int64_t ldq, int64_t first, int64_t step, const float* g, int64_t r,
                int64_t dr, float scale, std::vector<float>& scores, float* out, int64_t ldo) {
  const int64_t width = r + dr;
  for (int64_t b0 = 0; b0 < rows; b0 += kRows) {
    const int64_t m = std::min(kRows, rows - b0), keys = first + (b0 + m - 1) * step + 1;
    if (scores.size() < size_t(m * keys)) scores.resize(size_t(m * keys));
    float* s = scores.data();  // (m, keys)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(keys), int(width), scale, q + b0 * ldq, int(ldq),
                g, int(width), 0.0f, s, int(keys));
    causal_softmax(s, m, keys, first + b0 * step, step);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(m), int(r), int(keys), 1.0f, s, int(keys), g, int(width),
                0.0f, out + b0 * ldo, int(ldo));
  }
}

void mla_attend_expanded(const float* q, int64_t rows, int64_t ldq, int64_t first, const float* g, const float* k,
                         const float* v, int64_t r, int64_t dr, int64_t dn, int64_t dv, float scale,
                         std::vector<float>& scores, float* out, int64_t ldo) {
  const int64_t width = r + dr;
  for (int64_t b0 = 0; b0 < rows; b0 += kRows) {
    const int64_t m = std::min(kRows, rows - b0), keys = first + b0 + m;
    if (scores.size() < size_t(m * keys)) scores.resize(size_t(m * keys));
    float* s = scores.data();  // (m, keys) = q_nope·k_nopeᵀ + q_pe·k_peᵀ, scaled
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(keys), int(dn), scale, q + b0 * ldq, int(ldq), k,
                int(dn), 0.0f, s, int(keys));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(keys), int(dr), scale, q + b0 * ldq + dn, int(ldq),
                g + r, int(width), 1.0f, s, int(keys));
    causal_softmax(s, m, keys, first + b0, 1);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(m), int(dv), int(keys), 1.0f, s, int(keys), v, int(dv),
                0.0f, out + b0 * ldo, int(ldo));
  }
}

}  // namespace meshlm
