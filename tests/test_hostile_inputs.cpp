// Hostile files through the real binary, table-driven: a model directory, prompt file, chat template or --resume
// output that is malformed or built to exhaust the program. Each case must end within a time bound with either a
// start-up error (exit 1, one line naming the file and what is wrong) or, for a bad prompt line, an error record in
// the output while the job exits 0 - never a signal, a hang or unbounded memory.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>

#include "test_support.h"

namespace meshlm {
namespace {
using nlohmann::ordered_json;

constexpr double kTimeBoundSeconds = 60;  // a hang check, far above any case's time (the slowest takes ~3 s)

class Hostile {
 public:
  Hostile() {
    model = tmp.file("model");
    test::copy_dir(test::source_dir() + "/models/stories260k", model);
    prompts = tmp.file("p.jsonl");
    output = tmp.file("out.jsonl");
    test::write_file(prompts, "{\"id\": \"a\", \"prompt_ids\": [1, 403, 407]}\n");
    const std::string bytes = test::read_file(model + "/model.safetensors");
    uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);
    header = ordered_json::parse(bytes.substr(8, n));
    data = bytes.substr(8 + n);
  }

  // Rewrites model.safetensors from `header` and `data` (length: the header's, unless overridden).
  void write_model(long long header_len = -1) const {
    test::write_safetensors_raw(model + "/model.safetensors", header.dump(), data, header_len);
  }
  void write_model_header_text(const std::string& text) const {
    test::write_safetensors_raw(model + "/model.safetensors", text, data);
  }
  void edit_json(const std::string& file, const std::function<void(ordered_json&)>& edit) const {
    ordered_json j = ordered_json::parse(test::read_file(model + "/" + file));
    edit(j);
    test::write_file(model + "/" + file, j.dump());
  }
  void set_template(const std::string& source) const {
    edit_json("tokenizer_config.json", [&](ordered_json& c) { c["chat_template"] = source; });
  }

