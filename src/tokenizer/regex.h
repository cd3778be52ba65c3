// A compiled Unicode regex (PCRE2 with UTF and UCP, so \p{L}, \s and (?!...) behave as in tokenizers' Oniguruma).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace meshlm {

class Regex {
 public:
  explicit Regex(const std::string& pattern);  // throws Error with PCRE2's message
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Non-overlapping matches as [begin, end) byte ranges, left to right; empty matches are skipped.
  // Throws Error when a match exceeds the limits below (a pattern that backtracks without end).
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;

  static constexpr uint32_t kMatchLimit = 10000000, kDepthLimit = 100000, kHeapLimitKiB = 65536;

 private:
  void* code_ = nullptr;
  void* match_data_ = nullptr;
  void* context_ = nullptr;  // the match limits
};

// Escapes a literal string for use inside a pattern.
std::string regex_escape(const std::string& literal);

}  // namespace meshlm
