#include "app/result_sink.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "comm/comm.h"
#include "core/check.h"

namespace meshlm {
namespace {
constexpr int kTagDone = 21;  // driver of replica d > 0 -> world rank 0: one finished request

// Message: index, line length, row length (uint64 each), the line, the row (MessagePack, may be empty), logits
// (float, the rest).
constexpr size_t kHead = 24;

std::string pack_row(const ResultRow* row) {
  if (!row) return "";
  const nlohmann::json j = {{"id", row->id}, {"finish", row->finish_reason}, {"tokens", row->tokens},
                            {"prompt", row->prompt_tokens}, {"times", {row->queue_s, row->ttft_s, row->decode_s}},
                            {"chosen", row->chosen_logprob}, {"top_ids", row->top_ids}, {"top", row->top_logprobs}};
  const std::vector<uint8_t> bytes = nlohmann::json::to_msgpack(j);
  return std::string(bytes.begin(), bytes.end());
}

ResultRow unpack_row(const uint8_t* data, size_t n) {
  const nlohmann::json j = nlohmann::json::from_msgpack(data, data + n);
  ResultRow r;
  r.id = j["id"].get<std::string>();
  r.finish_reason = j["finish"].get<std::string>();
  r.tokens = j["tokens"].get<std::vector<int>>();
  r.prompt_tokens = j["prompt"].get<int32_t>();
  r.queue_s = j["times"][0], r.ttft_s = j["times"][1], r.decode_s = j["times"][2];
  r.chosen_logprob = j["chosen"].get<std::vector<float>>();
  r.top_ids = j["top_ids"].get<std::vector<int>>();
  r.top_logprobs = j["top"].get<std::vector<float>>();
  return r;
}

std::vector<uint8_t> pack(size_t index, const std::string& line, const std::string& row,
                          const std::vector<float>& logits) {
  std::vector<uint8_t> out(kHead + line.size() + row.size() + logits.size() * sizeof(float));
  const uint64_t head[3] = {index, line.size(), row.size()};
  std::memcpy(out.data(), head, kHead);
  std::memcpy(out.data() + kHead, line.data(), line.size());
  std::memcpy(out.data() + kHead + line.size(), row.data(), row.size());
  if (!logits.empty())
    std::memcpy(out.data() + kHead + line.size() + row.size(), logits.data(), logits.size() * sizeof(float));
  return out;
}
}  // namespace

ResultSink::ResultSink(Group& world, const std::string& output_path, std::vector<std::string> ids,
                       bool in_input_order, bool append, std::unique_ptr<LogitsDump> dump,
                       std::unique_ptr<H5Results> results)
    : world_(world), ids_(std::move(ids)), dump_(std::move(dump)), results_(std::move(results)) {
  if (world_.rank() == 0) writer_ = std::make_unique<OrderedJsonlWriter>(output_path, in_input_order, append);
}

ResultSink::~ResultSink() {
  for (auto& [buf, req] : sending_) Group::wait(req);
}

void ResultSink::put(size_t index, const std::string& line, const std::vector<float>& logits, const ResultRow* row) {
  if (world_.rank() == 0) return write(index, line, logits.data(), int64_t(logits.size()), row);
  sending_.remove_if([](auto& s) {
    int done = 0;
    MPI_CHECK(MPI_Test(&s.second, &done, MPI_STATUS_IGNORE));
    return done != 0;
  });
  sending_.emplace_back(pack(index, line, pack_row(row), logits), MPI_REQUEST_NULL);
  auto& [buf, req] = sending_.back();
  req = world_.isend(buf.data(), int64_t(buf.size()), 0, kTagDone);
}

void ResultSink::write(size_t index, std::string line, const float* logits, int64_t n, const ResultRow* row) {
  MESH_CHECK(index < ids_.size(), "result for request ", index, " of ", ids_.size());
  if (dump_ && n > 0) dump_->write(ids_[index], logits, n);
  if (row && results_) results_->append(*row);
  writer_->put(index, std::move(line));
  ++written_;
  if (row) tokens_ += int64_t(row->tokens.size());
}

void ResultSink::receive_one() {
  world_.recv_bytes(in_, MPI_ANY_SOURCE, kTagDone);
  MESH_CHECK(in_.size() >= kHead, "malformed result message");
  uint64_t head[3];
  std::memcpy(head, in_.data(), kHead);
  const size_t body = kHead + head[1] + head[2];
  MESH_CHECK(body <= in_.size() && (in_.size() - body) % sizeof(float) == 0, "malformed result message");
  std::string line(reinterpret_cast<const char*>(in_.data() + kHead), head[1]);
  ResultRow row;
  if (head[2] > 0) row = unpack_row(in_.data() + kHead + head[1], head[2]);
  std::vector<float> logits((in_.size() - body) / sizeof(float));
  if (!logits.empty()) std::memcpy(logits.data(), in_.data() + body, logits.size() * sizeof(float));
  write(size_t(head[0]), std::move(line), logits.data(), int64_t(logits.size()), head[2] > 0 ? &row : nullptr);
}

void ResultSink::poll() {
  if (world_.rank() != 0 || world_.size() == 1) return;
  while (world_.probe(MPI_ANY_SOURCE, kTagDone)) receive_one();
}

void ResultSink::finish(size_t total) {
  if (world_.rank() != 0) {
    for (auto& [buf, req] : sending_) Group::wait(req);
    sending_.clear();
    return;
  }
  while (written_ < total) receive_one();
}

}  // namespace meshlm
