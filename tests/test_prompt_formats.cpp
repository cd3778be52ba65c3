// The three prompt formats through the binary: chat messages (rendered with a chat template, tokenized without
// adding special tokens), OpenAI batch files answered in OpenAI's batch output shape, and plain text lines.
#include <gtest/gtest.h>

#include "test_support.h"

namespace meshlm {
namespace {

const char* kChatML =
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

struct Job {
  test::TempDir tmp;
  test::RunResult result;
  std::vector<nlohmann::json> lines;
  Job(const std::string& prompts, std::vector<std::string> extra = {}) {
    test::write_file(tmp.file("p"), prompts);
    test::write_file(tmp.file("chat.jinja"), kChatML);
    std::vector<std::string> args = {"generate", "--prompts", tmp.file("p"), "--output", tmp.file("o.jsonl"),
                                     "--chat-template", tmp.file("chat.jinja"), "--max-tokens", "12", "--output-order", "input"};
    args.insert(args.end(), extra.begin(), extra.end());
    result = test::run_meshlm(args);
    if (result.exit_code == 0) lines = test::read_jsonl(tmp.file("o.jsonl"));
  }
};

std::vector<int> raw_ids(const std::string& text) {
  test::TempDir tmp;
  test::write_file(tmp.file("t.jsonl"), nlohmann::json({{"text", text}}).dump() + "\n");
  const auto r = test::run_meshlm({"tokenize", "--raw", "--input", tmp.file("t.jsonl"), "--output", tmp.file("o")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return test::read_jsonl(tmp.file("o"))[0]["ids"].get<std::vector<int>>();
}

TEST(PromptFormats, MessagesAreRenderedAndTokenizedWithoutExtraSpecialTokens) {
  const std::string rendered = "<|im_start|>user\nTell me a story<|im_end|>\n<|im_start|>assistant\n";
  const std::vector<int> ids = raw_ids(rendered);
  Job chat("{\"id\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": \"Tell me a story\"}]}\n");
  Job direct(nlohmann::json({{"id", "m"}, {"prompt_ids", ids}}).dump() + "\n");
  ASSERT_EQ(chat.result.exit_code, 0) << chat.result.err;
  ASSERT_EQ(direct.result.exit_code, 0) << direct.result.err;
  EXPECT_EQ(chat.lines[0]["prompt_tokens"], ids.size());
  EXPECT_EQ(chat.lines[0]["token_ids"], direct.lines[0]["token_ids"]);
}

TEST(PromptFormats, OpenAIBatchRoundTrip) {
  const std::string input =
      "{\"custom_id\": \"chat-1\", \"method\": \"POST\", \"url\": \"/v1/chat/completions\", \"body\": {\"model\": "
      "\"tiny\", \"messages\": [{\"role\": \"user\", \"content\": \"Tell me a story\"}], \"max_tokens\": 8}}\n"
      "{\"custom_id\": \"cmpl-1\", \"method\": \"POST\", \"url\": \"/v1/completions\", \"body\": {\"prompt\": "
      "\"Once upon a time\", \"max_tokens\": 6, \"temperature\": 0}}\n"
      "{\"custom_id\": \"bad-1\", \"method\": \"POST\", \"url\": \"/v1/embeddings\", \"body\": {\"input\": \"x\"}}\n";
  Job batch(input);
  ASSERT_EQ(batch.result.exit_code, 0) << batch.result.err;
  ASSERT_EQ(batch.lines.size(), 3u);
  const auto& chat = batch.lines[0];
  EXPECT_EQ(chat["custom_id"], "chat-1");
  EXPECT_TRUE(chat["error"].is_null());
  EXPECT_EQ(chat["response"]["status_code"], 200);
  const auto& body = chat["response"]["body"];
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["model"], "tiny");
  EXPECT_EQ(body["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(body["usage"]["completion_tokens"], 8);
  EXPECT_EQ(body["usage"]["total_tokens"], body["usage"]["prompt_tokens"].get<int>() + 8);

  // The completion's text is what the plain format gives for the same prompt.
  Job plain("{\"prompt\": \"Once upon a time\", \"max_tokens\": 6}\n");
  const auto& cmpl = batch.lines[1]["response"]["body"];
  EXPECT_EQ(cmpl["object"], "text_completion");
  EXPECT_EQ(cmpl["choices"][0]["text"], plain.lines[0]["text"]);
  EXPECT_EQ(cmpl["choices"][0]["finish_reason"], "length");

  const auto& bad = batch.lines[2];
  EXPECT_EQ(bad["custom_id"], "bad-1");
  EXPECT_TRUE(bad["response"].is_null());
  EXPECT_NE(bad["error"]["message"].get<std::string>().find("p:3: \"url\" must be"), std::string::npos);
}

TEST(PromptFormats, PlainTextOneLinePerPrompt) {
  Job text("Once upon a time\n\nThe little dog\n");
  ASSERT_EQ(text.result.exit_code, 0) << text.result.err;
  ASSERT_EQ(text.lines.size(), 2u);
  Job jsonl("{\"prompt\": \"Once upon a time\"}\n{\"prompt\": \"The little dog\"}\n");
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(text.lines[i]["id"], std::to_string(i));
    EXPECT_EQ(text.lines[i]["token_ids"], jsonl.lines[i]["token_ids"]);
  }
  // Forced formats: a JSON line read as text is just text; a text line read as jsonl is an error record.
  Job forced("Once upon a time\n", {"--prompt-format", "jsonl"});
  ASSERT_EQ(forced.result.exit_code, 0) << forced.result.err;
  EXPECT_NE(forced.lines[0]["error"].get<std::string>().find("not valid JSON"), std::string::npos);
  Job bad_flag("x\n", {"--prompt-format", "csv"});
  EXPECT_EQ(bad_flag.result.exit_code, 1);
  EXPECT_NE(bad_flag.result.err.find("--prompt-format must be auto, jsonl, openai or text"), std::string::npos);
}

TEST(PromptFormats, MessagesWithoutAnyChatTemplateIsAnErrorRecord) {
  test::TempDir tmp;
  test::write_file(tmp.file("p"), "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n{\"prompt\": \"ok\"}\n");
  const auto r = test::run_meshlm({"generate", "--prompts", tmp.file("p"), "--output", tmp.file("o"), "--max-tokens", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto out = test::read_jsonl(tmp.file("o"));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_NE(out[0]["error"].get<std::string>().find("no chat_template"), std::string::npos);
  EXPECT_EQ(out[1]["completion_tokens"], 2);
}

}  // namespace
}  // namespace meshlm
