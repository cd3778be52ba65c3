#include "tokenizer/byte_level.h"

#include <array>
#include <unordered_map>

#include "tokenizer/utf8.h"

namespace meshlm {
namespace {

// Printable bytes map to themselves; the other 68 take code points 256, 257, ... in byte order.
struct Table {
  std::array<std::string, 256> to_char;
  std::unordered_map<uint32_t, int> to_byte;
  Table() {
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
      const uint32_t cp = printable ? uint32_t(b) : next++;
      utf8_append(to_char[size_t(b)], cp);
      to_byte[cp] = b;
    }
  }
};

const Table& table() {
  static const Table t;
  return t;
}

}  // namespace

const std::string& byte_to_char(uint8_t b) { return table().to_char[b]; }

int char_to_byte(uint32_t cp) {
  auto it = table().to_byte.find(cp);
  return it == table().to_byte.end() ? -1 : it->second;
}

}  // namespace meshlm
