// A model's chat template (tokenizer_config.json "chat_template", Jinja), rendered as Hugging Face's
// apply_chat_template does: variables messages, add_generation_prompt, bos_token, eos_token (and tools when given).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "chat/jinja_ast.h"

namespace meshlm {

class ChatTemplate {
 public:
  // source: the Jinja text; parse errors throw Error naming `origin` and the line.
  ChatTemplate(const std::string& source, const std::string& origin, std::string bos_token, std::string eos_token);

  // The template of tokenizer_dir/tokenizer_config.json ("default" when it holds several), or from
  // template_file when not empty (a Jinja file, or a JSON file with a chat_template field). Throws Error.
  static ChatTemplate load(const std::string& tokenizer_dir, const std::string& template_file = "");
  // Whether tokenizer_dir/tokenizer_config.json has a chat_template entry.
  static bool in_config(const std::string& tokenizer_dir);

  // messages: a JSON array of {"role", "content", ...}. Throws Error when the template fails (raise_exception, ...).
  std::string render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                     const nlohmann::ordered_json& tools = nullptr) const;

 private:
  jinja::Body body_;
  std::string bos_, eos_;
};

}  // namespace meshlm
