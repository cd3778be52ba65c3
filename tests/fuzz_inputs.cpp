// A bounded mutation fuzzer for the parsers of untrusted input (no libFuzzer needed; built with the sanitizers by
// scripts/test.sh). Each target starts from a few seed inputs, applies random mutations (byte flips, inserts,
// deletes, duplicated runs, splices, and tokens that parsers care about: brackets, template tags, escapes, extreme
// numbers) and runs the parser on the result. An input may be rejected with an Error - that is the point - but
// nothing may crash (the sanitizers abort on any memory or undefined-behaviour error) or take longer than a bound.
//
//   fuzz_inputs TARGET EXECUTIONS [SEED]     TARGET: safetensors | prompt | tokenizer | jinja
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "app/request_parse.h"
#include "chat/chat_template.h"
#include "core/check.h"
#include "core/text_util.h"
#include "io/safetensors.h"
#include "tokenizer/tokenizer.h"

namespace meshlm {
namespace {
namespace fs = std::filesystem;

constexpr double kSlowSeconds = 10;  // one execution longer than this is a finding (a hang in the making)

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
void write(const std::string& path, const std::string& bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw std::runtime_error("cannot write " + path);
  const size_t n = std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
  if (n != bytes.size()) throw std::runtime_error("cannot write " + path);
}

std::string safetensors(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char((header.size() >> (8 * i)) & 0xff);
  return out + header + data;
}

class Mutator {
 public:
  explicit Mutator(uint32_t seed) : rng_(seed) {}
  std::string mutate(std::string s, const std::vector<std::string>& seeds) {
    const int n = 1 + int(rng_() % 8);
    for (int k = 0; k < n; ++k) {
      const size_t at = s.empty() ? 0 : rng_() % (s.size() + 1);
      switch (rng_() % 8) {
        case 0:
          if (at < s.size()) s[at] = char(s[at] ^ (1 << (rng_() % 8)));
          break;
        case 1:
          if (at < s.size()) s[at] = char(rng_());
          break;
        case 2: s.insert(at, 1 + rng_() % 4, char(rng_())); break;
        case 3:
          if (at < s.size()) s.erase(at, 1 + rng_() % std::min<size_t>(64, s.size() - at));
          break;
        case 4: {  // a run repeated, sometimes many times (deep nesting, long lines)
          if (at >= s.size()) break;
          const std::string run = s.substr(at, 1 + rng_() % 16);
          std::string many;
          for (size_t r = 0, times = rng_() % 4 == 0 ? 2000 : 1 + rng_() % 8; r < times; ++r) many += run;
          s.insert(at, many);
          break;
        }
        case 5: {  // splice with another seed
          const std::string& o = seeds[rng_() % seeds.size()];
          if (o.empty()) break;
          const size_t from = rng_() % o.size();
          s = s.substr(0, at) + o.substr(from, rng_() % (o.size() - from + 1));
          break;
        }
        default: {
          static const char* tokens[] = {"{", "}", "[", "]", "\"", "\\u", "\\ud800", ",", ":", "-1", "0", "1e999",
                                         "4294967296", "18446744073709551616", "-9223372036854775808", "NaN", "null",
                                         "{%", "%}", "{{", "}}", "{% if x %}", "{% endif %}", "{% for x in y %}",
                                         "{% endfor %}", "range(", ")", "|tojson", "*", "~", "\xff", "\xc3\x28",
                                         "\xf0\x9f\x98\x80", "\n", "\"dtype\"", "\"shape\"", "\"data_offsets\""};
          s.insert(at, tokens[rng_() % (sizeof tokens / sizeof *tokens)]);
        }
      }
      if (s.size() > (size_t(1) << 20)) s.resize(size_t(1) << 20);
    }
    return s;
  }
  uint32_t next() { return rng_(); }

