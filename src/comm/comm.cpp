#include "comm/comm.h"

#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <new>

#include "core/check.h"

namespace meshlm {

MpiSession::MpiSession(int* argc, char*** argv) {
  int provided = 0;
  MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size_);
  char name[MPI_MAX_PROCESSOR_NAME];
  int len = 0;
  MPI_Get_processor_name(name, &len);
  host_.assign(name, size_t(len));
}

MpiSession::~MpiSession() { MPI_Finalize(); }

void MpiSession::abort_all(int code) const {
  std::fflush(stdout);
  std::fflush(stderr);
  if (world_size_ > 1) MPI_Abort(MPI_COMM_WORLD, code);
  MPI_Finalize();
  std::exit(code);
}

void MpiSession::all_or_none(const char* verb, const std::function<void()>& phase) const {
  std::string message;
  try {
    phase();
  } catch (const Error& e) {
    message = e.what();
  } catch (const std::bad_alloc&) {
    message = "out of memory";
  }
  int mine = message.empty() ? world_size_ : world_rank_, first = mine;
  if (world_size_ > 1) MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (first == world_size_) return;
  if (first == world_rank_) {
    const std::string tag = world_size_ > 1 ? "[rank " + std::to_string(world_rank_) + "] " : "";
    std::fprintf(stderr, "%smeshlm %s: error: %s\n", tag.c_str(), verb, message.c_str());
    std::fflush(stderr);
  }
  throw AlreadyReported();
}

}  // namespace meshlm
