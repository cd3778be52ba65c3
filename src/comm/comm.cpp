#include "comm/comm.h"

#include <mpi.h>

#include <cstdio>
#include <cstdlib>

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

}  // namespace meshlm
