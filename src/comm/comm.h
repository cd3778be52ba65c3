// MPI lifetime and the world communicator. A bare run (no mpirun) is a world of size 1.
#pragma once
#include <string>

namespace meshlm {

class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  int world_rank() const { return world_rank_; }
  int world_size() const { return world_size_; }
  std::string host() const { return host_; }

  // Ends every rank with `code` (MPI_Abort when there are several; a plain exit otherwise).
  [[noreturn]] void abort_all(int code) const;

 private:
  int world_rank_ = 0, world_size_ = 1;
  std::string host_;
};

}  // namespace meshlm