 private:
  std::mt19937 rng_;
};

struct Target {
  std::vector<std::string> seeds;
  std::function<void(const std::string&)> run;  // may throw Error (a rejected input)
};

Target safetensors_target(const std::string& dir) {
  const std::string path = dir + "/fuzz.safetensors";
  const std::string data(64, '\x01');
  Target t;
  t.seeds = {safetensors(R"({"a":{"dtype":"F32","shape":[2,4],"data_offsets":[0,32]},)"
                         R"("b":{"dtype":"BF16","shape":[16],"data_offsets":[32,64]}})", data),
             safetensors(R"({"__metadata__":{"format":"pt"},"w":{"dtype":"U32","shape":[4,2],"data_offsets":[0,32]},)"
                         R"("s":{"dtype":"F16","shape":[4,1],"data_offsets":[32,40]}})", data)};
  t.run = [path](const std::string& bytes) {
    write(path, bytes);
    const SafetensorsFile f(path);
    std::vector<uint8_t> buf;
    for (const TensorInfo& info : f.tensors())
      if (info.nbytes <= 4096 && info.rows() > 0) {
        buf.resize(size_t(info.nbytes));
        f.read_rows(info, 0, info.rows(), buf.data());
      }
  };
  return t;
}

Target prompt_target(const std::string& model_dir) {
  static std::unique_ptr<Tokenizer> tok = Tokenizer::load(model_dir);
  static ChatTemplate chat("{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}"
                           "{% if add_generation_prompt %}<|assistant|>{% endif %}",
                           "fuzz", "<s>", "</s>");
  Target t;
  t.seeds = {R"({"id": "a", "prompt": "Once upon a time", "max_tokens": 8, "temperature": 0.7, "stop": ["."]})",
             R"({"prompt_ids": [1, 403, 407], "seed": 3, "top_k": 40, "top_p": 0.9})",
             R"({"messages": [{"role": "user", "content": "hi"}], "add_generation_prompt": true})",
             R"({"custom_id": "x", "method": "POST", "url": "/v1/chat/completions", "body": {"messages": )"
             R"([{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}], "max_tokens": 4}})"};
  t.run = [](const std::string& line) {
    ParseContext c;
    c.tokenizer = tok.get();
    c.chat = []() -> const ChatTemplate& { return chat; };
    c.vocab_size = tok->vocab_size();
    const auto j = parse_json_object(line, "line");
    if (j.contains("custom_id")) parse_openai_line(j, 0, c);
    else parse_simple_line(j, 0, c);
  };
  return t;
}

Target tokenizer_target(const std::string& model_dir, const std::string& dir) {
  Target t;
  t.seeds = {read(model_dir + "/tokenizer.json")};
  fs::create_directories(dir + "/tok");
  t.run = [dir](const std::string& json) {
    write(dir + "/tok/tokenizer.json", json);
    const auto tok = Tokenizer::load(dir + "/tok");
    for (const char* text : {"Once upon a time, there was a cat.", "  spaces\tand\nnewlines ", "ünïcödé 日本 😀"}) {
      const std::vector<int> ids = tok->encode(text, true);
      tok->decode(ids, true);
      tok->decode(ids, false);
    }
  };
  return t;
}

Target jinja_target() {
  Target t;
  t.seeds = {
      "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' "
      "+ '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
      "{{ bos_token }}{% for m in messages %}{% if m.role == 'user' %}{{ '[INST] ' + m.content | trim + ' [/INST]' }}"
      "{% elif m.role == 'assistant' %}{{ m.content }}{{ eos_token }}{% else %}{{ raise_exception('bad role') }}"
      "{% endif %}{% endfor %}",
      "{% set ns = namespace(n=0) %}{% for m in messages | selectattr('role', 'equalto', 'user') %}"
      "{% set ns.n = ns.n + 1 %}{{ loop.index }}:{{ m.content[:5] }}{{ m | tojson }}{% endfor %}{{ ns.n }}"
      "{{ range(3) | list | join(',') }}{{ 'x' * 3 }}{{ messages[-1]['content'].split(' ') }}",
  };
  t.run = [](const std::string& source) {
    const ChatTemplate chat(source, "fuzz", "<s>", "</s>");
    const auto messages = nlohmann::ordered_json::parse(
        R"([{"role": "system", "content": "sys"}, {"role": "user", "content": "hello there"},)"
        R"( {"role": "assistant", "content": "hi"}, {"role": "user", "content": "bye"}])");
    chat.render(messages, true);
  };
  return t;
}

size_t open_descriptors() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

int fuzz(const std::string& name, Target target, long executions, uint32_t seed) {
  Mutator m(seed);
  const size_t descriptors = open_descriptors();
  long rejected = 0;
  double slowest = 0;
  const auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < executions; ++i) {
    const std::string& base = target.seeds[m.next() % target.seeds.size()];
    const std::string input = i < long(target.seeds.size()) ? target.seeds[size_t(i)] : m.mutate(base, target.seeds);
    const auto t0 = std::chrono::steady_clock::now();
    try {
      target.run(input);
    } catch (const Error&) {
      ++rejected;
    } catch (const std::exception& e) {  // anything but our Error escaping a parser is a finding
      std::fprintf(stderr, "fuzz %s: execution %ld: %s escaped: %s\n", name.c_str(), i, typeid(e).name(), e.what());
      write("fuzz-" + name + "-finding", input);
      return 1;
    }
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    slowest = std::max(slowest, took);
    if (took > kSlowSeconds) {
      std::fprintf(stderr, "fuzz %s: execution %ld took %.1f s (bound %.0f s)\n", name.c_str(), i, took, kSlowSeconds);
      write("fuzz-" + name + "-finding", input);
      return 1;
    }
  }
  if (open_descriptors() > descriptors + 2) {  // a parser that leaks a descriptor on some input
    std::fprintf(stderr, "fuzz %s: %zu file descriptors open after the run, %zu before\n", name.c_str(),
                 open_descriptors(), descriptors);
    return 1;
  }
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("fuzz %s: %ld executions in %.1f s, %ld rejected with an error, slowest %.3f s, 0 findings\n",
              name.c_str(), executions, total, rejected, slowest);
  return 0;
}

}  // namespace
}  // namespace meshlm

int main(int argc, char** argv) {
  using namespace meshlm;
  if (argc < 3) {
    std::fprintf(stderr, "usage: fuzz_inputs safetensors|prompt|tokenizer|jinja EXECUTIONS [SEED]\n");
    return 2;
  }
  const std::string name = argv[1], model_dir = MESHLM_SOURCE_DIR "/models/stories260k";
  const long executions = std::atol(argv[2]);
  const uint32_t seed = argc > 3 ? uint32_t(std::atol(argv[3])) : 1;
  char tmpl[] = "/tmp/meshlm-fuzz-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  int rc = 2;
  if (name == "safetensors") rc = fuzz(name, safetensors_target(dir), executions, seed);
  else if (name == "prompt") rc = fuzz(name, prompt_target(model_dir), executions, seed);
  else if (name == "tokenizer") rc = fuzz(name, tokenizer_target(model_dir, dir), executions, seed);
  else if (name == "jinja") rc = fuzz(name, jinja_target(), executions, seed);
  else std::fprintf(stderr, "fuzz_inputs: unknown target '%s'\n", name.c_str());
  std::error_code ec;
  fs::remove_all(dir, ec);
  return rc;
}
