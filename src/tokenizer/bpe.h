// tokenizer.json "model" of type BPE: vocabulary, ranked merges, byte fallback and unknown-token handling.
#pragma once
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <unordered_map>
#include <vector>

namespace meshlm {

// Token ids a tokenizer.json may use: [0, kMaxTokenId) (the largest vocabularies today are ~262k; ids index tables).
constexpr int64_t kMaxTokenId = int64_t(1) << 22;

class BpeModel {
 public:
  explicit BpeModel(const nlohmann::json& model);  // throws Error for another model type or bad merges

  // Appends the ids of one pre-tokenized word.
  void encode_word(const std::string& word, std::vector<int>& out) const;

  int token_id(const std::string& token) const;  // -1 if absent
  const std::unordered_map<std::string, int>& vocab() const { return vocab_; }

 private:
  struct MergeResult {
    int rank, new_id;
  };
  static uint64_t pair_key(int a, int b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
  void add_merge(const std::string& left, const std::string& right, int rank);

  std::unordered_map<std::string, int> vocab_;
  std::unordered_map<uint64_t, MergeResult> merges_;
  int unk_id_ = -1;
  bool fuse_unk_ = false, byte_fallback_ = false, ignore_merges_ = false;
  std::string continuing_prefix_, end_suffix_;
  int byte_ids_[256];  // <0xXX> token ids for byte fallback, -1 if absent
};

}  // namespace meshlm