  test::TempDir tmp;
  std::string model, prompts, output;
  ordered_json header;  // of model.safetensors
  std::string data;     // its data section
};

std::string nested(const std::string& open, const std::string& close, int depth, const std::string& inner = "") {
  std::string s;
  for (int i = 0; i < depth; ++i) s += open;
  s += inner;
  for (int i = 0; i < depth; ++i) s += close;
  return s;
}

const std::string kMessages = R"({"messages": [{"role": "user", "content": "hi"}]})";

enum class Expect {
  kStartupError,  // exit 1, one stderr line holding the fragment
  kErrorRecord,   // exit 0, the first output record is an error holding the fragment
};

struct Case {
  const char* name;
  std::function<void(Hostile&)> setup;
  Expect expect;
  std::string fragment;
  std::vector<std::string> extra = {};  // more generate flags
};

std::vector<Case> cases() {
  const auto tensor = [](Hostile& h) -> ordered_json& { return h.header["model.norm.weight"]; };
  return {
      // model.safetensors
      {"truncated_file", [](Hostile& h) { h.data.resize(h.data.size() - 1000); h.write_model(); },
       Expect::kStartupError, "outside the data section"},
      {"four_byte_file", [](Hostile& h) { test::write_file(h.model + "/model.safetensors", "abcd"); },
       Expect::kStartupError, "not a safetensors file"},
      {"header_length_past_eof", [](Hostile& h) { h.write_model(1 << 20); }, Expect::kStartupError,
       "runs past the end of the file"},
      {"header_length_huge", [](Hostile& h) { h.write_model(1ll << 60); }, Expect::kStartupError, "exceeds"},
      {"header_not_json", [](Hostile& h) { h.write_model_header_text("{not json"); }, Expect::kStartupError,
       "not valid JSON"},
      {"header_is_array", [](Hostile& h) { h.write_model_header_text("[1, 2]"); }, Expect::kStartupError,
       "expected a JSON object"},
      {"header_nested_100k", [](Hostile& h) { h.write_model_header_text(nested("{\"a\":", "}", 100000, "1")); },
       Expect::kStartupError, "nested deeper"},
      {"offsets_out_of_range",
       [=](Hostile& h) { tensor(h)["data_offsets"][1] = h.data.size() + 4; h.write_model(); },
       Expect::kStartupError, "outside the data section"},
      {"offsets_reversed",
       [=](Hostile& h) {
         auto& o = tensor(h)["data_offsets"];
         const auto b = o[0], e = o[1];
         o[0] = e, o[1] = b;
         h.write_model();
       },
       Expect::kStartupError, "data_offsets"},
      {"offsets_overlap",
       [](Hostile& h) {
         const auto& other = h.header["model.layers.0.input_layernorm.weight"];
         h.header["model.norm.weight"]["data_offsets"] = other["data_offsets"];
         h.write_model();
       },
       Expect::kStartupError, "overlap"},
      {"offsets_negative", [=](Hostile& h) { tensor(h)["data_offsets"][0] = -8; h.write_model(); },
       Expect::kStartupError, "data_offsets must be [begin, end]"},
      {"shape_times_dtype_mismatch", [=](Hostile& h) { tensor(h)["shape"] = {7}; h.write_model(); },
       Expect::kStartupError, "needs 28 bytes"},
      {"shape_overflows_64_bits",
       [=](Hostile& h) { tensor(h)["shape"] = {1ll << 32, 1ll << 32}; h.write_model(); }, Expect::kStartupError,
       "more bytes than 2^64"},
      {"shape_negative", [=](Hostile& h) { tensor(h)["shape"] = {-64}; h.write_model(); }, Expect::kStartupError,
       "bad shape entry"},
      {"shape_not_array", [=](Hostile& h) { tensor(h)["shape"] = "64"; h.write_model(); }, Expect::kStartupError,
       "shape must be an array"},
      {"dtype_unknown", [=](Hostile& h) { tensor(h)["dtype"] = "Q7"; h.write_model(); }, Expect::kStartupError,
       "unknown dtype 'Q7'"},
      {"dtype_not_string", [=](Hostile& h) { tensor(h)["dtype"] = 32; h.write_model(); }, Expect::kStartupError,
       "dtype must be a string"},
      {"entry_not_object", [=](Hostile& h) { tensor(h) = 5; h.write_model(); }, Expect::kStartupError,
       "expected an object with dtype, shape and data_offsets"},
      {"tensor_missing",
       [](Hostile& h) { h.header.erase("model.norm.weight"); h.write_model(); }, Expect::kStartupError,
       "model.norm.weight"},
      // config.json
      {"config_nan", [](Hostile& h) { test::write_file(h.model + "/config.json", "{\"rms_norm_eps\": NaN}"); },
       Expect::kStartupError, "not valid JSON"},
      {"config_infinite_eps",
       [](Hostile& h) {
         std::string c = test::read_file(h.model + "/config.json");
         c.insert(c.rfind('}'), ", \"rope_theta\": 1e999");
         test::write_file(h.model + "/config.json", c);
       },
       Expect::kStartupError, "config.json"},
      {"config_negative_size", [](Hostile& h) { h.edit_json("config.json", [](auto& c) { c["hidden_size"] = -64; }); },
       Expect::kStartupError, "\"hidden_size\" must be a positive integer"},
      {"config_size_as_string",
       [](Hostile& h) { h.edit_json("config.json", [](auto& c) { c["num_hidden_layers"] = "five"; }); },
       Expect::kStartupError, "\"num_hidden_layers\" must be a positive integer"},
      {"config_dtype_not_string",
       [](Hostile& h) { h.edit_json("config.json", [](auto& c) { c["torch_dtype"] = 16; }); },
       Expect::kStartupError, "\"torch_dtype\" must be a string"},
      {"config_rope_type_not_string",
       [](Hostile& h) { h.edit_json("config.json", [](auto& c) { c["rope_scaling"] = {{"rope_type", 3}}; }); },
       Expect::kStartupError, "\"rope_type\" must be a string"},
      {"config_huge_vocab",
       [](Hostile& h) { h.edit_json("config.json", [](auto& c) { c["vocab_size"] = 2000000000; }); },
       Expect::kStartupError, "model.embed_tokens.weight"},
      {"config_nested_100k", [](Hostile& h) { test::write_file(h.model + "/config.json", nested("[", "]", 100000)); },
       Expect::kStartupError, "nested deeper"},
      {"config_is_array", [](Hostile& h) { test::write_file(h.model + "/config.json", "[]"); },
       Expect::kStartupError, "expected a JSON object"},
      // tokenizer.json
      {"added_token_negative_id",
       [](Hostile& h) {
         h.edit_json("tokenizer.json", [](auto& t) {
           t["added_tokens"].push_back({{"id", -5}, {"content", "<evil>"}, {"special", true}});
         });
       },
       Expect::kStartupError, "id -5 is outside"},
      {"vocab_id_out_of_range",
       [](Hostile& h) { h.edit_json("tokenizer.json", [](auto& t) { t["model"]["vocab"]["zzz"] = 1ll << 40; }); },
       Expect::kStartupError, "is not an integer in [0, "},
      {"tokenizer_not_json", [](Hostile& h) { test::write_file(h.model + "/tokenizer.json", "{\"model\": "); },
       Expect::kStartupError, "tokenizer.json: not valid JSON"},
      {"tokenizer_nested_100k",
       [](Hostile& h) { test::write_file(h.model + "/tokenizer.json", nested("{\"model\":", "}", 100000, "1")); },
       Expect::kStartupError, "nested deeper"},
      {"tokenizer_model_unknown",
       [](Hostile& h) { h.edit_json("tokenizer.json", [](auto& t) { t["model"]["type"] = "Unigram"; }); },
       Expect::kStartupError, "Unigram"},
      // chat templates (tokenizer_config.json)
      {"template_50k_nested_ifs",
       [](Hostile& h) { h.set_template(nested("{% if true %}", "{% endif %}", 50000, "x")); },
       Expect::kStartupError, "nested deeper than"},
      {"template_100k_parentheses",
       [](Hostile& h) { h.set_template("{{ " + nested("(", ")", 100000, "1") + " }}"); }, Expect::kStartupError,
       "nested deeper than"},
      {"template_100k_term_sum",
       [](Hostile& h) {
         std::string sum = "{{ 1";
         for (int i = 0; i < 100000; ++i) sum += " + 1";
         h.set_template(sum + " }}");
       },
       Expect::kStartupError, "nested deeper than"},
      {"template_unsupported_syntax", [](Hostile& h) { h.set_template("{% macro m() %}x{% endmacro %}"); },
       Expect::kStartupError, "chat template"},
      {"template_loops_1e12",
       [](Hostile& h) {
         test::write_file(h.prompts, kMessages + "\n");
         h.set_template("{% for i in range(1000000) %}{% for j in range(1000000) %}{% endfor %}{% endfor %}");
       },
       Expect::kErrorRecord, "steps"},
      {"template_range_1e8",
       [](Hostile& h) {
         test::write_file(h.prompts, kMessages + "\n");
         h.set_template("{{ range(100000000)|length }}");
       },
       Expect::kErrorRecord, "range"},
      {"template_string_1e9",
       [](Hostile& h) {
         test::write_file(h.prompts, kMessages + "\n");
         h.set_template("{{ 'ab' * 500000000 }}");
       },
       Expect::kErrorRecord, "MiB"},
      {"template_value_nested_100k",
       [](Hostile& h) {
         test::write_file(h.prompts, kMessages + "\n");
         h.set_template("{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}"
                        "{% endfor %}{{ ns.x }}");
       },
       Expect::kErrorRecord, "nested deeper"},
      {"template_object_in_itself",
       [](Hostile& h) {
         test::write_file(h.prompts, kMessages + "\n");
         h.set_template("{% set ns = namespace(x=1) %}{% set ns.x = ns %}{{ ns|tojson }}");
       },
       Expect::kErrorRecord, "inside itself"},
      {"template_strftime_long_format",
       [](Hostile& h) {
         test::write_file(h.prompts, kMessages + "\n");
         h.set_template("{{ strftime_now('%Y%m%d' * 200) }}");
       },
       Expect::kErrorRecord, "strftime_now"},
      // prompt files
      {"prompt_ids_nested_100k",
       [](Hostile& h) { test::write_file(h.prompts, "{\"prompt_ids\": " + nested("[", "]", 100000) + "}\n"); },
       Expect::kErrorRecord, "nested deeper"},
      {"messages_nested_100k",
       [](Hostile& h) {
         test::write_file(h.prompts,
                          R"({"messages": [{"role": "user", "content": )" + nested("[", "]", 100000) + "}]}\n");
       },
       Expect::kErrorRecord, "nested deeper"},
      {"prompt_invalid_utf8", [](Hostile& h) { test::write_file(h.prompts, "{\"prompt\": \"a\xC3\x28z\"}\n"); },
       Expect::kErrorRecord, "UTF-8"},
      {"prompt_lone_surrogate", [](Hostile& h) { test::write_file(h.prompts, "{\"prompt\": \"a\\ud800z\"}\n"); },
       Expect::kErrorRecord, "surrogate", {"--prompt-format", "jsonl"}},
      {"prompt_line_10mb",
       [](Hostile& h) { test::write_file(h.prompts, "{\"prompt\": \"" + std::string(10 << 20, 'a') + "\"}\n"); },
       Expect::kErrorRecord, "context holds 512"},
      {"prompt_binary_garbage",
       [](Hostile& h) {
         std::string g(4096, '\0');
         uint32_t x = 7;
         for (char& c : g) c = char((x = x * 1103515245u + 12345u) >> 24);
         test::write_file(h.prompts, g + "\n");  // lines of random bytes: a text file as detected
       },
       Expect::kErrorRecord, "not valid UTF-8"},
      {"prompt_id_out_of_vocab", [](Hostile& h) { test::write_file(h.prompts, "{\"prompt_ids\": [1, 4294967296]}\n"); },
       Expect::kErrorRecord, "is not a token id in [0, 512)"},
      {"prompt_id_negative", [](Hostile& h) { test::write_file(h.prompts, "{\"prompt_ids\": [-1]}\n"); },
       Expect::kErrorRecord, "is not a token id"},
      {"max_tokens_huge",
       [](Hostile& h) { test::write_file(h.prompts, "{\"prompt_ids\": [1], \"max_tokens\": 1e300}\n"); },
       Expect::kErrorRecord, "\"max_tokens\" must be a positive integer"},
      // --resume of an output that is not ours
      {"resume_garbage",
       [](Hostile& h) { test::write_file(h.output, "\x01\x02 not json\n"); }, Expect::kStartupError,
       "not a JSON line", {"--resume"}},
      {"resume_nested_100k",
       [](Hostile& h) { test::write_file(h.output, nested("[", "]", 100000) + "\n"); }, Expect::kStartupError,
       "not a JSON line", {"--resume"}},
  };
}

class HostileInput : public ::testing::TestWithParam<Case> {};

TEST_P(HostileInput, EndsWithAClearErrorInTime) {
  const Case& c = GetParam();
  Hostile h;
  c.setup(h);
  std::vector<std::string> args = {"generate", "--model", h.model, "--prompts", h.prompts, "--output", h.output,
                                   "--max-tokens", "2"};
  args.insert(args.end(), c.extra.begin(), c.extra.end());
  const auto t0 = std::chrono::steady_clock::now();
  const test::RunResult r = test::run_meshlm(args);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(seconds, kTimeBoundSeconds);
  if (c.expect == Expect::kStartupError) {
    EXPECT_EQ(r.exit_code, 1) << r.err;
    size_t lines = 0;
    for (char ch : r.err) lines += ch == '\n';
    EXPECT_EQ(lines, 1u) << r.err;
    EXPECT_NE(r.err.find(c.fragment), std::string::npos) << "missing '" << c.fragment << "' in: " << r.err;
  } else {
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto out = test::read_jsonl(h.output);
    ASSERT_FALSE(out.empty());
    ASSERT_TRUE(out[0].contains("error")) << out[0].dump().substr(0, 300);
    const std::string error = out[0]["error"].get<std::string>();
    EXPECT_NE(error.find(c.fragment), std::string::npos) << "missing '" << c.fragment << "' in: " << error;
    EXPECT_NE(error.find("p.jsonl:1"), std::string::npos) << error;
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, HostileInput, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(HostileInputTable, HasAtLeastFortyCases) { EXPECT_GE(cases().size(), 40u); }

}  // namespace
}  // namespace meshlm
