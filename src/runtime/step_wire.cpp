#include "runtime/step_wire.h"

#include <cstring>

#include "core/check.h"
#include "core/dtype.h"

namespace meshlm {
namespace {

class Writer {
 public:
  explicit Writer(std::vector<uint8_t>& out) : out_(out) { out_.clear(); }
  template <typename T>
  void put(const T& v) { raw(&v, sizeof v); }
  template <typename T>
  void put_vec(const std::vector<T>& v) {
    put(int64_t(v.size()));
    raw(v.data(), v.size() * sizeof(T));
  }
  template <typename... V>
  void put_vecs(const V&... vs) {
    (put_vec(vs), ...);
  }
  void raw(const void* p, size_t n) {
    const size_t at = out_.size();
    out_.resize(at + n);
    if (n) std::memcpy(out_.data() + at, p, n);
  }

 private:
  std::vector<uint8_t>& out_;
};

class Reader {
 public:
  explicit Reader(const std::vector<uint8_t>& in) : in_(in) {}
  template <typename T>
  T get() {
    T v;
    raw(&v, sizeof v);
    return v;
  }
  template <typename... V>
  void get_vecs(V&... vs) {
    (get_vec(vs), ...);
  }
  template <typename T>
  void get_vec(std::vector<T>& v) {
    const int64_t n = get<int64_t>();
    MESH_CHECK(n >= 0 && size_t(n) <= (in_.size() - pos_) / sizeof(T), "malformed step message");
    v.resize(size_t(n));
    raw(v.data(), size_t(n) * sizeof(T));
  }
  void raw(void* p, size_t n) {
    MESH_CHECK(n <= in_.size() - pos_, "malformed step message: truncated");
    if (n) std::memcpy(p, in_.data() + pos_, n);
    pos_ += n;
  }

 private:
  const std::vector<uint8_t>& in_;
  size_t pos_ = 0;
};

thread_local std::vector<uint16_t> bf16_scratch;  // activations as received, before widening

}  // namespace

void encode_step(const StepHeader& h, const StepBatch& b, const float* x, std::vector<uint8_t>& out) {
  Writer w(out);
  w.put(h);
  w.put_vecs(b.tokens, b.positions, b.seqs, b.tables, b.blocks, b.logit_rows, b.rows);  // RowSpec is plain data
  if (h.wire == WireDType::kF32) return w.raw(x, size_t(h.n_activations) * sizeof(float));
  const size_t at = out.size();
  out.resize(at + size_t(h.n_activations) * sizeof(uint16_t));
  f32_to_bf16(x, reinterpret_cast<uint16_t*>(out.data() + at), size_t(h.n_activations));
}

StepHeader decode_step(const std::vector<uint8_t>& in, StepBatch& b, float* x, int64_t x_capacity) {
  Reader r(in);
  const StepHeader h = r.get<StepHeader>();
  if (h.kind == StepKind::kStop) return h;
  r.get_vecs(b.tokens, b.positions, b.seqs, b.tables, b.blocks, b.logit_rows, b.rows);
  MESH_CHECK(b.positions.size() == b.tokens.size() && b.seqs.size() == b.tokens.size() &&
                 b.rows.size() == b.logit_rows.size() && h.n_activations >= 0 && h.n_activations <= x_capacity,
             "malformed step message");
  MESH_CHECK(h.wire == WireDType::kF32 || h.wire == WireDType::kBF16, "malformed step message: wire dtype");
  if (h.wire == WireDType::kF32) {
    r.raw(x, size_t(h.n_activations) * sizeof(float));
  } else {
    bf16_scratch.resize(size_t(h.n_activations));
    r.raw(bf16_scratch.data(), bf16_scratch.size() * sizeof(uint16_t));
    to_f32(bf16_scratch.data(), DType::kBF16, x, bf16_scratch.size());
  }
  return h;
}

StepHeader stop_message(std::vector<uint8_t>& out) {
  StepHeader h;
  h.kind = StepKind::kStop;
  Writer w(out);
  w.put(h);
  return h;
}

void encode_result(int32_t micro_batch, const StepResult& res, std::vector<uint8_t>& out) {
  Writer w(out);
  w.put(micro_batch);
  w.put_vecs(res.tokens, res.rng_states, res.logits, res.chosen_logprob, res.top_ids, res.top_logprobs);
}

int32_t decode_result(const std::vector<uint8_t>& in, StepResult& res) {
  Reader r(in);
  const int32_t mb = r.get<int32_t>();
  r.get_vecs(res.tokens, res.rng_states, res.logits, res.chosen_logprob, res.top_ids, res.top_logprobs);
  return mb;
}

}  // namespace meshlm
