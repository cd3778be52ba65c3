// Bad input through the real binary: each case exits non-zero, without a crash, with one error line that names
// the file (and line or tensor) and what was expected.
#include <gtest/gtest.h>

#include <filesystem>

#include "test_support.h"

namespace meshlm {
namespace {
namespace fs = std::filesystem;

class CliErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = tmp_.file("model");
    test::copy_dir(test::source_dir() + "/models/stories260k", model_);
    prompts_ = tmp_.file("p.jsonl");
    test::write_file(prompts_, "{\"id\": \"a\", \"prompt_ids\": [1, 403, 407]}\n");
  }

  test::RunResult generate(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"generate", "--model", model_, "--prompts", prompts_, "--output",
                                     tmp_.file("out.jsonl"), "--max-tokens", "4", "--output-order", "input"};
    args.insert(args.end(), extra.begin(), extra.end());
    return test::run_meshlm(args);
  }

  // Exit code 1 (not a signal), exactly one line on stderr, containing every fragment.
  static void expect_error(const test::RunResult& r, const std::vector<std::string>& fragments) {
    EXPECT_EQ(r.exit_code, 1) << r.err;
    size_t lines = 0;
    for (char c : r.err) lines += c == '\n';
    EXPECT_EQ(lines, 1u) << r.err;
    EXPECT_NE(r.err.find("error:"), std::string::npos) << r.err;
    for (auto& f : fragments) EXPECT_NE(r.err.find(f), std::string::npos) << "missing '" << f << "' in: " << r.err;
  }

  void edit_safetensors_header(const std::string& from, const std::string& to) {
    ASSERT_EQ(from.size(), to.size());
    const std::string path = model_ + "/model.safetensors";
    std::string bytes = test::read_file(path);
    const size_t at = bytes.find(from);
    ASSERT_NE(at, std::string::npos);
    bytes.replace(at, from.size(), to);
    test::write_file(path, bytes);
  }

  void edit_config(const std::string& key, const nlohmann::json& value) {
    auto c = nlohmann::json::parse(test::read_file(model_ + "/config.json"));
    c[key] = value;
    test::write_file(model_ + "/config.json", c.dump());
  }

  test::TempDir tmp_;
  std::string model_, prompts_;
};

TEST_F(CliErrors, WorksOnTheUntouchedCopy) {
  const auto r = generate();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(test::read_jsonl(tmp_.file("out.jsonl")).size(), 1u);
}

TEST_F(CliErrors, MissingModelDirectory) {
  model_ = tmp_.file("nope");
  expect_error(generate(), {"nope", "does not exist"});
}

TEST_F(CliErrors, MissingPromptFile) {
  prompts_ = tmp_.file("none.jsonl");
  expect_error(generate(), {"none.jsonl", "cannot open"});
}

TEST_F(CliErrors, TruncatedSafetensors) {
  const std::string path = model_ + "/model.safetensors";
  fs::resize_file(path, fs::file_size(path) - 1000);
  expect_error(generate(), {"model.safetensors", "outside the data section"});
}

TEST_F(CliErrors, GarbageSafetensors) {
  test::write_file(model_ + "/model.safetensors", std::string(64, 'z'));
  expect_error(generate(), {"model.safetensors", "header length"});
}

TEST_F(CliErrors, WrongShapeNamesTensorExpectedAndActual) {
  edit_config("intermediate_size", 170);
  expect_error(generate(), {"model.layers.0.mlp.", "expected shape [", "170", "got [", "172"});
}

TEST_F(CliErrors, UnsupportedDtypeNamesTensor) {
  edit_safetensors_header(R"("model.norm.weight":{"dtype":"F32")", R"("model.norm.weight":{"dtype":"I32")");
  expect_error(generate(), {"model.norm.weight", "I32", "not supported"});
}

TEST_F(CliErrors, MissingTensor) {
  edit_safetensors_header(R"("model.norm.weight")", R"("model.xxxx.weight")");
  expect_error(generate(), {"model.norm.weight", "missing"});
}

TEST_F(CliErrors, BadConfig) {
  edit_config("architectures", {"BertModel"});
  expect_error(generate(), {"config.json", "BertModel", "not supported"});
  test::write_file(model_ + "/config.json", "{\"architectures\": [");
  expect_error(generate(), {"config.json", "not valid JSON"});
}

// With --on-error fail, the first bad line stops the run before any generation.
TEST_F(CliErrors, BadJsonlLineNamesFileAndLine) {
  test::write_file(prompts_, "{\"prompt\": \"ok\"}\n{\"prompt\": \"broken\n");
  expect_error(generate({"--on-error", "fail"}), {"p.jsonl:2", "not valid JSON"});
  test::write_file(prompts_, "{\"prompt\": \"ok\", \"max_token\": 3}\n");
  expect_error(generate({"--on-error", "fail"}), {"p.jsonl:1", "unknown field \"max_token\""});
  test::write_file(prompts_, "{\"prompt_ids\": [1, 99999]}\n");
  expect_error(generate({"--on-error", "fail"}), {"p.jsonl:1", "99999", "[0, 512)"});
  test::write_file(prompts_, "{\"prompt\": \"\"}\n");
  expect_error(generate({"--on-error", "fail"}), {"p.jsonl:1", "empty"});
  test::write_file(prompts_, "{\"id\": \"x\", \"prompt\": \"a\"}\n{\"id\": \"x\", \"prompt\": \"b\"}\n");
  expect_error(generate({"--on-error", "fail"}), {"p.jsonl:2", "duplicate id"});
  test::write_file(prompts_, "\n\n");
  expect_error(generate(), {"p.jsonl", "no requests"});
}

