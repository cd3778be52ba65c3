// Start-up check that every rank runs the same meshlm on the same model files: a host with a different or partly
// copied model directory would otherwise compute garbage (or fail late, or hang in a collective of another shape).
#pragma once
#include <string>
#include <vector>

#include "comm/comm.h"

namespace meshlm {

// (file, digest) for the files a rank loads from model_dir: config.json, generation_config.json, tokenizer.json,
// tokenizer_config.json, model.safetensors.index.json (whole contents) and every *.safetensors (its size and
// header). A file that is absent or unreadable gets the digest "missing" / "unreadable". Sorted by file name.
std::vector<std::pair<std::string, std::string>> model_fingerprint(const std::string& model_dir);

// The first difference between two ranks' fingerprints, as "config.json" (or "" when equal).
std::string first_difference(const std::vector<std::pair<std::string, std::string>>& a,
                             const std::vector<std::pair<std::string, std::string>>& b);

// Collective: compares the meshlm version and model_fingerprint(model_dir) of every rank with rank 0's. On a
// difference, rank 0 prints one line ("error: model files differ between node0 and node1: config.json") and every
// rank throws AlreadyReported. hosts: (world) each rank's host name.
void check_same_files(const MpiSession& mpi, const char* verb, const std::string& model_dir,
                      const std::vector<std::string>& hosts);

}  // namespace meshlm
