// The meshlm verbs. Each parses its own options (with --help) and returns the process exit code.
#pragma once

namespace meshlm {

class MpiSession;

int run_generate(int argc, char** argv, const MpiSession& mpi);
int run_bench(int argc, char** argv, const MpiSession& mpi);
int run_plan(int argc, char** argv, const MpiSession& mpi);
int run_tokenize(int argc, char** argv);
int run_info(int argc, char** argv);
int run_render(int argc, char** argv);

// The model directory used when --model is not given: the small model that ships in the repository.
const char* default_model_dir();

}  // namespace meshlm
