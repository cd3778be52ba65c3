// MPI lifetime and the world communicator. A bare run (no mpirun) is a world of size 1.
#pragma once
#include <exception>
#include <functional>
#include <string>

namespace meshlm {

// The error has been printed by the rank that hit it; every rank exits with code 1.
struct AlreadyReported : std::exception {
  const char* what() const noexcept override { return "error reported by another rank"; }
};

// MPI calls return their errors (MPI_ERRORS_RETURN on the world communicator, inherited by every split of it):
// MPI_CHECK(MPI_Xxx(...)) turns one into an Error naming the call, this rank and its host, and MPI's reason.
void mpi_check(int rc, const char* call);
#define MPI_CHECK(call) ::meshlm::mpi_check((call), #call)

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

  // Runs a start-up phase on every rank, then agrees on the outcome. If any rank threw, the lowest such rank prints
  // its message (prefixed by `verb`) and every rank throws AlreadyReported, to leave cleanly with exit code 1.
  // The phase must not call MPI collectives (a rank that fails first would leave the others waiting).
  void all_or_none(const char* verb, const std::function<void()>& phase) const;

 private:
  int world_rank_ = 0, world_size_ = 1;
  std::string host_;
};

}  // namespace meshlm
