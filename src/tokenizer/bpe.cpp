#include "tokenizer/bpe.h"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <queue>

#include "core/check.h"
#include "tokenizer/utf8.h"

namespace meshlm {

BpeModel::BpeModel(const nlohmann::json& m) {
  // Old files omit "type"; their model is BPE when it has merges.
  const std::string type = m.value("type", m.contains("merges") ? "BPE" : "");
  MESH_CHECK(type == "BPE", "tokenizer model type '", type, "' is not supported (only BPE)");
  MESH_CHECK(m.contains("vocab") && m["vocab"].is_object(), "model.vocab must be an object of token -> id");
  for (auto& [tok, id] : m["vocab"].items()) {
    MESH_CHECK(id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() < kMaxTokenId, "model.vocab['",
               tok.substr(0, 80), "']: id ", id.dump().substr(0, 40), " is not an integer in [0, ", kMaxTokenId, ")");
    vocab_[tok] = id.get<int>();
  }
  const auto str_or_empty = [&](const char* key) {
    return m.contains(key) && m[key].is_string() ? m[key].get<std::string>() : std::string();
  };
  const std::string unk = str_or_empty("unk_token");
  if (!unk.empty()) unk_id_ = token_id(unk);
  fuse_unk_ = m.value("fuse_unk", false);
  byte_fallback_ = m.value("byte_fallback", false);
  ignore_merges_ = m.value("ignore_merges", false);
  continuing_prefix_ = str_or_empty("continuing_subword_prefix");
  end_suffix_ = str_or_empty("end_of_word_suffix");
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    byte_ids_[b] = token_id(name);
  }
  int rank = 0;
  for (auto& merge : m.at("merges")) {
    if (merge.is_string()) {  // "left right"
      const std::string s = merge.get<std::string>();
      const size_t sp = s.find(' ', 1);
      MESH_CHECK(sp != std::string::npos, "tokenizer merge ", rank, " '", s, "' is not \"left right\"");
      add_merge(s.substr(0, sp), s.substr(sp + 1), rank);
    } else {  // ["left", "right"]
      MESH_CHECK(merge.is_array() && merge.size() == 2, "tokenizer merge ", rank, " is not a pair");
      add_merge(merge[0].get<std::string>(), merge[1].get<std::string>(), rank);
    }
    ++rank;
  }
}

void BpeModel::add_merge(const std::string& left, const std::string& right, int rank) {
  // With a continuing-subword prefix ("##"), the merged token drops the right side's prefix.
  const bool drop = !continuing_prefix_.empty() && right.rfind(continuing_prefix_, 0) == 0;
  const int a = token_id(left), b = token_id(right);
  const int merged = token_id(left + (drop ? right.substr(continuing_prefix_.size()) : right));
  MESH_CHECK(a >= 0 && b >= 0 && merged >= 0, "tokenizer merge ", rank, " '", left, " ", right,
             "' names a token that is not in the vocabulary");
  merges_.emplace(pair_key(a, b), MergeResult{rank, merged});
}

int BpeModel::token_id(const std::string& token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

void BpeModel::encode_word(const std::string& word, std::vector<int>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (int id = token_id(word); id >= 0) {
      out.push_back(id);
      return;
    }
  }
  // Symbols: one per character (or per byte under byte fallback), as a doubly linked list.
  struct Sym {
    int id, prev, next;
    bool alive;
  };
  std::vector<Sym> syms;
  bool last_unk = false;
  uint32_t cp;
  for (size_t i = 0; i < word.size();) {
    int n = utf8_decode(word, i, &cp);
    if (n == 0) n = 1;  // cannot happen on validated input; keep the byte
    std::string piece = word.substr(i, size_t(n));
    if (i > 0) piece = continuing_prefix_ + piece;
    if (i + size_t(n) == word.size()) piece += end_suffix_;
    const int id = token_id(piece);
    const size_t begin = i;
    i += size_t(n);
    if (id >= 0) {
      syms.push_back({id, 0, 0, true});
      last_unk = false;
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (size_t k = begin; k < i; ++k) all = all && byte_ids_[uint8_t(word[k])] >= 0;
      if (all) {
        for (size_t k = begin; k < i; ++k) syms.push_back({byte_ids_[uint8_t(word[k])], 0, 0, true});
        last_unk = false;
        continue;
      }
    }
    MESH_CHECK(unk_id_ >= 0, "tokenizer: character '", word.substr(begin, i - begin),
               "' is not in the vocabulary and there is no unk_token");
    if (!(fuse_unk_ && last_unk)) syms.push_back({unk_id_, 0, 0, true});
    last_unk = true;
  }
  const int n = int(syms.size());
  for (int k = 0; k < n; ++k) {
    syms[size_t(k)].prev = k - 1;
    syms[size_t(k)].next = k + 1 < n ? k + 1 : -1;
  }
  // Merge the lowest-ranked pair first; ties go to the leftmost.
  struct Cand {
    int rank, pos, new_id;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  const auto push = [&](int pos) {
    const int nx = syms[size_t(pos)].next;
    if (nx < 0) return;
    auto it = merges_.find(pair_key(syms[size_t(pos)].id, syms[size_t(nx)].id));
    if (it != merges_.end()) heap.push({it->second.rank, pos, it->second.new_id});
  };
  for (int k = 0; k + 1 < n; ++k) push(k);
  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    Sym& s = syms[size_t(c.pos)];
    if (!s.alive || s.next < 0) continue;
    auto it = merges_.find(pair_key(s.id, syms[size_t(s.next)].id));
    if (it == merges_.end() || it->second.new_id != c.new_id) continue;  // stale entry
    Sym& right = syms[size_t(s.next)];
    right.alive = false;
    s.id = c.new_id;
    s.next = right.next;
    if (s.next >= 0) syms[size_t(s.next)].prev = c.pos;
    if (s.prev >= 0) push(s.prev);
    push(c.pos);
  }
  for (int k = 0; k >= 0 && k < n; k = syms[size_t(k)].next) out.push_back(syms[size_t(k)].id);
}

}  // namespace meshlm
