// tokenizer.json "normalizer": Sequence, Prepend, Replace, NFC/NFD/NFKC/NFKD, Lowercase, Strip.
#pragma once
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "tokenizer/regex.h"

namespace meshlm {

class Normalizer {
 public:
  // `spec` is the JSON value (may be null: identity). Throws Error for a type we do not implement.
  explicit Normalizer(const nlohmann::json& spec);
  std::string apply(std::string text) const;
  bool identity() const { return steps_.empty(); }

 private:
  struct Step {
    std::string type;
    std::string a, b;              // Prepend: a; Replace: a -> b; Strip: unused
    bool left = false, right = false;
    std::shared_ptr<Regex> regex;  // Replace with a Regex pattern
  };
  void add(const nlohmann::json& spec);
  std::vector<Step> steps_;
};

// Unicode normalization form ("NFC", "NFD", "NFKC", "NFKD") of UTF-8 text, through ICU.
std::string unicode_normalize(const std::string& text, const std::string& form);

}  // namespace meshlm
