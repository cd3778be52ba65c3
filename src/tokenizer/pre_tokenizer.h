// tokenizer.json "pre_tokenizer": cuts normalized text into pieces that BPE encodes independently.
// Supported: Sequence, ByteLevel, Split, Digits, Metaspace, Whitespace, WhitespaceSplit, Punctuation.
#pragma once
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "tokenizer/regex.h"

namespace meshlm {

struct Piece {
  std::string text;
  bool at_start = false;  // starts at offset 0 of the original input (Metaspace prepend_scheme "first")
};

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// Cuts `piece` at the regex matches as `behavior` says (with invert, the matches are what lies between).
std::vector<Piece> split_piece(const Piece& piece, const Regex& regex, SplitBehavior behavior, bool invert);

class PreTokenizer {
 public:
  explicit PreTokenizer(const nlohmann::json& spec);  // null: one piece per input
  std::vector<Piece> apply(std::vector<Piece> pieces) const;

 private:
  struct Step {
    std::string type;
    std::shared_ptr<Regex> regex;
    SplitBehavior behavior = SplitBehavior::kIsolated;
    bool invert = false;
    bool add_prefix_space = false;  // ByteLevel
    std::string replacement;        // Metaspace
    std::string prepend_scheme;     // Metaspace: always | first | never
  };
  void add(const nlohmann::json& spec);
  std::vector<Step> steps_;
};

}  // namespace meshlm
