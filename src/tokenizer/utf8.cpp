#include "tokenizer/utf8.h"

namespace meshlm {

int utf8_decode(std::string_view s, size_t i, uint32_t* cp) {
  const auto b = [&](size_t k) { return uint8_t(s[k]); };
  const uint8_t c = b(i);
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  int len;
  uint32_t v;
  uint8_t lo = 0x80, hi = 0xbf;  // allowed range of the second byte
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
    v = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    v = c & 0x0f;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;  // no surrogates
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    v = c & 0x07;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (i + size_t(len) > s.size()) return 0;
  for (int k = 1; k < len; ++k) {
    const uint8_t t = b(i + size_t(k));
    if (k == 1 ? (t < lo || t > hi) : (t < 0x80 || t > 0xbf)) return 0;
    v = (v << 6) | (t & 0x3f);
  }
  *cp = v;
  return len;
}

void utf8_append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xc0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += char(0xe0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3f));
    out += char(0x80 | (cp & 0x3f));
  } else {
    out += char(0xf0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3f));
    out += char(0x80 | ((cp >> 6) & 0x3f));
    out += char(0x80 | (cp & 0x3f));
  }
}

size_t utf8_invalid_at(std::string_view s) {
  uint32_t cp;
  for (size_t i = 0; i < s.size();) {
    const int n = utf8_decode(s, i, &cp);
    if (n == 0) return i;
    i += size_t(n);
  }
  return std::string_view::npos;
}

std::string utf8_lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  uint32_t cp;
  for (size_t i = 0; i < s.size();) {
    const int n = utf8_decode(s, i, &cp);
    if (n > 0) {
      out.append(s.substr(i, size_t(n)));
      i += size_t(n);
      continue;
    }
    // A maximal subpart: the lead byte plus the continuation bytes that were still valid, replaced by one U+FFFD.
    size_t j = i + 1;
    const uint8_t c = uint8_t(s[i]);
    const int want = (c >= 0xc2 && c <= 0xdf) ? 2 : (c >= 0xe0 && c <= 0xef) ? 3 : (c >= 0xf0 && c <= 0xf4) ? 4 : 1;
    for (int k = 1; k < want && j < s.size(); ++k, ++j) {
      const uint8_t t = uint8_t(s[j]);
      uint8_t lo = 0x80, hi = 0xbf;
      if (k == 1) {
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
      }
      if (t < lo || t > hi) break;
    }
    out += "\xEF\xBF\xBD";
    i = j;
  }
  return out;
}

bool is_unicode_whitespace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0d) || cp == 0x20 || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f ||
         cp == 0x3000;
}

}  // namespace meshlm
