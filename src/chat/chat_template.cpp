#include "chat/chat_template.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "chat/jinja_parser.h"
#include "chat/jinja_render.h"
#include "core/check.h"
#include "core/text_util.h"

namespace meshlm {
namespace {

// A special token in tokenizer_config.json is a string or an AddedToken object {"content": ...}.
std::string token_text(const nlohmann::json& config, const char* key) {
  if (!config.contains(key)) return "";
  const auto& t = config[key];
  if (t.is_string()) return t.get<std::string>();
  if (t.is_object() && t.contains("content") && t["content"].is_string()) return t["content"].get<std::string>();
  return "";
}

std::string template_text(const nlohmann::json& config, const std::string& path) {
  MESH_CHECK(config.contains("chat_template"), path, ": no chat_template (give one with --chat-template FILE)");
  const auto& t = config["chat_template"];
  if (t.is_string()) return t.get<std::string>();
  MESH_CHECK(t.is_array(), path, ": chat_template must be a string or a list of {name, template}");
  for (const auto& item : t)
    if (item.value("name", "") == "default" && item.contains("template")) return item["template"].get<std::string>();
  fail(path, ": chat_template has no template named \"default\"");
}

}  // namespace

ChatTemplate::ChatTemplate(const std::string& source, const std::string& origin, std::string bos, std::string eos)
    : bos_(std::move(bos)), eos_(std::move(eos)) {
  try {
    body_ = jinja::parse_template(source);
  } catch (const Error& e) {
    fail(origin, ": chat template: ", e.what());
  }
}

ChatTemplate ChatTemplate::load(const std::string& tokenizer_dir, const std::string& template_file) {
  const std::string config_path = (std::filesystem::path(tokenizer_dir) / "tokenizer_config.json").string();
  const nlohmann::json config =
      std::filesystem::exists(config_path) ? read_json_file(config_path) : nlohmann::json::object();
  const std::string bos = token_text(config, "bos_token"), eos = token_text(config, "eos_token");
  if (template_file.empty()) return ChatTemplate(template_text(config, config_path), config_path, bos, eos);
  std::ifstream in(template_file, std::ios::binary);
  MESH_CHECK(in.good(), template_file, ": cannot open the chat template file");
  std::stringstream text;
  text << in.rdbuf();
  std::string source = text.str();
  if (template_file.size() > 5 && template_file.substr(template_file.size() - 5) == ".json")
    source = template_text(read_json_file(template_file), template_file);
  return ChatTemplate(source, template_file, bos, eos);
}

bool ChatTemplate::in_config(const std::string& tokenizer_dir) {
  const std::string config_path = (std::filesystem::path(tokenizer_dir) / "tokenizer_config.json").string();
  if (!std::filesystem::exists(config_path)) return false;
  const nlohmann::json config = read_json_file(config_path);
  return config.is_object() && config.contains("chat_template");
}

std::string ChatTemplate::render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                                 const nlohmann::ordered_json& tools) const {
  MESH_CHECK(messages.is_array(), "\"messages\" must be a list of {\"role\", \"content\"} objects");
  jinja::Value context = jinja::Value::object();
  context.set("messages", jinja::Value::from_json(messages));
  context.set("add_generation_prompt", jinja::Value::boolean(add_generation_prompt));
  context.set("bos_token", jinja::Value::string(bos_));
  context.set("eos_token", jinja::Value::string(eos_));
  if (!tools.is_null()) context.set("tools", jinja::Value::from_json(tools));
  return jinja::render(body_, context);
}

}  // namespace meshlm
