#include "tokenizer/decoder.h"

#include <nlohmann/json.hpp>

#include "core/check.h"
#include "core/text_util.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/utf8.h"

namespace meshlm {
namespace {

// "<0xAB>" -> 0xAB, or -1.
int byte_token(const std::string& t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
  int v = 0;
  for (int k = 3; k < 5; ++k) {
    const char c = t[size_t(k)];
    const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

std::vector<std::string> byte_level(const std::vector<std::string>& tokens) {
  std::string bytes;
  for (const std::string& t : tokens) {
    std::string mapped;
    bool ok = true;
    uint32_t cp;
    for (size_t i = 0; i < t.size() && ok;) {
      const int n = utf8_decode(t, i, &cp);
      const int b = n > 0 ? char_to_byte(cp) : -1;
      if (b < 0) ok = false;
      else mapped += char(b), i += size_t(n);
    }
    bytes += ok ? mapped : t;  // a token with a character outside the table keeps its own bytes
  }
  return {utf8_lossy(bytes)};
}

std::vector<std::string> byte_fallback(const std::vector<std::string>& tokens) {
  std::vector<std::string> out;
  std::string pending;
  size_t pending_count = 0;
  const auto flush = [&] {
    if (pending_count == 0) return;
    if (utf8_invalid_at(pending) == std::string::npos) {
      out.push_back(pending);
    } else {
      for (size_t k = 0; k < pending_count; ++k) out.push_back("\xEF\xBF\xBD");
    }
    pending.clear();
    pending_count = 0;
  };
  for (const std::string& t : tokens) {
    const int b = byte_token(t);
    if (b >= 0) {
      pending += char(b);
      ++pending_count;
    } else {
      flush();
      out.push_back(t);
    }
  }
  flush();
  return out;
}

// Removes up to `start` leading and `stop` trailing copies of character `c` from each token.
std::string strip_chars(const std::string& t, const std::string& c, int start, int stop) {
  size_t b = 0, e = t.size();
  for (int k = 0; k < start && t.compare(b, c.size(), c) == 0 && b < e; ++k) b += c.size();
  for (int k = 0; k < stop && e >= b + c.size() && t.compare(e - c.size(), c.size(), c) == 0; ++k) e -= c.size();
  return t.substr(b, e - b);
}

}  // namespace

Decoder::Decoder(const nlohmann::json& spec) {
  if (spec.is_null()) none_ = true;
  else add(spec);
}

void Decoder::add(const nlohmann::json& spec) {
  const std::string type = spec.value("type", "");
  if (type == "Sequence") {
    for (auto& s : spec.at("decoders")) add(s);
    return;
  }
  Step st;
  st.type = type;
  if (type == "Replace") {
    const auto& pat = spec.at("pattern");
    MESH_CHECK(pat.contains("String"), "tokenizer decoder Replace with a regex pattern is not supported");
    st.a = pat["String"].get<std::string>();
    st.b = spec.at("content").get<std::string>();
  } else if (type == "Strip") {
    st.a = spec.at("content").get<std::string>();
    st.start = spec.value("start", 0);
    st.stop = spec.value("stop", 0);
  } else if (type == "Metaspace") {
    st.a = spec.value("replacement", "\u2581");
    st.prepend = spec.contains("prepend_scheme") ? spec["prepend_scheme"] != "never" : spec.value("add_prefix_space", true);
  } else if (type != "ByteLevel" && type != "ByteFallback" && type != "Fuse") {
    fail("tokenizer decoder type '", type, "' is not supported");
  }
  steps_.push_back(std::move(st));
}

std::string Decoder::decode(std::vector<std::string> tokens) const {
  if (none_) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
    return out;
  }
  for (const Step& st : steps_) {
    if (st.type == "ByteLevel") {
      tokens = byte_level(tokens);
    } else if (st.type == "ByteFallback") {
      tokens = byte_fallback(tokens);
    } else if (st.type == "Fuse") {
      std::string all;
      for (auto& t : tokens) all += t;
      tokens = {all};
    } else if (st.type == "Replace") {
      for (auto& t : tokens) t = replace_all(t, st.a, st.b);
    } else if (st.type == "Strip") {
      for (auto& t : tokens) t = strip_chars(t, st.a, st.start, st.stop);
    } else if (st.type == "Metaspace") {
      for (size_t i = 0; i < tokens.size(); ++i) {
        tokens[i] = replace_all(tokens[i], st.a, " ");
        if (i == 0 && st.prepend && !tokens[i].empty() && tokens[i][0] == ' ') tokens[i].erase(0, 1);
      }
    }
  }
  std::string out;
  for (auto& t : tokens) out += t;
  return out;
}

}  // namespace meshlm
