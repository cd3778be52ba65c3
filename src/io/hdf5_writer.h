// HDF5 output: /logits/<request id> float32 datasets of shape [vocab_size] (--dump-logits).
#pragma once
#include <cstdint>
#include <set>
#include <string>

namespace meshlm {

class LogitsDump {
 public:
  explicit LogitsDump(const std::string& path);  // creates (truncates) the file and the /logits group
  // --resume: opens the earlier run's file (a fresh one when done_ids is empty) and keeps writing; a request written
  // again replaces its dataset. Throws Error if it cannot be opened or lacks one of done_ids (requests the JSONL
  // output already holds).
  LogitsDump(const std::string& path, const std::set<std::string>& done_ids);
  ~LogitsDump();
  LogitsDump(const LogitsDump&) = delete;
  LogitsDump& operator=(const LogitsDump&) = delete;

  void write(const std::string& id, const float* logits, int64_t n);

  // HDF5 link names cannot contain '/' or be "." ; returns an empty string if `id` is usable, else the reason.
  static std::string invalid_name(const std::string& id);

 private:
  void create();

  std::string path_;
  int64_t file_ = -1, group_ = -1;
};

}  // namespace meshlm
