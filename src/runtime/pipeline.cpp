#include "runtime/pipeline.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "comm/stall_watch.h"
#include "core/check.h"
#include "core/timer.h"
#include "kernels/matmul.h"
#include "runtime/step_wire.h"

namespace meshlm {
namespace {
constexpr int kTagStep = 11;    // stage -> next stage: a step with its activations
constexpr int kTagResult = 12;  // last stage -> driver: sampled tokens
}  // namespace

Pipeline::Pipeline(Transformer& model, Groups& groups, int micro_batches, WireDType wire)
    : model_(model), groups_(groups), layout_(model.layout()), micro_batches_(micro_batches), wire_(wire),
      out_(size_t(micro_batches)), out_req_(size_t(micro_batches), MPI_REQUEST_NULL),
      results_(size_t(micro_batches)) {
  MESH_CHECK(micro_batches >= 1, "at least one micro-batch is needed");
  if (layout_.pp_size > 1) set_matmul_progress(&Pipeline::progress, this);
}

void Pipeline::progress(void* self) {
  for (MPI_Request& r : static_cast<Pipeline*>(self)->out_req_) Group::test(r);
}

Pipeline::~Pipeline() {
  if (layout_.pp_size > 1) set_matmul_progress(nullptr, nullptr);
  for (MPI_Request& r : out_req_)
    if (r != MPI_REQUEST_NULL) MPI_Cancel(&r), MPI_Request_free(&r);
}

std::vector<uint8_t>& Pipeline::outbox(int mb) {
  MESH_CHECK(mb >= 0 && mb < micro_batches_, "micro-batch ", mb, " out of range");
  Group::wait(out_req_[size_t(mb)]);  // its previous message has been taken
  return out_[size_t(mb)];
}

void Pipeline::submit(int mb, const StepBatch& batch) {
  if (groups_.tp.size() > 1) {
    StepHeader h;
    h.micro_batch = mb;
    encode_step(h, batch, nullptr, msg_);
    groups_.tp.bcast_bytes(msg_, 0);
  }
  run_stage(mb, batch);
}

const StepResult& Pipeline::wait(int mb) {
  if (layout_.pp_size > 1) {
    groups_.replica.recv_bytes(msg_, layout_.stage_root(layout_.pp_size - 1), kTagResult);
    const int got = decode_result(msg_, results_[size_t(mb)]);
    MESH_CHECK(got == mb, "pipeline out of order: expected micro-batch ", mb, ", got ", got);
  }
  return results_[size_t(mb)];
}

void Pipeline::stop() {
  stop_message(msg_);
  if (groups_.tp.size() > 1) groups_.tp.bcast_bytes(msg_, 0);
  if (layout_.pp_size > 1) groups_.replica.send(msg_.data(), int64_t(msg_.size()), layout_.stage_root(1), kTagStep);
  for (MPI_Request& r : out_req_) Group::wait(r);
}

void Pipeline::serve() {
  const int64_t capacity = model_.max_step_tokens() * model_.config().dim;
  while (true) {
    if (layout_.tp_rank == 0) groups_.replica.recv_bytes(msg_, layout_.stage_root(layout_.pp_rank - 1), kTagStep);
    if (groups_.tp.size() > 1) groups_.tp.bcast_bytes(msg_, 0);
    const StepHeader h = decode_step(msg_, batch_, model_.activations(), capacity);
    if (h.kind == StepKind::kStop) {
      if (layout_.tp_rank == 0 && !layout_.last_stage())
        groups_.replica.send(msg_.data(), int64_t(msg_.size()), layout_.stage_root(layout_.pp_rank + 1), kTagStep);
      break;
    }
    run_stage(h.micro_batch, batch_);
  }
  for (MPI_Request& r : out_req_) Group::wait(r);
}

void Pipeline::run_stage(int mb, const StepBatch& batch) {
  const Timer timer;
  const double comm_before = comm_stats().seconds;
  if (layout_.first_stage()) model_.embed(batch);
  model_.run_layers(batch);
  if (layout_.last_stage()) {
    sample(batch, result_);
    if (layout_.tp_rank == 0) {
      if (layout_.pp_size == 1) {
        std::swap(results_[size_t(mb)], result_);
      } else {
        std::vector<uint8_t>& out = outbox(mb);
        encode_result(mb, result_, out);
        out_req_[size_t(mb)] = groups_.replica.isend(out.data(), int64_t(out.size()), 0, kTagResult);
      }
    }
  } else if (layout_.tp_rank == 0) {
    StepHeader h;
    h.micro_batch = mb;
    h.wire = wire_;
    h.n_activations = batch.size() * model_.config().dim;
    std::vector<uint8_t>& out = outbox(mb);
    encode_step(h, batch, model_.activations(), out);
    out_req_[size_t(mb)] =
        groups_.replica.isend(out.data(), int64_t(out.size()), layout_.stage_root(layout_.pp_rank + 1), kTagStep);
  }
  compute_s_ += timer.seconds() - (comm_stats().seconds - comm_before);
  stall_watch().step_took(timer.seconds());
}

// Log-probabilities of the raw distribution (before temperature and filters): the chosen token's, and the k
// largest, ties broken by the lower id.
void Pipeline::add_logprobs(const float* row, int vocab, int chosen, int k, StepResult& out) {
  const float top = row[argmax(row, vocab)];
  double sum = 0;
  for (int v = 0; v < vocab; ++v) sum += std::exp(double(row[v]) - top);
  const double log_z = top + std::log(sum);
  out.chosen_logprob.push_back(float(row[chosen] - log_z));
  k = std::min(k, vocab);
  order_.resize(size_t(vocab));
  for (int v = 0; v < vocab; ++v) order_[size_t(v)] = v;
  std::partial_sort(order_.begin(), order_.begin() + k, order_.end(),
                    [&](int a, int b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
  for (int i = 0; i < k; ++i) {
    out.top_ids.push_back(order_[size_t(i)]);
    out.top_logprobs.push_back(float(row[order_[size_t(i)]] - log_z));
  }
}

// Greedy rows need only the winner: each tensor rank finds its slice's best and one MAXLOC reduce picks the lowest
// id among the largest, as argmax over the whole row would. Sampled rows (and rows whose logits are dumped) are
// gathered whole at tensor rank 0, so the sampler sees exactly the logits a single rank would.
void Pipeline::sample(const StepBatch& batch, StepResult& out) {
  const float* logits = model_.head(batch);  // (m, vocab_local)
  const int m = int(batch.logit_rows.size());
  const int vl = int(layout_.vocab.size()), vocab = model_.config().vocab_size;
  const bool split = groups_.tp.size() > 1, root = layout_.tp_rank == 0;
  maxloc_.resize(size_t(m));
  full_rows_.clear();
  for (int r = 0; r < m; ++r) {
    const float* row = logits + size_t(r) * size_t(vl);
    const int best = argmax(row, vl);
    maxloc_[size_t(r)] = {row[best], int(layout_.vocab.begin) + best};
    const RowSpec& spec = batch.rows[size_t(r)];
    if (spec.sampling.temperature > 0 || spec.want_logits || spec.top_logprobs > 0) full_rows_.push_back(r);
  }
  const int k = int(full_rows_.size());
  const float* full = logits;  // (k, vocab) rows in full_rows_ order when gathered; the local logits otherwise
  if (split) {
    groups_.tp.reduce_maxloc(maxloc_, 0);
    if (k > 0) {
      packed_.resize(size_t(k) * size_t(vl));
      for (int i = 0; i < k; ++i)
        std::memcpy(&packed_[size_t(i) * size_t(vl)], logits + size_t(full_rows_[size_t(i)]) * size_t(vl),
                    size_t(vl) * sizeof(float));
      counts_.resize(size_t(groups_.tp.size()));
      for (int t = 0; t < groups_.tp.size(); ++t)
        counts_[size_t(t)] = k * int(even_split(vocab, groups_.tp.size(), t).size());
      if (root) gathered_.resize(size_t(k) * size_t(vocab));
      groups_.tp.gatherv(packed_.data(), int64_t(packed_.size()), gathered_.data(), counts_, 0);
      if (root) {  // gathered: tensor rank t's block (k, vocab_t); reorder into rows of the whole vocabulary
        full_.resize(size_t(k) * size_t(vocab));
        int64_t at = 0;
        for (int t = 0; t < groups_.tp.size(); ++t) {
          const Range part = even_split(vocab, groups_.tp.size(), t);
          for (int i = 0; i < k; ++i, at += part.size())
            std::memcpy(&full_[size_t(i) * size_t(vocab) + size_t(part.begin)], &gathered_[size_t(at)],
                        size_t(part.size()) * sizeof(float));
        }
        full = full_.data();
      }
    }
  }
  if (!root) return;
  out.tokens.resize(size_t(m));
  out.rng_states.resize(size_t(m));
  out.logits.clear();
  out.chosen_logprob.clear();
  out.top_ids.clear();
  out.top_logprobs.clear();
  for (int r = 0, i = 0; r < m; ++r) {
    const RowSpec& spec = batch.rows[size_t(r)];
    out.rng_states[size_t(r)] = spec.rng_state;
    const bool needs_full = i < k && full_rows_[size_t(i)] == r;
    if (!needs_full) {
      out.tokens[size_t(r)] = maxloc_[size_t(r)].index;
      continue;
    }
    const float* row = split ? full + size_t(i) * size_t(vocab) : full + size_t(r) * size_t(vocab);
    Rng rng(spec.rng_state);
    out.tokens[size_t(r)] = meshlm::sample(row, vocab, spec.sampling, rng, scratch_);
    out.rng_states[size_t(r)] = rng.state();
    if (spec.want_logits) out.logits.insert(out.logits.end(), row, row + vocab);
    if (spec.top_logprobs > 0) add_logprobs(row, vocab, out.tokens[size_t(r)], spec.top_logprobs, out);
    ++i;
  }
}

}  // namespace meshlm
