#include "tokenizer/pre_tokenizer.h"

#include <nlohmann/json.hpp>

#include "core/check.h"
#include "tokenizer/byte_level.h"

namespace meshlm {
namespace {

// GPT-2's split pattern, used by ByteLevel when use_regex is true.
const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

SplitBehavior parse_behavior(const std::string& s) {
  if (s == "Removed") return SplitBehavior::kRemoved;
  if (s == "Isolated") return SplitBehavior::kIsolated;
  if (s == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (s == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (s == "Contiguous") return SplitBehavior::kContiguous;
  fail("tokenizer split behavior '", s, "' is not supported");
}

std::string map_bytes(const std::string& s) {
  std::string out;
  for (char c : s) out += byte_to_char(uint8_t(c));
  return out;
}

}  // namespace

std::vector<Piece> split_piece(const Piece& piece, const Regex& regex, SplitBehavior behavior, bool invert) {
  // The text as alternating segments: (begin, end, is_match).
  struct Seg { size_t b, e; bool match; };
  std::vector<Seg> segs;
  size_t prev = 0;
  for (auto [b, e] : regex.find_all(piece.text)) {
    if (b > prev) segs.push_back({prev, b, invert});
    segs.push_back({b, e, !invert});
    prev = e;
  }
  if (prev < piece.text.size()) segs.push_back({prev, piece.text.size(), invert});

  std::vector<std::pair<size_t, size_t>> out;  // resulting [b, e)
  bool prev_match = false;
  for (size_t i = 0; i < segs.size(); ++i) {
    const Seg& s = segs[i];
    switch (behavior) {
      case SplitBehavior::kRemoved:
        if (!s.match) out.push_back({s.b, s.e});
        break;
      case SplitBehavior::kIsolated:
        out.push_back({s.b, s.e});
        break;
      case SplitBehavior::kContiguous:
        if (s.match && prev_match && !out.empty()) out.back().second = s.e;
        else out.push_back({s.b, s.e});
        break;
      case SplitBehavior::kMergedWithPrevious:
        if (s.match && !out.empty() && !prev_match) out.back().second = s.e;
        else out.push_back({s.b, s.e});
        break;
      case SplitBehavior::kMergedWithNext:
        if (!s.match && prev_match && !out.empty()) out.back().second = s.e;
        else out.push_back({s.b, s.e});
        break;
    }
    prev_match = s.match;
  }
  std::vector<Piece> pieces;
  for (auto [b, e] : out)
    if (e > b) pieces.push_back({piece.text.substr(b, e - b), piece.at_start && b == 0});
  return pieces;
}

PreTokenizer::PreTokenizer(const nlohmann::json& spec) {
  if (!spec.is_null()) add(spec);
}

void PreTokenizer::add(const nlohmann::json& spec) {
  const std::string type = spec.value("type", "");
  if (type == "Sequence") {
    for (auto& s : spec.at("pretokenizers")) add(s);
    return;
  }
  Step st;
  st.type = type;
  if (type == "ByteLevel") {
    st.add_prefix_space = spec.value("add_prefix_space", false);
    if (spec.value("use_regex", true)) st.regex = std::make_shared<Regex>(kGpt2Pattern);
  } else if (type == "Split") {
    const auto& pat = spec.at("pattern");
    st.regex = std::make_shared<Regex>(pat.contains("String") ? regex_escape(pat["String"].get<std::string>())
                                                              : pat.at("Regex").get<std::string>());
    st.behavior = parse_behavior(spec.at("behavior").get<std::string>());
    st.invert = spec.value("invert", false);
  } else if (type == "Digits") {
    st.regex = std::make_shared<Regex>(spec.value("individual_digits", false) ? "\\p{N}" : "\\p{N}+");
  } else if (type == "Metaspace") {
    st.replacement = spec.value("replacement", "\u2581");
    if (spec.contains("prepend_scheme")) st.prepend_scheme = spec["prepend_scheme"].get<std::string>();
    else st.prepend_scheme = spec.value("add_prefix_space", true) ? "always" : "never";
    if (spec.value("split", true)) st.regex = std::make_shared<Regex>(regex_escape(st.replacement));
  } else if (type == "Whitespace") {
    st.regex = std::make_shared<Regex>("\\w+|[^\\w\\s]+");
    st.behavior = SplitBehavior::kRemoved;
    st.invert = true;
  } else if (type == "WhitespaceSplit") {
    st.regex = std::make_shared<Regex>("\\s+");
    st.behavior = SplitBehavior::kRemoved;
  } else if (type == "Punctuation") {
    st.regex = std::make_shared<Regex>("[\\p{P}!-/:-@\\[-`{-~]");
    st.behavior = parse_behavior(spec.value("behavior", "Isolated"));
  } else {
    fail("tokenizer pre_tokenizer type '", type, "' is not supported");
  }
  steps_.push_back(std::move(st));
}

std::vector<Piece> PreTokenizer::apply(std::vector<Piece> pieces) const {
  for (const Step& st : steps_) {
    std::vector<Piece> next;
    for (Piece& p : pieces) {
      if (st.type == "ByteLevel") {
        if (st.add_prefix_space && p.text.rfind(' ', 0) != 0) p.text = " " + p.text;
        std::vector<Piece> parts = st.regex ? split_piece(p, *st.regex, SplitBehavior::kIsolated, false)
                                            : std::vector<Piece>{p};
        for (Piece& q : parts) next.push_back({map_bytes(q.text), q.at_start});
      } else if (st.type == "Metaspace") {
        std::string t;
        for (char c : p.text) c == ' ' ? t += st.replacement : t += c;
        const bool starts = t.rfind(st.replacement, 0) == 0;
        if (!starts && (st.prepend_scheme == "always" || (st.prepend_scheme == "first" && p.at_start)))
          t = st.replacement + t;
        Piece q{t, p.at_start};
        if (st.regex) {
          for (Piece& r : split_piece(q, *st.regex, SplitBehavior::kMergedWithNext, false)) next.push_back(r);
        } else {
          next.push_back(q);
        }
      } else {
        for (Piece& q : split_piece(p, *st.regex, st.behavior, st.invert)) next.push_back(q);
      }
    }
    pieces = std::move(next);
  }
  return pieces;
}

}  // namespace meshlm
