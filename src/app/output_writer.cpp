#include "app/output_writer.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "app/interrupt.h"
#include "core/check.h"

namespace meshlm {

OrderedJsonlWriter::OrderedJsonlWriter(const std::string& path, bool in_input_order, bool append)
    : path_(path), in_order_(in_input_order) {
  file_ = path == "-" ? stdout : std::fopen(path.c_str(), append ? "a" : "w");
  MESH_CHECK(file_ != nullptr, path, ": cannot open for writing: ", std::strerror(errno));
  if (file_ != stdout) set_interrupt_sync_fd(::fileno(file_));
}

OrderedJsonlWriter::~OrderedJsonlWriter() {
  if (!file_ || file_ == stdout) return;
  set_interrupt_sync_fd(-1);
  sync();
  std::fclose(file_);
}

void OrderedJsonlWriter::put(size_t index, std::string line) {
  if (!in_order_) {
    write_line(line);
  } else {
    pending_.emplace(index, std::move(line));
    for (auto it = pending_.begin(); it != pending_.end() && it->first == next_; it = pending_.erase(it), ++next_)
      write_line(it->second);
  }
  MESH_CHECK(std::fflush(file_) == 0, path_, ": write failed: ", std::strerror(errno));
  if (unsynced_ >= 64 || since_sync_.seconds() >= 1.0) sync();
}

void OrderedJsonlWriter::write_line(const std::string& line) {
  MESH_CHECK(std::fputs(line.c_str(), file_) >= 0 && std::fputc('\n', file_) != EOF, path_, ": write failed: ",
             std::strerror(errno));
  ++written_;
  ++unsynced_;
}

void OrderedJsonlWriter::sync() {
  if (file_ == stdout || unsynced_ == 0) return;
  std::fflush(file_);
  ::fsync(::fileno(file_));
  unsynced_ = 0;
  since_sync_ = Timer();
}

}  // namespace meshlm
