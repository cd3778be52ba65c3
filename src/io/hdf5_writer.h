// HDF5 output: /logits/<request id> float32 datasets of shape [vocab_size] (--dump-logits).
#pragma once
#include <cstdint>
#include <string>

namespace meshlm {

class LogitsDump {
 public:
  explicit LogitsDump(const std::string& path);  // creates (truncates) the file and the /logits group
  ~LogitsDump();
  LogitsDump(const LogitsDump&) = delete;
  LogitsDump& operator=(const LogitsDump&) = delete;

  void write(const std::string& id, const float* logits, int64_t n);

  // HDF5 link names cannot contain '/' or be "." ; returns an empty string if `id` is usable, else the reason.
  static std::string invalid_name(const std::string& id);

 private:
  std::string path_;
  int64_t file_ = -1, group_ = -1;
};

}  // namespace meshlm
