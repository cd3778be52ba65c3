// Writes one JSON line per request: as each finishes (completion order), or in input order, holding a line
// until all earlier ones are written. Every line is flushed at once; fsync runs every 64 lines or second and at
// the end, so that a killed job loses at most what was still running.
#pragma once
#include <cstdio>
#include <map>
#include <string>

#include "core/timer.h"

namespace meshlm {

class OrderedJsonlWriter {
 public:
  // path "-" is stdout. append: keep what the file holds (--resume). in_input_order: indices 0, 1, 2 ... in order.
  explicit OrderedJsonlWriter(const std::string& path, bool in_input_order = true, bool append = false);
  ~OrderedJsonlWriter();
  OrderedJsonlWriter(const OrderedJsonlWriter&) = delete;
  OrderedJsonlWriter& operator=(const OrderedJsonlWriter&) = delete;

  void put(size_t index, std::string line);  // line without the newline
  size_t written() const { return written_; }

 private:
  void write_line(const std::string& line);
  void sync();

  std::string path_;
  FILE* file_ = nullptr;
  bool in_order_;
  size_t next_ = 0, written_ = 0, unsynced_ = 0;
  Timer since_sync_;
  std::map<size_t, std::string> pending_;
};

}  // namespace meshlm
