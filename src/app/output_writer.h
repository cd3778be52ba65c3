// Writes one JSON line per request in input order, flushing each line as soon as all earlier ones are written.
#pragma once
#include <cstdio>
#include <map>
#include <string>

namespace meshlm {

class OrderedJsonlWriter {
 public:
  explicit OrderedJsonlWriter(const std::string& path);  // "-" is stdout
  ~OrderedJsonlWriter();
  OrderedJsonlWriter(const OrderedJsonlWriter&) = delete;
  OrderedJsonlWriter& operator=(const OrderedJsonlWriter&) = delete;

  void put(size_t index, std::string line);  // line without the newline
  size_t written() const { return next_; }

 private:
  std::string path_;
  FILE* file_ = nullptr;
  size_t next_ = 0;
  std::map<size_t, std::string> pending_;
};

}  // namespace meshlm
