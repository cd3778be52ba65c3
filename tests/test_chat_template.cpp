// Chat templates: every line of ../shared/golden/chat/*.jsonl byte-exact (as Hugging Face's apply_chat_template
// renders it), the `meshlm render` verb, and the Jinja subset feature by feature.
#include <gtest/gtest.h>

#include <filesystem>

#include "chat/chat_template.h"
#include "chat/jinja_parser.h"
#include "chat/jinja_render.h"
#include "core/check.h"
#include "test_support.h"

namespace meshlm {
namespace {
namespace fs = std::filesystem;

TEST(ChatGolden, EveryLineOfEveryTemplate) {
  if (test::shared_dir().empty()) GTEST_SKIP() << "../shared is absent (set MESHLM_SHARED)";
  size_t files = 0, lines = 0;
  for (const auto& entry : fs::directory_iterator(test::shared_dir() + "/golden/chat")) {
    const std::string name = entry.path().stem().string();
    const ChatTemplate chat = ChatTemplate::load(test::shared_dir() + "/tokenizers/" + name);
    ++files;
    size_t n = 0;
    for (const auto& j : test::read_jsonl(entry.path().string())) {
      ++n;
      const nlohmann::ordered_json messages = nlohmann::ordered_json::parse(j["messages"].dump());
      if (!j["error"].is_null()) {
        EXPECT_THROW(chat.render(messages, j["add_generation_prompt"]), Error) << name << " line " << n;
        continue;
      }
      EXPECT_EQ(chat.render(messages, j["add_generation_prompt"]), j["rendered"].get<std::string>())
          << name << " line " << n;
      ++lines;
    }
  }
  EXPECT_GE(files, 5u);
  std::printf("[ chat ] %zu templates, %zu lines\n", files, lines);
}

TEST(ChatGolden, RenderVerb) {
  if (test::shared_dir().empty()) GTEST_SKIP() << "../shared is absent (set MESHLM_SHARED)";
  test::TempDir tmp;
  const std::string golden = test::shared_dir() + "/golden/chat/qwen2.jsonl";
  const auto r = test::run_meshlm({"render", "--tokenizer", test::shared_dir() + "/tokenizers/qwen2", "--input",
                                   golden, "--output", tmp.file("o.jsonl")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto want = test::read_jsonl(golden), got = test::read_jsonl(tmp.file("o.jsonl"));
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(got[i]["rendered"], want[i]["rendered"]) << "line " << i + 1;
}

std::string render(const std::string& source, const nlohmann::ordered_json& vars = nlohmann::ordered_json::object()) {
  return jinja::render(jinja::parse_template(source), jinja::Value::from_json(vars));
}

TEST(Jinja, WhitespaceControlTrimAndLstripBlocks) {
  EXPECT_EQ(render("a\n  {% if true %}\n  b\n  {% endif %}\nc"), "a\n  b\nc");  // trim_blocks + lstrip_blocks
  EXPECT_EQ(render("a  {%- if true -%}  b  {%- endif -%}  c"), "abc");
  EXPECT_EQ(render("x {{ 1 }} y"), "x 1 y");  // expressions are not stripped
  EXPECT_EQ(render("a\n  {%+ if true %}b{% endif %}"), "a\n  b");
  EXPECT_EQ(render("a {# note #}\nb"), "a b");
}

// range() as Python's, at the ends of int64 too; integer literals and arithmetic that overflow are errors.
TEST(Jinja, RangeAndIntegerLimits) {
  EXPECT_EQ(render("{{ range(4) | list }}"), "[0, 1, 2, 3]");
  EXPECT_EQ(render("{{ range(5, 0, -2) | list }}"), "[5, 3, 1]");
  EXPECT_EQ(render("{{ range(3, 3) | list }}{{ range(3, 1) | list }}"), "[][]");
  EXPECT_EQ(render("{{ range(9223372036854775800, 9223372036854775807, 5) | list }}"),
            "[9223372036854775800, 9223372036854775805]");
  EXPECT_EQ(render("{{ -7 % 3 }} {{ 7 % -3 }} {{ -7 // 2 }}"), "2 -2 -4");
  EXPECT_THROW(render("{{ range(10000000) | length }}"), Error);
  EXPECT_THROW(render("{{ 99999999999999999999 }}"), Error);
  EXPECT_THROW(render("{{ 9223372036854775807 + 1 }}"), Error);
  EXPECT_THROW(render("{{ 4611686018427387904 * 2 }}"), Error);
  EXPECT_THROW(render("{{ 1e300 | int }}"), Error);
}

TEST(Jinja, LoopsAndScopes) {
  const nlohmann::ordered_json v = {{"xs", {"a", "b", "c"}}, {"d", {{"k", 1}, {"j", 2}}}};
  EXPECT_EQ(render("{% for x in xs %}{{ loop.index }}{{ x }}{% if not loop.last %},{% endif %}{% endfor %}", v),
            "1a,2b,3c");
  EXPECT_EQ(render("{% for x in xs if x != 'b' %}{{ loop.index0 }}{{ x }}{{ loop.length }}{% endfor %}", v), "0a21c2");
  EXPECT_EQ(render("{% for k, n in d.items() %}{{ k }}={{ n }};{% endfor %}", v), "k=1;j=2;");
  EXPECT_EQ(render("{% for x in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% for x in xs %}{% if x == 'b' %}{% break %}{% endif %}{{ x }}{% endfor %}", v), "a");
  EXPECT_EQ(render("{% set ns = namespace(n=0) %}{% for x in xs %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}", v),
            "3");
  EXPECT_EQ(render("{% set y = 1 %}{% for x in xs %}{% set y = 5 %}{% endfor %}{{ y }}", v), "1");
  EXPECT_EQ(render("{% set s %}in{{ 1 + 1 }}{% endset %}[{{ s }}]"), "[in2]");
}

TEST(Jinja, ExpressionsFiltersTestsMethods) {
  const nlohmann::ordered_json v = {{"m", {{"role", "user"}, {"content", "  Hi there  "}}}, {"n", 7}};
  EXPECT_EQ(render("{{ m['content'] | trim }}|{{ m.content.strip() | upper }}", v), "Hi there|HI THERE");
  EXPECT_EQ(render("{{ m.missing is defined }} {{ m.role is string }} {{ n is not none }}", v), "False True True");
  EXPECT_EQ(render("{{ 'yes' if m.role == 'user' else 'no' }} {{ n // 2 }} {{ n % 4 }} {{ n / 2 }}", v), "yes 3 3 3.5");
  EXPECT_EQ(render("{{ [1, 2, 3] | length }} {{ [1, 2, 3][1:] }} {{ 'abc'[::-1] }} {{ 'a' ~ 1 }}"),
            "3 [2, 3] cba a1");
  EXPECT_EQ(render("{{ 'x' in 'xyz' }} {{ 3 not in [1, 2] }} {{ none }} {{ undefined_thing }}."), "True True None .");
  EXPECT_EQ(render("{{ {'name': 'f', 'args': {'a': [1, 2.5, true, none]}} | tojson }}"),
            "{\"name\": \"f\", \"args\": {\"a\": [1, 2.5, true, null]}}");
  EXPECT_EQ(render("{{ 'é\"\\n' | tojson }}"), "\"é\\\"\\n\"");
  EXPECT_EQ(render("{{ ['a', 'b'] | join(', ') }} {{ 'a,b'.split(',') }} {{ 'Hi'.startswith(('x', 'H')) }}"),
            "a, b ['a', 'b'] True");
  EXPECT_EQ(render("{{ x | default('d') }} {{ '' | default('e', true) }} {{ 'ab' | replace('a', 'c') }}"), "d e cb");
  const nlohmann::ordered_json msgs = {{"ms", {{{"role", "system"}}, {{"role", "user"}}, {{"role", "user"}}}}};
  EXPECT_EQ(render("{{ ms | selectattr('role', 'equalto', 'user') | list | length }} {{ ms | map(attribute='role') | "
                   "first }}",
                   msgs),
            "2 system");
}

TEST(ChatTemplate, MistralStyleRaisesPerLineAndRenderKeepsGoing) {
  // Mistral-Instruct's template: roles must alternate; anything else is the template's own error.
  test::TempDir tmp;
  test::write_file(tmp.file("t.jinja"),
                   "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 "
                   "== 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') "
                   "}}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
                   "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ "
                   "raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}");
  test::write_file(tmp.file("in.jsonl"),
                   "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", "
                   "\"content\": \"Yo\"}, {\"role\": \"user\", \"content\": \"Ok\"}]}\n"
                   "{\"messages\": [{\"role\": \"system\", \"content\": \"S\"}]}\n");
  const auto r = test::run_meshlm({"render", "--tokenizer", test::source_dir() + "/models/stories260k",
                                   "--chat-template", tmp.file("t.jinja"), "--input", tmp.file("in.jsonl"), "--output",
                                   tmp.file("o.jsonl")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto out = test::read_jsonl(tmp.file("o.jsonl"));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0]["rendered"], "<s>[INST] Hi [/INST]Yo</s>[INST] Ok [/INST]");
  EXPECT_TRUE(out[1]["rendered"].is_null());
  EXPECT_NE(out[1]["error"].get<std::string>().find("Conversation roles must alternate"), std::string::npos);
}

TEST(Jinja, OutsideTheSubsetIsAClearError) {
  auto message = [](const std::string& src) {
    try {
      render(src);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("{% macro f() %}x{% endmacro %}").find("line 1: the Jinja tag 'macro' is not supported"),
            std::string::npos);
  EXPECT_NE(message("a\n{{ x | frobnicate }}").find("the Jinja filter 'frobnicate' is not supported"), std::string::npos);
  EXPECT_NE(message("{% if x %}").find("missing {% endif %}"), std::string::npos);
  EXPECT_NE(message("{{ raise_exception('Only user and assistant roles') }}")
                .find("the chat template raised an error: Only user and assistant roles"),
            std::string::npos);
  EXPECT_NE(message("{{ 1 + 'a' }}").find("cannot apply '+' to a int and a str"), std::string::npos);
}

}  // namespace
}  // namespace meshlm
