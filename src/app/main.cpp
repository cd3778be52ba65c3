// meshlm: batch LLM inference across a small cluster, launched with mpirun.
//
//   meshlm generate --model DIR --prompts FILE --output FILE   run a prompt file
//   meshlm bench --model DIR [--batch 1,8,32]                   pp/tg tokens/s against the machine's ceilings
//   meshlm plan --model DIR [--prompts FILE]                    rank the layouts of this job's hosts and links
//   meshlm tokenize --tokenizer DIR --input FILE --output FILE text <-> ids
//   meshlm info --model DIR                                     what a checkpoint holds
//   meshlm render --tokenizer DIR --input FILE --output FILE   messages -> chat template text
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "app/commands.h"
#include "app/interrupt.h"
#include "comm/comm.h"
#include "core/check.h"
#include "kernels/blas_core.h"

namespace {

void usage(FILE* out) {
  std::fprintf(out,
               "meshlm %s: batch LLM inference over MPI\n\n"
               "usage: meshlm <command> [options]      (each command has --help)\n\n"
               "  generate   generate completions for a JSONL prompt file\n"
               "  bench      prefill/decode tokens/s of a layout, against measured ceilings\n"
               "  plan       measure the hosts and links, rank every layout, print the best command\n"
               "  tokenize   encode text to token ids, or decode ids (--decode)\n"
               "  info       describe a model directory\n"
               "  render     render chat messages with a model's chat template\n",
               MESHLM_VERSION);
}

// Runs one verb; any error becomes one line on stderr and exit code 1 on every rank.
int run_verb(const std::string& verb, int argc, char** argv, const meshlm::MpiSession* mpi) {
  const std::string tag = mpi && mpi->world_size() > 1 ? "[rank " + std::to_string(mpi->world_rank()) + "] " : "";
  try {
    if (verb == "generate") return meshlm::run_generate(argc, argv, *mpi);
    if (verb == "bench") return meshlm::run_bench(argc, argv, *mpi);
    if (verb == "plan") return meshlm::run_plan(argc, argv, *mpi);
    if (verb == "tokenize") return meshlm::run_tokenize(argc, argv);
    if (verb == "render") return meshlm::run_render(argc, argv);
    return meshlm::run_info(argc, argv);
  } catch (const meshlm::AlreadyReported&) {
    return 1;  // every rank agreed on the error; leave without MPI_Abort
  } catch (const meshlm::Error& e) {
    std::fprintf(stderr, "%smeshlm %s: error: %s\n", tag.c_str(), verb.c_str(), e.what());
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "%smeshlm %s: error: out of memory\n", tag.c_str(), verb.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%smeshlm %s: error: %s\n", tag.c_str(), verb.c_str(), e.what());
  }
  if (mpi) mpi->abort_all(1);
  return 1;
}

}  // namespace


int main(int argc, char** argv) {
  meshlm::ensure_openblas_core(argv);
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::printf("meshlm %s\n", MESHLM_VERSION);
    return 0;
  }
  const std::string verb = argv[1];
  const bool over_mpi = verb == "generate" || verb == "bench" || verb == "plan";
  if (!over_mpi && verb != "tokenize" && verb != "info" && verb != "render") {
    std::fprintf(stderr, "meshlm: unknown command '%s'\n\n", verb.c_str());
    usage(stderr);
    return 2;
  }
  // Only generate, bench and plan talk over MPI; the others run as plain processes.
  if (!over_mpi) return run_verb(verb, argc - 1, argv + 1, nullptr);
  meshlm::MpiSession mpi(&argc, &argv);
  meshlm::install_interrupt_handlers();
  return run_verb(verb, argc - 1, argv + 1, &mpi);
}
