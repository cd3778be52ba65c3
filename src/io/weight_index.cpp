#include "io/weight_index.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/check.h"
#include "core/text_util.h"

namespace meshlm {
namespace fs = std::filesystem;

WeightIndex::WeightIndex(const std::string& model_dir) : model_dir_(model_dir) {
  const fs::path dir(model_dir);
  const fs::path index_path = dir / "model.safetensors.index.json", single = dir / "model.safetensors";
  if (fs::exists(index_path)) {
    const nlohmann::json j = read_json_file(index_path.string());
    MESH_CHECK(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(), index_path.string(),
               ": expected an object with a \"weight_map\" object");
    std::map<std::string, const SafetensorsFile*> by_file;
    for (auto& [name, file] : j["weight_map"].items()) {
      MESH_CHECK(file.is_string(), index_path.string(), ": weight_map['", name, "'] must be a file name");
      const std::string fname = file.get<std::string>();
      MESH_CHECK(fname.find('/') == std::string::npos, index_path.string(), ": weight_map['", name,
                 "'] = '", fname, "' must be a file in the model directory");
      auto it = by_file.find(fname);
      if (it == by_file.end()) {
        const fs::path shard = dir / fname;
        MESH_CHECK(fs::exists(shard), index_path.string(), ": shard '", fname, "' (for tensor '", name,
                   "') does not exist");
        files_.push_back(std::make_unique<SafetensorsFile>(shard.string()));
        it = by_file.emplace(fname, files_.back().get()).first;
      }
      MESH_CHECK(it->second->find(name) != nullptr, index_path.string(), ": tensor '", name, "' is mapped to '",
                 fname, "' but that file does not contain it");
      owner_[name] = it->second;
    }
  } else {
    MESH_CHECK(fs::exists(single), model_dir, ": no model.safetensors or model.safetensors.index.json");
    files_.push_back(std::make_unique<SafetensorsFile>(single.string()));
    for (auto& t : files_.back()->tensors()) owner_[t.name] = files_.back().get();
  }
}

const TensorInfo* WeightIndex::find(const std::string& name) const {
  auto it = owner_.find(name);
  return it == owner_.end() ? nullptr : it->second->find(name);
}

const TensorInfo& WeightIndex::get(const std::string& name) const {
  const TensorInfo* t = find(name);
  MESH_CHECK(t != nullptr, model_dir_, ": tensor '", name, "' is missing from the checkpoint");
  return *t;
}

const SafetensorsFile& WeightIndex::file_of(const std::string& name) const {
  get(name);
  return *owner_.at(name);
}

std::vector<const TensorInfo*> WeightIndex::all() const {
  std::vector<const TensorInfo*> out;
  for (auto& f : files_)
    for (auto& t : f->tensors())
      if (owner_.count(t.name) && owner_.at(t.name) == f.get()) out.push_back(&t);
  return out;
}

uint64_t WeightIndex::bytes_read() const {
  uint64_t n = 0;
  for (auto& f : files_) n += f->bytes_read();
  return n;
}

void WeightIndex::record_reads(std::map<std::string, std::vector<SafetensorsFile::ByteRange>>& to) const {
  for (const auto& f : files_) f->record_reads(&to[fs::path(f->path()).filename().string()]);
}

}  // namespace meshlm
