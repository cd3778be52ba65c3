// --h5 FILE: the run's results as HDF5, one row per finished request, appended (and flushed) as each one finishes.
//
//   /                      attributes: model, meshlm_version, layout, hosts, prompt_file
//   /requests/id           (n) string      request id (custom_id for OpenAI batch lines)
//   /requests/prompt_tokens, /requests/completion_tokens   (n) int32
//   /requests/finish_reason (n) string     "stop" | "length"
//   /requests/token_offset (n) int64       where the request's ids start in /tokens
//   /requests/queue_s, /requests/ttft_s, /requests/decode_s   (n) float64 seconds
//   /tokens                (total) int32   generated ids of all requests, concatenated in row order
// With --logprobs K (raw distribution, before temperature; root attribute logprobs_k = K):
//   /logprobs/chosen       (total) float32        log-probability of each generated token
//   /logprobs/top_ids      (total * K) int32      the K most likely ids at each step (reshape to (total, K))
//   /logprobs/top_values   (total * K) float32    their log-probabilities, most likely first
// Rows are in completion order; error records (lines that never ran) have no row. Each row is appended before its
// JSONL line is written, so a killed run's file holds every request its JSONL output holds (and perhaps a few more).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace meshlm {

struct ResultRow {
  std::string id, finish_reason;
  std::vector<int> tokens;
  int32_t prompt_tokens = 0;
  double queue_s = 0, ttft_s = 0, decode_s = 0;
  std::vector<float> chosen_logprob, top_logprobs;  // (tokens), (tokens * k) when logprobs are kept
  std::vector<int> top_ids;                         // (tokens * k)
};

class H5Results {
 public:
  // Creates (truncates) path; attributes are written at once. logprobs_k > 0 adds the /logprobs datasets.
  H5Results(const std::string& path, const std::map<std::string, std::string>& attributes, int logprobs_k = 0);
  ~H5Results();
  H5Results(const H5Results&) = delete;
  H5Results& operator=(const H5Results&) = delete;

  // --resume: replaces the earlier run's file at path with a fresh one that keeps its rows for keep_ids (the requests
  // the JSONL output already holds). Throws Error if the file cannot be read, keeps other logprobs, or lacks one of them.
  static std::unique_ptr<H5Results> resume(const std::string& path, const std::map<std::string, std::string>& attributes,
                                           int logprobs_k, const std::set<std::string>& keep_ids);

  // Adds one row at the end; flush: make it durable before returning (every row of a run; not the carried ones).
  void append(const ResultRow& row, bool flush = true);

 private:
  int64_t dataset(const std::string& name, int64_t type);
  void extend(int64_t ds, int64_t type, const void* data, uint64_t n);

  std::string path_;
  int64_t file_ = -1, group_ = -1, str_type_ = -1;
  std::map<std::string, int64_t> ds_;
  uint64_t rows_ = 0, tokens_ = 0;
  int logprobs_k_ = 0;
};

}  // namespace meshlm
