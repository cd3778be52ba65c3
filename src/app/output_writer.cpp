#include "app/output_writer.h"

#include <cerrno>
#include <cstring>

#include "core/check.h"

namespace meshlm {

OrderedJsonlWriter::OrderedJsonlWriter(const std::string& path) : path_(path) {
  file_ = path == "-" ? stdout : std::fopen(path.c_str(), "w");
  MESH_CHECK(file_ != nullptr, path, ": cannot open for writing: ", std::strerror(errno));
}

OrderedJsonlWriter::~OrderedJsonlWriter() {
  if (file_ && file_ != stdout) std::fclose(file_);
}

void OrderedJsonlWriter::put(size_t index, std::string line) {
  pending_.emplace(index, std::move(line));
  for (auto it = pending_.begin(); it != pending_.end() && it->first == next_; it = pending_.erase(it), ++next_) {
    MESH_CHECK(std::fputs(it->second.c_str(), file_) >= 0 && std::fputc('\n', file_) != EOF, path_,
               ": write failed: ", std::strerror(errno));
  }
  MESH_CHECK(std::fflush(file_) == 0, path_, ": write failed: ", std::strerror(errno));
}

}  // namespace meshlm
