#include "app/result_sink.h"

#include <cstring>

#include "core/check.h"

namespace meshlm {
namespace {
constexpr int kTagDone = 21;  // driver of replica d > 0 -> world rank 0: one finished request

// Message: index, generated tokens, line length (uint64 each), line bytes, logits (float, the rest).
constexpr size_t kHead = 24;
std::vector<uint8_t> pack(size_t index, int64_t tokens, const std::string& line, const std::vector<float>& logits) {
  std::vector<uint8_t> out(kHead + line.size() + logits.size() * sizeof(float));
  const uint64_t head[3] = {index, uint64_t(tokens), line.size()};
  std::memcpy(out.data(), head, kHead);
  std::memcpy(out.data() + kHead, line.data(), line.size());
  if (!logits.empty()) std::memcpy(out.data() + kHead + line.size(), logits.data(), logits.size() * sizeof(float));
  return out;
}
}  // namespace

ResultSink::ResultSink(Group& world, const std::string& output_path, const std::string& dump_path,
                       std::vector<std::string> ids, bool in_input_order, bool append)
    : world_(world), ids_(std::move(ids)) {
  if (world_.rank() != 0) return;
  writer_ = std::make_unique<OrderedJsonlWriter>(output_path, in_input_order, append);
  if (!dump_path.empty()) dump_ = std::make_unique<LogitsDump>(dump_path);
}

ResultSink::~ResultSink() {
  for (auto& [buf, req] : sending_) Group::wait(req);
}

void ResultSink::put(size_t index, const std::string& line, const std::vector<float>& logits, int64_t tokens) {
  if (world_.rank() == 0) return write(index, line, logits.data(), int64_t(logits.size()), tokens);
  sending_.remove_if([](auto& s) {
    int done = 0;
    MPI_Test(&s.second, &done, MPI_STATUS_IGNORE);
    return done != 0;
  });
  sending_.emplace_back(pack(index, tokens, line, logits), MPI_REQUEST_NULL);
  auto& [buf, req] = sending_.back();
  req = world_.isend(buf.data(), int64_t(buf.size()), 0, kTagDone);
}

void ResultSink::write(size_t index, std::string line, const float* logits, int64_t n, int64_t tokens) {
  MESH_CHECK(index < ids_.size(), "result for request ", index, " of ", ids_.size());
  if (dump_ && n > 0) dump_->write(ids_[index], logits, n);
  writer_->put(index, std::move(line));
  ++written_;
  tokens_ += tokens;
}

void ResultSink::receive_one() {
  world_.recv_bytes(in_, MPI_ANY_SOURCE, kTagDone);
  MESH_CHECK(in_.size() >= kHead, "malformed result message");
  uint64_t head[3];
  std::memcpy(head, in_.data(), kHead);
  MESH_CHECK(kHead + head[2] <= in_.size() && (in_.size() - kHead - head[2]) % sizeof(float) == 0,
             "malformed result message");
  std::string line(reinterpret_cast<const char*>(in_.data() + kHead), head[2]);
  std::vector<float> logits((in_.size() - kHead - head[2]) / sizeof(float));
  if (!logits.empty()) std::memcpy(logits.data(), in_.data() + kHead + head[2], logits.size() * sizeof(float));
  write(size_t(head[0]), std::move(line), logits.data(), int64_t(logits.size()), int64_t(head[1]));
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
