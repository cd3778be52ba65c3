// Weights sent to a rank that lacks them (mpirun's "-np 1 A : -np 1 B" form gives the ranks different --model
// directories): the rank receives exactly what its slices read, the answers are those of one rank with the whole
// model, --model-cache keeps what was sent for the next run, and a partial copy with no rank to complete it is
// refused with the reason.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "test_support.h"

namespace meshlm {
namespace {

namespace fs = std::filesystem;

std::string model() { return test::shared_dir() + "/golden/models/tiny-qwen2-f32"; }  // three shards

uint64_t safetensors_bytes(const std::string& dir) {
  uint64_t n = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".safetensors") n += e.file_size();
  return n;
}

// Temporary model copies in this process's temporary directory: the fixture gives its ranks their own (TMPDIR), so
// tests running at the same time cannot change the count.
size_t temporary_copies() {
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(fs::temp_directory_path()))
    n += e.path().filename().string().rfind("meshlm-model-", 0) == 0;
  return n;
}

class ModelShare : public ::testing::Test {
 protected:
  void SetUp() override {
    if (test::shared_dir().empty()) GTEST_SKIP() << "no ../shared";
    fs::create_directories(tmp.file("tmpdir"));
    saved_tmpdir_ = std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "";
    setenv("TMPDIR", tmp.file("tmpdir").c_str(), 1);  // inherited by the ranks
    test::write_file(tmp.file("p.jsonl"), "{\"id\": \"a\", \"prompt\": \"Hello there\", \"max_tokens\": 12}\n"
                                          "{\"id\": \"b\", \"prompt\": \"The cat sat\", \"max_tokens\": 12}\n"
                                          "{\"id\": \"c\", \"prompt_ids\": [5, 6, 7, 8], \"max_tokens\": 12}\n");
    const auto r = test::run_meshlm({"generate", "--model", model(), "--prompts", tmp.file("p.jsonl"), "--output",
                                     tmp.file("reference.jsonl")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    reference = test::answers_by_id(tmp.file("reference.jsonl"));
  }
  // Rank 0 reads `dir0`, rank 1 `dir1`; returns the weight bytes each rank was sent.
  std::vector<uint64_t> run(const std::string& dir0, const std::string& dir1, const std::vector<std::string>& extra,
                            const std::string& tag, int expect_exit = 0) {
    std::vector<std::vector<std::string>> ranks;
    for (const std::string& dir : {dir0, dir1}) {
      std::vector<std::string> cmd = {test::meshlm_binary(), "generate", "--model", dir, "--prompts",
                                      tmp.file("p.jsonl"), "--output", tmp.file(tag + ".jsonl"), "--metrics-json",
                                      tmp.file(tag + ".json")};
      cmd.insert(cmd.end(), extra.begin(), extra.end());
      ranks.push_back(cmd);
    }
    last = test::run_mpi_each(ranks);
    EXPECT_EQ(last.exit_code, expect_exit) << tag << ": " << last.err;
    if (last.exit_code != 0) return {};
    EXPECT_EQ(test::answers_by_id(tmp.file(tag + ".jsonl")), reference) << tag;
    const auto j = nlohmann::json::parse(test::read_file(tmp.file(tag + ".json")));
    const auto sent = [&](int r) { return j["ranks"][r]["weights_received_bytes"].get<uint64_t>(); };
    return {sent(0), sent(1)};
  }
  void TearDown() override {
    if (saved_tmpdir_.empty()) unsetenv("TMPDIR");
    else setenv("TMPDIR", saved_tmpdir_.c_str(), 1);
  }
  test::TempDir tmp;
  std::string saved_tmpdir_;
  std::map<std::string, std::string> reference;
  test::RunResult last;
};

TEST_F(ModelShare, MissingModelDirectoryReceivesItsSlicesInEveryLayout) {
  const uint64_t whole = safetensors_bytes(model());
  const size_t copies_before = temporary_copies();
  for (const auto& layout : std::vector<std::vector<std::string>>{{"--tp", "2"}, {"--pp", "2"}, {"--tp", "1", "--pp",
                                                                                                  "1"}}) {
    SCOPED_TRACE(layout[1]);
    const auto sent = run(model(), tmp.file("nowhere/model"), layout, "missing" + layout[1]);
    ASSERT_EQ(sent.size(), 2u);
    EXPECT_EQ(sent[0], 0u);
    EXPECT_GT(sent[1], 0u);
    EXPECT_LT(sent[1], whole);  // at most the data of every file, never their headers
    if (layout[1] != "1") EXPECT_LT(sent[1], whole * 3 / 4) << "a tensor or pipeline rank needs only its share";
    EXPECT_NE(last.err.find("rank 1 (" ), std::string::npos);
    EXPECT_NE(last.err.find("was sent its weights"), std::string::npos) << last.err;
  }
  EXPECT_EQ(temporary_copies(), copies_before) << "a temporary copy was left behind";
  // Rank 0 is the one without the model: rank 1 sends, rank 0 still reads the prompts and writes the output.
  const auto sent = run(tmp.file("nowhere/model"), model(), {"--tp", "2"}, "rank0missing");
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_GT(sent[0], 0u);
}

TEST_F(ModelShare, ModelCacheKeepsWhatWasSentForTheNextRun) {
  const std::string cache = tmp.file("cache");
  const auto first = run(model(), tmp.file("nowhere"), {"--tp", "2", "--model-cache", cache}, "first");
  ASSERT_EQ(first.size(), 2u);
  EXPECT_GT(first[1], 0u);
  EXPECT_TRUE(fs::exists(cache + "/config.json") && fs::exists(cache + "/tokenizer.json"));
  // The same layout again: everything is there.
  const auto again = run(model(), tmp.file("nowhere"), {"--tp", "2", "--model-cache", cache}, "again");
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again[1], 0u);
  // Another layout: only what it reads that the first did not.
  const auto other = run(model(), tmp.file("nowhere"), {"--tp", "1", "--pp", "1", "--model-cache", cache}, "other");
  ASSERT_EQ(other.size(), 2u);
  EXPECT_GT(other[1], 0u);
  EXPECT_LT(other[1] + first[1], safetensors_bytes(model()) + 1);
  // With every byte there, the copy is a model of its own: no rank needs the original.
  const auto alone = run(cache, cache, {"--tp", "1", "--pp", "1"}, "alone");
  EXPECT_EQ(alone, (std::vector<uint64_t>{0, 0}));
}

TEST_F(ModelShare, IncompleteModelDirectoryIsCompleted) {
  const std::string partial = tmp.file("partial");
  fs::create_directories(partial);
  for (const auto& e : fs::directory_iterator(model()))
    if (e.path().filename() != "model-00002-of-00003.safetensors")
      fs::copy(e.path(), partial + "/" + e.path().filename().string());
  const auto sent = run(model(), partial, {"--pp", "2"}, "incomplete");
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_GT(sent[1], 0u);
}

TEST_F(ModelShare, UnwritableCacheEndsEveryRankWithTheReason) {
  test::write_file(tmp.file("a-file"), "x");
  run(model(), tmp.file("nowhere"), {"--model-cache", tmp.file("a-file") + "/cache"}, "unwritable", 1);
  EXPECT_NE(last.err.find("a-file/cache: cannot hold the model's files (Not a directory); give --model-cache a "
                          "directory this host can write"), std::string::npos) << last.err;
  EXPECT_EQ(last.err.find("MPI_ABORT"), std::string::npos) << "every rank should agree on the error, not be killed";
}

TEST_F(ModelShare, PartialCopyWithNoRankToCompleteItIsRefused) {
  const std::string cache = tmp.file("cache");
  run(model(), tmp.file("nowhere"), {"--tp", "2", "--model-cache", cache}, "fill");  // rank 1's half only
  run(cache, cache, {"--tp", "2"}, "refused", 1);
  EXPECT_NE(last.err.find("is a partial copy (--model-cache) that lacks"), std::string::npos) << last.err;
  EXPECT_NE(last.err.find("no rank has the whole model"), std::string::npos) << last.err;
}

}  // namespace
}  // namespace meshlm
