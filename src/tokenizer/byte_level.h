// GPT-2's byte <-> printable-character table used by ByteLevel pre-tokenizers and decoders.
#pragma once
#include <cstdint>
#include <string>

namespace meshlm {

// The character (UTF-8) that stands for byte b.
const std::string& byte_to_char(uint8_t b);
// The byte that code point cp stands for, or -1 if cp is not in the table.
int char_to_byte(uint32_t cp);

}  // namespace meshlm
