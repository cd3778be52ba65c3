// meshlm tokenize: JSONL {"text"} -> {"ids"}, or with --decode {"ids"} -> {"text"}.
#include <fstream>
#include <nlohmann/json.hpp>

#include "app/cli_common.h"
#include "app/commands.h"
#include "app/output_writer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

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

  std::ifstream in(input, std::ios::binary);
  MESH_CHECK(in.good(), input, ": cannot open");
  OrderedJsonlWriter writer(output);
  size_t line_no = 0, n = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = input + ":" + std::to_string(line_no);
    const size_t bad = utf8_invalid_at(line);
    MESH_CHECK(bad == std::string::npos, where, ": not valid UTF-8 (byte ", bad + 1, " of the line)");
    nlohmann::ordered_json j, out;
    try {
      j = nlohmann::ordered_json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      fail(where, ": invalid JSON: ", e.what());
    }
    MESH_CHECK(j.is_object(), where, ": expected a JSON object");
    try {
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
    } catch (const Error& e) {
      fail(where, ": ", e.what());
    }
    writer.put(n++, out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  return 0;
}

}  // namespace meshlm
