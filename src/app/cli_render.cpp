// meshlm render: JSONL {"messages", "add_generation_prompt"} -> {"rendered"} through a model's chat template,
// for checking templates against Hugging Face's apply_chat_template.
#include <nlohmann/json.hpp>

#include "app/cli_common.h"
#include "app/commands.h"
#include "app/jsonl_input.h"
#include "app/output_writer.h"
#include "chat/chat_template.h"

namespace meshlm {

int run_render(int argc, char** argv) {
  cxxopts::Options o("meshlm render", "Render JSONL {\"messages\", \"add_generation_prompt\", optional \"tools\"} "
                                      "lines with a chat template to {\"rendered\"}.\nA line the template rejects "
                                      "(raise_exception) gets {\"rendered\": null, \"error\": \"...\"}.");
  o.add_options()
      ("tokenizer", "Directory with tokenizer_config.json", cxxopts::value<std::string>()->default_value(default_model_dir()))
      ("chat-template", "Jinja file (or JSON with chat_template) to use instead of the tokenizer's",
       cxxopts::value<std::string>()->default_value(""))
      ("input", "Input JSONL file", cxxopts::value<std::string>())
      ("output", "Output JSONL file ('-' for stdout)", cxxopts::value<std::string>());
  cxxopts::ParseResult r;
  if (!parse_options(o, argc, argv, r)) return 0;
  const std::string input = required(r, "input"), output = required(r, "output");
  const ChatTemplate chat = ChatTemplate::load(r["tokenizer"].as<std::string>(), r["chat-template"].as<std::string>());
  OrderedJsonlWriter writer(output);
  size_t n = 0;
  for_each_jsonl_object(input, [&](const std::string&, const nlohmann::ordered_json& j) {
    MESH_CHECK(j.contains("messages") && j["messages"].is_array(), "expected a \"messages\" list");
    const auto& agp = j.value("add_generation_prompt", nlohmann::ordered_json(false));
    MESH_CHECK(agp.is_boolean(), "\"add_generation_prompt\" must be true or false");
    nlohmann::ordered_json out;
    try {
      out["rendered"] = chat.render(j["messages"], agp.get<bool>(), j.value("tools", nlohmann::ordered_json()));
    } catch (const Error& e) {
      out["rendered"] = nullptr;
      out["error"] = e.what();
    }
    writer.put(n++, out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  });
  return 0;
}

}  // namespace meshlm
