// Running one generate job and comparing it with a reference run: the layout-equivalence tests' helpers.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_support.h"

namespace meshlm::test {

// A synthetic checkpoint (bench/make_model) in a temporary directory.
struct Model {
  TempDir dir;
  std::string path() const { return dir.file("model"); }
};
void make_model(const Model& m, const std::vector<std::string>& flags);

struct JobRun {
  std::vector<nlohmann::json> lines;
  nlohmann::json metrics;
};
// Runs generate on tmp/p.jsonl with --batch-size 6, input order, first-step logits dumped to tmp/<tag>.h5 and
// metrics to tmp/<tag>.json, plus `layout` (any further flags); one process when np is 1, else mpirun.
JobRun generate(const std::string& model, int np, const std::vector<std::string>& layout, const TempDir& tmp,
                const std::string& tag);
// Same tokens line by line as the run tagged "ref", first-step logits equal up to the summation order.
void expect_same(const JobRun& ref, const JobRun& got, const TempDir& tmp, const std::string& tag);
// Largest first-step logit difference from the "ref" run, relative to the largest logit.
float logit_error(const JobRun& ref, const TempDir& tmp, const std::string& tag);

}  // namespace meshlm::test
