// Added tokens (special and not) matched in raw or normalized text before BPE, as tokenizers' AddedVocabulary:
// leftmost-longest, with lstrip / rstrip / single_word.
#pragma once
#include <string>
#include <vector>

namespace meshlm {

struct AddedToken {
  int id = -1;
  std::string content;
  bool special = false, lstrip = false, rstrip = false, single_word = false, normalized = false;
};

// A run of text: either plain text (id < 0) or one added token.
struct Segment {
  std::string text;
  int id = -1;
  size_t offset = 0;  // byte offset in the text that was split
};

// Splits `text` at matches of `tokens`. Plain segments are never empty.
std::vector<Segment> split_added_tokens(const std::string& text, const std::vector<const AddedToken*>& tokens);

}  // namespace meshlm
