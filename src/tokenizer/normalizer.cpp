#include "tokenizer/normalizer.h"

#include <unicode/normalizer2.h>
#include <unicode/locid.h>
#include <unicode/unistr.h>

#include <nlohmann/json.hpp>

#include "core/check.h"
#include "core/text_util.h"
#include "tokenizer/utf8.h"

namespace meshlm {

std::string unicode_normalize(const std::string& text, const std::string& form) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* n = form == "NFC"    ? icu::Normalizer2::getNFCInstance(status)
                              : form == "NFD"  ? icu::Normalizer2::getNFDInstance(status)
                              : form == "NFKC" ? icu::Normalizer2::getNFKCInstance(status)
                                               : icu::Normalizer2::getNFKDInstance(status);
  MESH_CHECK(U_SUCCESS(status), "ICU: cannot load the ", form, " normalizer");
  icu::UnicodeString out = n->normalize(icu::UnicodeString::fromUTF8(text), status);
  MESH_CHECK(U_SUCCESS(status), "ICU: ", form, " normalization failed");
  std::string result;
  out.toUTF8String(result);
  return result;
}

Normalizer::Normalizer(const nlohmann::json& spec) {
  if (!spec.is_null()) add(spec);
}

void Normalizer::add(const nlohmann::json& spec) {
  const std::string type = spec.value("type", "");
  if (type == "Sequence") {
    for (auto& s : spec.at("normalizers")) add(s);
    return;
  }
  Step step{type, "", "", false, false, nullptr};
  if (type == "Prepend") {
    step.a = spec.at("prepend").get<std::string>();
  } else if (type == "Replace") {
    const auto& pat = spec.at("pattern");
    step.b = spec.at("content").get<std::string>();
    if (pat.contains("String")) step.a = pat["String"].get<std::string>();
    else step.regex = std::make_shared<Regex>(pat.at("Regex").get<std::string>());
  } else if (type == "Strip") {
    step.left = spec.value("strip_left", true);
    step.right = spec.value("strip_right", true);
  } else if (type != "NFC" && type != "NFD" && type != "NFKC" && type != "NFKD" && type != "Lowercase") {
    fail("tokenizer normalizer type '", type, "' is not supported");
  }
  steps_.push_back(std::move(step));
}

namespace {

std::string strip_whitespace(const std::string& s, bool left, bool right) {
  size_t b = 0, e = s.size();
  uint32_t cp;
  while (left && b < e) {
    int n = utf8_decode(s, b, &cp);
    if (n == 0 || !is_unicode_whitespace(cp)) break;
    b += size_t(n);
  }
  while (right && e > b) {
    size_t k = e - 1;
    while (k > b && (uint8_t(s[k]) & 0xc0) == 0x80) --k;
    int n = utf8_decode(s, k, &cp);
    if (n == 0 || !is_unicode_whitespace(cp)) break;
    e = k;
  }
  return s.substr(b, e - b);
}

}  // namespace

std::string Normalizer::apply(std::string text) const {
  for (const Step& s : steps_) {
    if (s.type == "Prepend") {
      if (!text.empty()) text = s.a + text;
    } else if (s.type == "Replace") {
      if (s.regex) {
        std::string out;
        size_t prev = 0;
        for (auto [b, e] : s.regex->find_all(text)) out.append(text, prev, b - prev) += s.b, prev = e;
        text = out.append(text, prev, std::string::npos);
      } else {
        text = replace_all(text, s.a, s.b);
      }
    } else if (s.type == "Strip") {
      text = strip_whitespace(text, s.left, s.right);
    } else if (s.type == "Lowercase") {
      std::string out;
      icu::UnicodeString::fromUTF8(text).toLower(icu::Locale::getRoot()).toUTF8String(out);
      text = out;
    } else {
      text = unicode_normalize(text, s.type);
    }
  }
  return text;
}

}  // namespace meshlm
