#include "tokenizer/added_tokens.h"

#include "tokenizer/utf8.h"

namespace meshlm {
namespace {

bool is_word_char(uint32_t cp) {
  return cp == '_' || (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp >= 0x80;
}

// Code point that ends at byte `end` (exclusive), or 0.
uint32_t cp_before(const std::string& s, size_t end, size_t* begin) {
  if (end == 0) return 0;
  size_t k = end - 1;
  while (k > 0 && (uint8_t(s[k]) & 0xc0) == 0x80) --k;
  uint32_t cp = 0;
  utf8_decode(s, k, &cp);
  if (begin) *begin = k;
  return cp;
}

}  // namespace

std::vector<Segment> split_added_tokens(const std::string& text, const std::vector<const AddedToken*>& tokens) {
  std::vector<Segment> out;
  if (tokens.empty()) {
    if (!text.empty()) out.push_back({text, -1, 0});
    return out;
  }
  size_t done = 0;  // text before this is already in `out`
  for (size_t pos = 0; pos < text.size();) {
    // Longest token starting exactly at pos.
    const AddedToken* best = nullptr;
    for (const AddedToken* t : tokens)
      if (!t->content.empty() && text.compare(pos, t->content.size(), t->content) == 0 &&
          (!best || t->content.size() > best->content.size()))
        best = t;
    size_t start = pos, stop = best ? pos + best->content.size() : pos;
    uint32_t cp = 0;
    if (best && best->single_word) {
      const bool word_before = pos > 0 && is_word_char(cp_before(text, pos, nullptr));
      const bool word_after = stop < text.size() && utf8_decode(text, stop, &cp) > 0 && is_word_char(cp);
      if (word_before || word_after) best = nullptr;
    }
    if (!best) {
      ++pos;
      while (pos < text.size() && (uint8_t(text[pos]) & 0xc0) == 0x80) ++pos;
      continue;
    }
    if (best->lstrip) {
      size_t b;
      while (start > done && is_unicode_whitespace(cp_before(text, start, &b))) start = b;
    }
    if (best->rstrip) {
      int n;
      while (stop < text.size() && (n = utf8_decode(text, stop, &cp)) > 0 && is_unicode_whitespace(cp)) stop += size_t(n);
    }
    if (start > done) out.push_back({text.substr(done, start - done), -1, done});
    out.push_back({text.substr(start, stop - start), best->id, start});
    done = pos = stop;
  }
  if (done < text.size()) out.push_back({text.substr(done), -1, done});
  return out;
}

}  // namespace meshlm
