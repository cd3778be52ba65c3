// The safetensors files of one model directory: a single model.safetensors, or shards listed in
// model.safetensors.index.json. Looks tensors up by name; reads only the bytes asked for.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "io/safetensors.h"

namespace meshlm {

class WeightIndex {
 public:
  explicit WeightIndex(const std::string& model_dir);

  const TensorInfo* find(const std::string& name) const;  // nullptr if absent
  const TensorInfo& get(const std::string& name) const;   // throws Error naming the tensor
  const SafetensorsFile& file_of(const std::string& name) const;

  // All tensors of all files, in file order.
  std::vector<const TensorInfo*> all() const;
  uint64_t bytes_read() const;
  // Every file's reads recorded instead of done (SafetensorsFile::record_reads), keyed by file name (no directory).
  void record_reads(std::map<std::string, std::vector<SafetensorsFile::ByteRange>>& to) const;

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::unordered_map<std::string, const SafetensorsFile*> owner_;
  std::string model_dir_;
};

}  // namespace meshlm
