#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/check.h"
#include "core/text_util.h"
#include "tokenizer/utf8.h"

namespace meshlm {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const json& null_json() {
  static const json n;
  return n;
}
const json& field(const json& j, const char* key) { return j.contains(key) ? j[key] : null_json(); }

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::load(const std::string& dir) {
  const fs::path path = fs::path(dir) / "tokenizer.json";
  MESH_CHECK(fs::exists(path), path.string(), ": missing (meshlm reads Hugging Face tokenizer.json files)");
  const json j = read_json_file(path.string());
  std::unique_ptr<Tokenizer> tok;
  try {
    MESH_CHECK(j.is_object() && j.contains("model"), "expected an object with a \"model\"");
    tok.reset(new Tokenizer(j));
  } catch (const Error& e) {
    fail(path.string(), ": ", e.what());
  } catch (const json::exception& e) {
    fail(path.string(), ": unexpected structure: ", e.what());
  }
  // With no post-processor, transformers still adds BOS when tokenizer_config.json asks for it.
  const fs::path config_path = fs::path(dir) / "tokenizer_config.json";
  if (field(j, "post_processor").is_null() && fs::exists(config_path)) {
    const json c = read_json_file(config_path.string());
    if (c.is_object() && c.value("add_bos_token", false) && c.contains("bos_token")) {
      const json& b = c["bos_token"];
      const std::string bos = b.is_string() ? b.get<std::string>() : b.is_object() ? b.value("content", "") : "";
      const int id = tok->token_to_id(bos);
      MESH_CHECK(id >= 0, config_path.string(), ": bos_token '", bos, "' is not in the vocabulary");
      tok->template_single_ = {{id}, {}};
    }
  }
  return tok;
}

Tokenizer::Tokenizer(const json& j)
    : normalizer_(field(j, "normalizer")), pre_tokenizer_(field(j, "pre_tokenizer")), model_(j.at("model")),
      decoder_(field(j, "decoder")) {
  int max_id = -1;
  for (auto& [tok, id] : model_.vocab()) max_id = std::max(max_id, id);  // ids checked by BpeModel
  for (auto& a : field(j, "added_tokens")) {
    AddedToken t;
    MESH_CHECK(a.is_object() && a.contains("id") && a["id"].is_number_integer(), "added_tokens entry ",
               a.dump().substr(0, 80), " needs an integer \"id\"");
    check_id(a["id"].get<int64_t>(), "added token " + a.dump().substr(0, 80));
    t.id = a["id"].get<int>();
    t.content = a.at("content").get<std::string>();
    t.special = a.value("special", false);
    t.lstrip = a.value("lstrip", false);
    t.rstrip = a.value("rstrip", false);
    t.single_word = a.value("single_word", false);
    t.normalized = a.value("normalized", !t.special);
    max_id = std::max(max_id, t.id);
    added_.push_back(t);
  }
  id_to_token_.resize(size_t(max_id + 1));
  for (auto& [tok, id] : model_.vocab()) id_to_token_[size_t(id)] = tok;
  for (const AddedToken& t : added_) {
    id_to_token_[size_t(t.id)] = t.content;
    added_by_content_[t.content] = t.id;
    if (t.special) special_ids_.insert(t.id);
    (t.normalized && !normalizer_.identity() ? added_normalized_ : added_raw_).push_back(&t);
  }
  template_single_ = {{}};
  parse_post_processor(field(j, "post_processor"));
  for (const auto& run : template_single_)
    for (int id : run) check_id(id, "post_processor special token");
}

void Tokenizer::check_id(int64_t id, const std::string& what) const {
  MESH_CHECK(id >= 0 && id < kMaxTokenId && (id_to_token_.empty() || id < vocab_size()), what, ": id ", id,
             " is outside [0, ", id_to_token_.empty() ? kMaxTokenId : vocab_size(), ")");
}

void Tokenizer::parse_post_processor(const json& spec) {
  if (spec.is_null()) return;
  const std::string type = spec.value("type", "");
  if (type == "Sequence") {
    for (auto& p : spec.at("processors")) parse_post_processor(p);
  } else if (type == "TemplateProcessing") {
    template_single_.clear();
    for (auto& item : spec.at("single")) {
      if (item.contains("Sequence")) {
        template_single_.push_back({});
      } else {
        const std::string name = item.at("SpecialToken").at("id").get<std::string>();
        const json& st = spec.at("special_tokens").at(name);
        template_single_.push_back(st.at("ids").get<std::vector<int>>());
      }
    }
  } else if (type == "BertProcessing" || type == "RobertaProcessing") {
    template_single_ = {{spec.at("cls").at(1).get<int>()}, {}, {spec.at("sep").at(1).get<int>()}};
  } else if (type != "ByteLevel") {
    fail("post_processor type '", type, "' is not supported");
  }
}

int Tokenizer::token_to_id(const std::string& token) const {
  auto it = added_by_content_.find(token);
  return it != added_by_content_.end() ? it->second : model_.token_id(token);
}

const std::string& Tokenizer::id_to_token(int id) const {
  MESH_CHECK(id >= 0 && id < vocab_size(), "token id ", id, " is outside the vocabulary (", vocab_size(), ")");
  return id_to_token_[size_t(id)];
}

std::vector<int> Tokenizer::encode(const std::string& text, bool add_special_tokens) const {
  const size_t bad = utf8_invalid_at(text);
  MESH_CHECK(bad == std::string::npos, "text is not valid UTF-8 (byte ", bad, ")");
  std::vector<int> ids;
  for (const Segment& raw : split_added_tokens(text, added_raw_)) {
    if (raw.id >= 0) {
      ids.push_back(raw.id);
      continue;
    }
    const std::string normalized = normalizer_.apply(raw.text);
    for (const Segment& seg : split_added_tokens(normalized, added_normalized_)) {
      if (seg.id >= 0) {
        ids.push_back(seg.id);
        continue;
      }
      std::vector<Piece> pieces = pre_tokenizer_.apply({{seg.text, raw.offset == 0 && seg.offset == 0}});
      for (const Piece& p : pieces) model_.encode_word(p.text, ids);
    }
  }
  if (!add_special_tokens) return ids;
  std::vector<int> out;
  for (const auto& run : template_single_) {
    if (run.empty()) out.insert(out.end(), ids.begin(), ids.end());
    else out.insert(out.end(), run.begin(), run.end());
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<int>& ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int id : ids) {
    if (skip_special_tokens && special_ids_.count(id)) continue;
    tokens.push_back(id_to_token(id));
  }
  return decoder_.decode(std::move(tokens));
}

}  // namespace meshlm
