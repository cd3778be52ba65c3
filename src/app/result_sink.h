// Where finished requests go. With data parallelism every replica's driver finishes its own requests, but one
// rank (world rank 0) writes the single output file in input order: the other drivers send each completed line
// (and its first-step logits, when dumped) to rank 0 as it finishes, and rank 0 takes them between its steps.
#pragma once
#include <mpi.h>

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "app/output_writer.h"
#include "comm/group.h"
#include "io/h5_results.h"
#include "io/hdf5_writer.h"

namespace meshlm {

class ResultSink {
 public:
  // On rank 0 opens the output; elsewhere sends to rank 0. ids: every request's id by input index (rank 0 names the
  // HDF5 datasets with them). in_input_order / append: see OrderedJsonlWriter. dump, results: rank 0's
  // --dump-logits and --h5 writers, or null. A request's HDF5 records are written before its JSONL line, so that
  // after a kill they hold at least what the JSONL output holds (which --resume relies on).
  ResultSink(Group& world, const std::string& output_path, std::vector<std::string> ids, bool in_input_order,
             bool append, std::unique_ptr<LogitsDump> dump, std::unique_ptr<H5Results> results);
  ~ResultSink();

  // row: the finished request's record for --h5 and progress (null for an error record).
  void put(size_t index, const std::string& line, const std::vector<float>& logits, const ResultRow* row);
  // Rank 0: takes whatever other replicas have sent so far.
  void poll();
  // Rank 0: waits until all `total` requests are written. Other ranks: until their sends are done.
  void finish(size_t total);
  // Rank 0: lines written and generated tokens in them, over all replicas.
  size_t written() const { return written_; }
  int64_t tokens() const { return tokens_; }

 private:
  void write(size_t index, std::string line, const float* logits, int64_t n, const ResultRow* row);
  void receive_one();

  Group& world_;
  std::vector<std::string> ids_;
  std::unique_ptr<OrderedJsonlWriter> writer_;
  std::unique_ptr<LogitsDump> dump_;
  std::unique_ptr<H5Results> results_;
  size_t written_ = 0;
  int64_t tokens_ = 0;
  std::vector<uint8_t> in_;
  std::list<std::pair<std::vector<uint8_t>, MPI_Request>> sending_;  // buffers of sends still in flight
};

}  // namespace meshlm
