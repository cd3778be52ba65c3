// tokenizer.json "decoder": turns token strings back into text.
// Supported: Sequence, ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace; null joins with spaces.
#pragma once
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace meshlm {

class Decoder {
 public:
  explicit Decoder(const nlohmann::json& spec);
  std::string decode(std::vector<std::string> tokens) const;

 private:
  struct Step {
    std::string type;
    std::string a, b;     // Replace a -> b; Strip content a; Metaspace replacement a
    int start = 0, stop = 0;
    bool prepend = true;  // Metaspace: a space was prepended at encode time
  };
  void add(const nlohmann::json& spec);
  bool none_ = false;
  std::vector<Step> steps_;
};

}  // namespace meshlm
