#include "equivalence.h"

#include <gtest/gtest.h>

#include <cmath>

#include "h5_read.h"

namespace meshlm::test {

void make_model(const Model& m, const std::vector<std::string>& flags) {
  std::vector<std::string> cmd = {make_model_binary(), "--out", m.path()};
  cmd.insert(cmd.end(), flags.begin(), flags.end());
  const auto r = run_command(cmd);
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

JobRun generate(const std::string& model, int np, const std::vector<std::string>& layout, const TempDir& tmp,
             const std::string& tag) {
  std::vector<std::string> args = {"generate", "--model", model, "--prompts", tmp.file("p.jsonl"), "--output",
                                   tmp.file(tag + ".jsonl"), "--dump-logits", tmp.file(tag + ".h5"),
                                   "--metrics-json", tmp.file(tag + ".json"), "--batch-size", "6",
                                   "--output-order", "input"};
  args.insert(args.end(), layout.begin(), layout.end());
  const auto r = np == 1 ? run_meshlm(args) : run_mpi(np, args);
  EXPECT_EQ(r.exit_code, 0) << tag << ": " << r.err;
  JobRun run;
  if (r.exit_code != 0) return run;
  run.lines = read_jsonl(tmp.file(tag + ".jsonl"));
  run.metrics = nlohmann::json::parse(read_file(tmp.file(tag + ".json")));
  return run;
}

// Same tokens line by line, first-step logits equal up to the summation order of the all-reduces.
void expect_same(const JobRun& ref, const JobRun& got, const TempDir& tmp, const std::string& tag) {
  ASSERT_EQ(got.lines.size(), ref.lines.size()) << tag;
  for (size_t i = 0; i < ref.lines.size(); ++i) {
    EXPECT_EQ(got.lines[i]["id"], ref.lines[i]["id"]) << tag;
    EXPECT_EQ(got.lines[i]["token_ids"], ref.lines[i]["token_ids"]) << tag << " line " << i + 1;
    const std::string ds = "/logits/" + ref.lines[i]["id"].get<std::string>();
    const auto a = read_h5_floats(tmp.file("ref.h5"), ds), b = read_h5_floats(tmp.file(tag + ".h5"), ds);
    ASSERT_EQ(a.size(), b.size()) << tag;
    float err = 0, scale = 1;
    for (size_t k = 0; k < a.size(); ++k) {
      err = std::max(err, std::fabs(a[k] - b[k]));
      scale = std::max(scale, std::fabs(a[k]));
    }
    EXPECT_LE(err, 1e-4f * scale) << tag << " line " << i + 1 << ": first-step logits";
  }
}

float logit_error(const JobRun& ref, const TempDir& tmp, const std::string& tag) {
  float err = 0, scale = 1;
  for (const nlohmann::json& line : ref.lines) {
    const std::string ds = "/logits/" + line["id"].get<std::string>();
    const auto a = read_h5_floats(tmp.file("ref.h5"), ds), b = read_h5_floats(tmp.file(tag + ".h5"), ds);
    if (a.size() != b.size()) return INFINITY;
    for (size_t k = 0; k < a.size(); ++k) err = std::max(err, std::fabs(a[k] - b[k])), scale = std::max(scale, std::fabs(a[k]));
  }
  return err / scale;
}

}  // namespace meshlm::test
