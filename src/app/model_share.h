// Weights sent to hosts that lack them. A rank whose --model directory is missing or incomplete gets the small
// files (config, tokenizer, chat template) and every safetensors header from a rank that has the whole model, and
// makes safetensors files of the right size whose bytes are filled in later; once the layout is known, it asks for
// exactly the byte ranges its slices will read, which arrive in chunks with a CRC-32 each. With --model-cache DIR the
// files live there, with a list of the ranges present (.meshlm-present.json), so the next run reads them locally and
// asks only for what a new layout needs; without it they live in a temporary directory removed at exit.
// Safetensors files there are sparse: the holes cost no disk.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "comm/comm.h"
#include "core/dtype.h"
#include "io/hf_config.h"
#include "model/parallel_layout.h"

namespace meshlm {

struct ModelSource {
  std::string dir;           // where this rank reads the model from
  bool fetch = false;        // this rank lacks bytes: fetch_slices() gets them
  int source = -1;           // world rank that sends (-1: every rank has the model)
  std::vector<int> lacking;  // world ranks that fetch (the same list on every rank)
  bool partial_copies = false;  // some rank has a partial copy (the same on every rank)
};

// Collective, before anything reads the model. When no rank has the whole model nothing is shared, and loading
// then names what is wrong with the files.
ModelSource share_model_files(const MpiSession& mpi, const char* verb, const std::string& model_dir,
                              const std::string& cache_dir);

struct FetchStats {
  uint64_t bytes = 0;   // received by this rank
  double seconds = 0;
};
// Collective, once this rank's layout is known and before it loads: the lacking ranks receive what their slices read
// (one at a time from the source).
FetchStats fetch_slices(const MpiSession& mpi, const char* verb, const ModelSource& source, const ModelConfig& config,
                        const ParallelLayout& layout, DType weight_dtype);

}  // namespace meshlm