TEST_F(CliErrors, InvalidUtf8NamesLine) {
  test::write_file(prompts_, "{\"prompt\": \"fine\"}\n{\"prompt\": \"bad \xC3\x28 byte\"}\n");
  expect_error(generate({"--on-error", "fail"}), {"p.jsonl:2", "UTF-8"});
}

TEST_F(CliErrors, PromptLongerThanContext) {
  std::string ids = "[1";
  for (int i = 0; i < 600; ++i) ids += ", 300";
  test::write_file(prompts_, "{\"id\": \"long\", \"prompt_ids\": " + ids + "]}\n");
  expect_error(generate({"--on-error", "fail"}), {"p.jsonl:1", "601 tokens", "context holds 512"});
}

// By default a bad line becomes an error record in its place, and every other request is answered.
TEST_F(CliErrors, BadLinesBecomeErrorRecordsAndTheJobGoesOn) {
  std::string ids = "[1";
  for (int i = 0; i < 600; ++i) ids += ", 403";
  test::write_file(prompts_, "{\"id\": \"a\", \"prompt_ids\": [1, 403]}\n"
                             "{\"id\": \"b\", \"prompt\": \"broken\n"
                             "\n"
                             "{\"id\": \"c\", \"prompt\": \"\"}\n"
                             "{\"id\": \"long\", \"prompt_ids\": " + ids + "]}\n"
                             "{\"id\": \"d\", \"prompt\": \"Once\", \"max_tokens\": 2}\n"
                             "{\"id\": \"d\", \"prompt\": \"Twice\"}\n");
  const auto r = generate();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto out = test::read_jsonl(tmp_.file("out.jsonl"));
  ASSERT_EQ(out.size(), 6u);
  EXPECT_EQ(out[0]["id"], "a");
  EXPECT_EQ(out[0]["completion_tokens"], 4);
  EXPECT_TRUE(out[1]["id"].is_null());
  EXPECT_EQ(out[1]["line"], 2);
  EXPECT_NE(out[1]["error"].get<std::string>().find("p.jsonl:2: not valid JSON"), std::string::npos);
  EXPECT_EQ(out[2]["id"], "c");
  EXPECT_NE(out[2]["error"].get<std::string>().find("p.jsonl:4: the prompt is empty"), std::string::npos);
  EXPECT_EQ(out[3]["id"], "long");
  EXPECT_NE(out[3]["error"].get<std::string>().find("p.jsonl:5: the prompt has 601 tokens but the context holds 512"),
            std::string::npos);
  EXPECT_EQ(out[4]["id"], "d");
  EXPECT_EQ(out[4]["completion_tokens"], 2);
  EXPECT_NE(out[5]["error"].get<std::string>().find("p.jsonl:7: duplicate id \"d\""), std::string::npos);
}

TEST_F(CliErrors, BadOptions) {
  expect_error(generate({"--batch-size", "0"}), {"--batch-size"});
  expect_error(generate({"--max-batch", "8", "--max-batch-tokens", "4"}), {"--max-batch-tokens (4) must be at least"});
  expect_error(generate({"--top-p", "1.5"}), {"--top-p"});
  expect_error(generate({"--no-such-flag"}), {"no-such-flag"});
  expect_error(test::run_meshlm({"generate", "--prompts", prompts_}), {"--output is required"});
  expect_error(generate({"--output", tmp_.file("no/such/dir/out.jsonl")}), {"out.jsonl", "cannot open"});
}

// A layout that needs more than the host has (here: under --memory-limit) is refused before anything is loaded.
TEST_F(CliErrors, MemoryLimitRefusesALayoutThatDoesNotFit) {
  expect_error(generate({"--memory-limit", "1M"}),
               {"this layout needs 1.", "weights 1.04 MB + KV cache", "has 1.00 MB under --memory-limit", "--pp 2"});
  expect_error(generate({"--memory-limit", "1Q"}), {"--memory-limit", "'1Q'"});
  EXPECT_EQ(generate({"--memory-limit", "100M"}).exit_code, 0);
}

// A KV cache too small for one sequence at full context is refused with the numbers; a bad size names the option.
TEST_F(CliErrors, KvMemoryTooSmallForOneSequence) {
  expect_error(generate({"--kv-memory", "1K"}), {"the KV cache on", "holds 0 blocks of 16 positions (--kv-memory)",
                                                 "raise --kv-memory"});
  expect_error(generate({"--kv-memory", "lots"}), {"--kv-memory", "'lots'"});
  EXPECT_EQ(generate({"--kv-memory", "10M"}).exit_code, 0);
}

TEST_F(CliErrors, TokenizeAndInfoErrors) {
  test::write_file(tmp_.file("t.jsonl"), "{\"text\": \"hi\"}\n{\"txt\": \"x\"}\n");
  expect_error(test::run_meshlm({"tokenize", "--tokenizer", model_, "--input", tmp_.file("t.jsonl"), "--output", "-"}),
               {"t.jsonl:2", "\"text\""});
  expect_error(test::run_meshlm({"info", "--model", tmp_.file("nothing")}), {"nothing"});
  EXPECT_EQ(test::run_meshlm({"bogus"}).exit_code, 2);
}

}  // namespace
}  // namespace meshlm
