// Shared by the golden tests: run `meshlm generate` on a model's expected.jsonl prompts and compare the greedy ids
// (exactly) and the first-step logits (within 1e-3 * max(1, max|logit|)) with the float64 reference.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "test_support.h"

namespace meshlm::test {

// ../shared's models/stories260k and every golden/models/* directory (absolute paths).
std::vector<std::string> golden_models();
// The golden models by path relative to ../shared, as the parameterized tests list them.
const std::vector<std::string>& golden_model_names();

using Runner = std::function<RunResult(const std::vector<std::string>& args)>;
// Runs generate through `run` with extra_args appended, and checks every line. Uses gtest assertions.
void check_golden(const std::string& model, const Runner& run, const std::vector<std::string>& extra_args);

}  // namespace meshlm::test
