#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/check.h"
#include "core/text_util.h"

namespace meshlm {
namespace {

// Element size of every safetensors dtype (so that any valid file validates, even if we can't compute with it).
int element_size(const std::string& dtype) {
  static const std::unordered_map<std::string, int> sizes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
      {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4},     {"F64", 8},     {"I64", 8}, {"U64", 8}};
  auto it = sizes.find(dtype);
  return it == sizes.end() ? 0 : it->second;
}

}  // namespace

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  MESH_CHECK(fd_ >= 0, path, ": cannot open: ", std::strerror(errno));
  try {  // a constructor that throws runs no destructor: close the file here (a fuzz run ran out of descriptors)
    read_header();
  } catch (...) {
    ::close(fd_);
    fd_ = -1;
    throw;
  }
}

void SafetensorsFile::read_header() {
  const std::string& path = path_;
  struct stat st {};
  MESH_CHECK(::fstat(fd_, &st) == 0, path, ": cannot stat: ", std::strerror(errno));
  const uint64_t file_size = uint64_t(st.st_size);
  MESH_CHECK(file_size >= 8, path, ": not a safetensors file (", file_size, " bytes, expected at least 8)");
  uint8_t len_bytes[8];
  pread_exact(len_bytes, 8, 0);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
  MESH_CHECK(header_len <= kMaxHeaderBytes, path, ": header length ", header_len, " exceeds the ",
             kMaxHeaderBytes, "-byte cap");
  MESH_CHECK(header_len <= file_size - 8, path, ": header length ", header_len, " runs past the end of the file (",
             file_size, " bytes)");
  std::string header(header_len, '\0');
  pread_exact(header.data(), header_len, 8);
  bytes_read_ = 0;  // the header is not weight bytes
  parse_header(header, 8 + header_len, file_size);
}

SafetensorsFile::~SafetensorsFile() {
  if (fd_ >= 0) ::close(fd_);
}

void SafetensorsFile::parse_header(const std::string& header, uint64_t data_begin, uint64_t file_size) {
  const nlohmann::ordered_json j = parse_json_object(header, path_ + ": header");
  const uint64_t data_size = file_size - data_begin;
  for (auto& item : j.items()) {
    // Not a structured binding: clang before 16 (Xcode 14's too) cannot capture one in a lambda.
    const std::string& name = item.key();
    const auto& entry = item.value();
    if (name == "__metadata__") continue;
    auto where = [&] { return path_ + ": tensor '" + name + "'"; };
    MESH_CHECK(entry.is_object() && entry.contains("dtype") && entry.contains("shape") &&
                   entry.contains("data_offsets"),
               where(), ": expected an object with dtype, shape and data_offsets");
    TensorInfo t;
    t.name = name;
    MESH_CHECK(entry["dtype"].is_string(), where(), ": dtype must be a string");
    t.dtype_name = entry["dtype"].get<std::string>();
    int esize = element_size(t.dtype_name);
    MESH_CHECK(esize > 0, where(), ": unknown dtype '", t.dtype_name, "'");
    if (t.dtype_name == "F32" || t.dtype_name == "F16" || t.dtype_name == "BF16") {
      t.is_float = true;
      t.dtype = t.dtype_name == "F32" ? DType::kF32 : t.dtype_name == "F16" ? DType::kF16 : DType::kBF16;
    }
    MESH_CHECK(entry["shape"].is_array(), where(), ": shape must be an array");
    for (auto& d : entry["shape"]) {
      MESH_CHECK(d.is_number_unsigned() && d.get<uint64_t>() < (1ull << 40), where(), ": bad shape entry ", d.dump());
      t.shape.push_back(d.get<int64_t>());
    }
    auto& off = entry["data_offsets"];
    MESH_CHECK(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(),
               where(), ": data_offsets must be [begin, end]");
    uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
    MESH_CHECK(begin <= end && end <= data_size, where(), ": data_offsets [", begin, ", ", end,
               ") fall outside the data section (", data_size, " bytes; is the file truncated?)");
    uint64_t expect = uint64_t(esize);  // bytes of shape × dtype, refused on overflow rather than wrapped
    for (int64_t d : t.shape)
      MESH_CHECK(!__builtin_mul_overflow(expect, uint64_t(d), &expect), where(), ": shape ", entry["shape"].dump(),
                 " holds more bytes than 2^64");
    MESH_CHECK(end - begin == expect, where(), ": ", t.dtype_name, " ", entry["shape"].dump(), " needs ", expect,
               " bytes but data_offsets span ", end - begin);
    t.offset = data_begin + begin;
    t.nbytes = end - begin;
    by_name_[name] = tensors_.size();
    tensors_.push_back(std::move(t));
  }
  // Non-overlapping: sort by offset and check neighbours.
  std::vector<const TensorInfo*> order;
  for (auto& t : tensors_) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < order.size(); ++i) {
    MESH_CHECK(order[i - 1]->offset + order[i - 1]->nbytes <= order[i]->offset || order[i]->nbytes == 0 ||
                   order[i - 1]->nbytes == 0,
               path_, ": tensors '", order[i - 1]->name, "' and '", order[i]->name, "' overlap");
  }
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

