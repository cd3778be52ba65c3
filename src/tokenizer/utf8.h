// UTF-8 helpers with the semantics Hugging Face tokenizers (Rust) relies on.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace meshlm {

// Decodes the code point at s[i]; returns its byte length, or 0 if the bytes there are not valid UTF-8.
int utf8_decode(std::string_view s, size_t i, uint32_t* cp);
void utf8_append(std::string& out, uint32_t cp);
// Byte offset of the first invalid sequence, or npos if `s` is valid UTF-8.
size_t utf8_invalid_at(std::string_view s);
// Like Rust's String::from_utf8_lossy: each maximal invalid subpart becomes U+FFFD.
std::string utf8_lossy(std::string_view bytes);
// Rust's char::is_whitespace (the Unicode White_Space property).
bool is_unicode_whitespace(uint32_t cp);

}  // namespace meshlm
