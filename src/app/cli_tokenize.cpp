// meshlm tokenize: JSONL {"text"} -> {"ids"}, or with --decode {"ids"} -> {"text"}.
#include <nlohmann/json.hpp>

#include "app/cli_common.h"
#include "app/commands.h"
#include "app/jsonl_input.h"
#include "app/output_writer.h"
#include "tokenizer/tokenizer.h"

namespace meshlm {

int run_tokenize(int argc, char** argv) {
  cxxopts::Options o("meshlm tokenize", "Encode JSONL {\"text\"} lines to {\"ids\"}, or decode {\"ids\"} to {\"text\"}.");
  o.add_options()
      ("tokenizer", "Directory with tokenizer.json", cxxopts::value<std::string>()->default_value(default_model_dir()))
      ("input", "Input JSONL file", cxxopts::value<std::string>())
      ("output", "Output JSONL file ('-' for stdout)", cxxopts::value<std::string>())
      ("decode", "Decode ids to text instead of encoding")
      ("raw", "Encode without special tokens (no BOS); decode keeping special tokens");
  cxxopts::ParseResult r;
  if (!parse_options(o, argc, argv, r)) return 0;
  const std::string input = required(r, "input"), output = required(r, "output");
  const bool decode = r.count("decode") > 0, special = r.count("raw") == 0;
  auto tok = Tokenizer::load(r["tokenizer"].as<std::string>());

  OrderedJsonlWriter writer(output);
  size_t n = 0;
  for_each_jsonl_object(input, [&](const std::string&, const nlohmann::ordered_json& j) {
    nlohmann::ordered_json out;
    if (decode) {
      MESH_CHECK(j.contains("ids") && j["ids"].is_array(), "expected an \"ids\" list");
      std::vector<int> ids;
      for (auto& v : j["ids"]) {
        MESH_CHECK(v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() < tok->vocab_size(),
                   "ids entry ", v.dump(), " is not a token id in [0, ", tok->vocab_size(), ")");
        ids.push_back(v.get<int>());
      }
      out["text"] = tok->decode(ids, special);
    } else {
      MESH_CHECK(j.contains("text") && j["text"].is_string(), "expected a \"text\" string");
      out["ids"] = tok->encode(j["text"].get<std::string>(), special);
    }
    writer.put(n++, out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  });
  return 0;
}

}  // namespace meshlm