void SafetensorsFile::pread_exact(void* dst, uint64_t nbytes, uint64_t offset) const {
  if (record_) {
    record_->push_back({offset, offset + nbytes});
    std::memset(dst, 0, nbytes);
    return;
  }
  auto* p = static_cast<char*>(dst);
  while (nbytes > 0) {
    ssize_t got = ::pread(fd_, p, nbytes, off_t(offset));
    if (got < 0 && errno == EINTR) continue;
    MESH_CHECK(got > 0, path_, ": read failed at byte ", offset, ": ", got < 0 ? std::strerror(errno) : "unexpected end of file");
    p += got;
    nbytes -= uint64_t(got);
    offset += uint64_t(got);
    bytes_read_ += uint64_t(got);
  }
}

void SafetensorsFile::read_rows(const TensorInfo& t, int64_t row_begin, int64_t row_end, void* dst) const {
  MESH_CHECK(0 <= row_begin && row_begin <= row_end && row_end <= t.rows(), path_, ": tensor '", t.name,
             "': row range [", row_begin, ", ", row_end, ") outside [0, ", t.rows(), ")");
  const uint64_t row_bytes = t.rows() == 0 ? 0 : t.nbytes / uint64_t(t.rows());
  pread_exact(dst, row_bytes * uint64_t(row_end - row_begin), t.offset + row_bytes * uint64_t(row_begin));
}

void SafetensorsFile::read_block(const TensorInfo& t, int64_t row_begin, int64_t row_end, int64_t col_begin,
                                 int64_t col_end, void* dst) const {
  const int64_t cols = t.shape.empty() ? 1 : t.shape.back(), rows = cols == 0 ? 0 : t.numel() / cols;
  MESH_CHECK(0 <= row_begin && row_begin <= row_end && row_end <= rows && 0 <= col_begin && col_begin <= col_end &&
                 col_end <= cols,
             path_, ": tensor '", t.name, "': block [", row_begin, ", ", row_end, ") x [", col_begin, ", ", col_end,
             ") outside ", rows, " x ", cols);
  const uint64_t esize = uint64_t(element_size(t.dtype_name)), row_bytes = esize * uint64_t(cols);
  const uint64_t part = esize * uint64_t(col_end - col_begin);
  auto* out = static_cast<char*>(dst);
  if (col_begin == 0 && col_end == cols)
    return pread_exact(out, row_bytes * uint64_t(row_end - row_begin), t.offset + row_bytes * uint64_t(row_begin));
  for (int64_t r = row_begin; r < row_end; ++r)
    pread_exact(out + part * uint64_t(r - row_begin), part,
                t.offset + row_bytes * uint64_t(r) + esize * uint64_t(col_begin));
}

}  // namespace meshlm
