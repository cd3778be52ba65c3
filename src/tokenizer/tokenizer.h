// A Hugging Face tokenizer.json (BPE: byte-level or sentencepiece-style): encode text to ids, decode ids to text.
#pragma once
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/decoder.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"

namespace meshlm {

class Tokenizer {
 public:
  // Reads dir/tokenizer.json (and dir/tokenizer_config.json if present). Throws Error naming the file.
  static std::unique_ptr<Tokenizer> load(const std::string& dir);

  // Text (valid UTF-8) -> ids. With add_special_tokens, the post-processor adds BOS etc. as the file says.
  std::vector<int> encode(const std::string& text, bool add_special_tokens = true) const;
  // Ids -> text. With skip_special_tokens, special added tokens are left out.
  std::string decode(const std::vector<int>& ids, bool skip_special_tokens = true) const;

  int vocab_size() const { return int(id_to_token_.size()); }  // largest id + 1
  int token_to_id(const std::string& token) const;              // -1 if absent
  const std::string& id_to_token(int id) const;

 private:
  explicit Tokenizer(const nlohmann::json& j);
  void parse_post_processor(const nlohmann::json& spec);
  void check_id(int64_t id, const std::string& what) const;  // throws unless a usable id

  Normalizer normalizer_;
  PreTokenizer pre_tokenizer_;
  BpeModel model_;
  Decoder decoder_;
  std::vector<AddedToken> added_;
  std::vector<const AddedToken*> added_raw_, added_normalized_;  // matched before / after normalization
  std::unordered_set<int> special_ids_;
  std::vector<std::string> id_to_token_;
  std::unordered_map<std::string, int> added_by_content_;
  std::vector<std::vector<int>> template_single_;  // post-processor: a list of id runs; an empty run is the text
};

}  // namespace meshlm
