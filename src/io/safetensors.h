// One safetensors file: a validated header, and reads of a tensor's row range or column range (pread, nothing else).
//
// File layout: [u64 little-endian header length N][N bytes of JSON header][data section].
// Each header entry: name -> {"dtype", "shape", "data_offsets": [begin, end)} relative to the data section.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/dtype.h"

namespace meshlm {

struct TensorInfo {
  std::string name;
  std::string dtype_name;      // as stored ("BF16", "I64", ...)
  bool is_float = false;       // F32, F16 or BF16: then `dtype` is valid
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t offset = 0;         // absolute byte offset in the file
  uint64_t nbytes = 0;

  int64_t numel() const;
  int64_t rows() const { return shape.empty() ? 1 : shape[0]; }  // a 1-D tensor is a column of rows
  int64_t cols() const { return rows() == 0 ? 0 : numel() / rows(); }
};

// "[512, 64]": a shape as error messages show it.
std::string shape_string(const std::vector<int64_t>& shape);

class SafetensorsFile {
 public:
  static constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

  explicit SafetensorsFile(const std::string& path);  // throws Error naming the file and what is wrong
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find(const std::string& name) const;  // nullptr if absent

  // Rows [row_begin, row_end) of `t` (viewed as rows x cols) into dst: (row_end - row_begin, cols), stored dtype.
  void read_rows(const TensorInfo& t, int64_t row_begin, int64_t row_end, void* dst) const;

  // Elements [row_begin, row_end) x [col_begin, col_end) of `t` viewed as (numel / last dim, last dim) (so a 3-D
  // [E, out, in] tensor's expert e is rows [e·out, (e+1)·out)) into dst, in the stored dtype: one read for whole
  // rows, else one per row.
  void read_block(const TensorInfo& t, int64_t row_begin, int64_t row_end, int64_t col_begin, int64_t col_end,
                  void* dst) const;

  uint64_t bytes_read() const { return bytes_read_; }

  // A half-open byte range of the file.
  struct ByteRange {
    uint64_t begin = 0, end = 0;
  };
  // From now on (to == nullptr: no longer) reads append the ranges they would read to `to` and fill the
  // destination with zeros, reading nothing: what a rank will read, found before the bytes are on this host.
  void record_reads(std::vector<ByteRange>* to) const { record_ = to; }

 private:
  void pread_exact(void* dst, uint64_t nbytes, uint64_t offset) const;
  void read_header();
  void parse_header(const std::string& header, uint64_t data_begin, uint64_t file_size);

  std::string path_;
  int fd_ = -1;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, size_t> by_name_;
  mutable uint64_t bytes_read_ = 0;
  mutable std::vector<ByteRange>* record_ = nullptr;
};

}  // namespace meshlm
