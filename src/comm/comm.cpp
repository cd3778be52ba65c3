#include "comm/comm.h"

#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <new>

#include "comm/stall_watch.h"
#include "core/check.h"

namespace meshlm {

namespace {
std::string& rank_label() {  // "rank 3 on node1", once MPI is up
  static std::string label;
  return label;
}
}  // namespace

void mpi_check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char reason[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, reason, &len) != MPI_SUCCESS) len = 0;
  const std::string call_name(call, std::string(call).find('('));
  fail(call_name, " failed on ", rank_label().empty() ? std::string("this rank") : rank_label(), ": ",
       len > 0 ? std::string(reason, size_t(len)) : "error code " + std::to_string(rc));
}

MpiSession::MpiSession(int* argc, char*** argv) {
  int provided = 0;
  if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
    std::fprintf(stderr, "meshlm: error: MPI_Init_thread failed\n");
    std::exit(1);
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size_);
  char name[MPI_MAX_PROCESSOR_NAME];
  int len = 0;
  MPI_Get_processor_name(name, &len);
  host_.assign(name, size_t(len));
  rank_label() = "rank " + std::to_string(world_rank_) + " on " + host_;
  // Only the thread that called MPI_Init_thread calls MPI (the kernel pool's member 0 is that thread).
  if (provided < MPI_THREAD_FUNNELED) {
    if (world_rank_ == 0)
      std::fprintf(stderr, "meshlm: error: this MPI grants thread level %d; meshlm needs MPI_THREAD_FUNNELED (%d)\n",
                   provided, MPI_THREAD_FUNNELED);
    MPI_Finalize();
    std::exit(1);
  }
}

MpiSession::~MpiSession() {
  stall_watch().disarm();
  MPI_Finalize();
}

void MpiSession::abort_all(int code) const {
  std::fflush(stdout);
  std::fflush(stderr);
  stall_watch().disarm();
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
  if (world_size_ > 1) MPI_CHECK(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
  if (first == world_size_) return;
  if (first == world_rank_) {
    const std::string tag = world_size_ > 1 ? "[rank " + std::to_string(world_rank_) + "] " : "";
    std::fprintf(stderr, "%smeshlm %s: error: %s\n", tag.c_str(), verb, message.c_str());
    std::fflush(stderr);
  }
  throw AlreadyReported();
}

}  // namespace meshlm
