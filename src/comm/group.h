// A communicator that counts what it does: every collective and message adds its wall time and the bytes this
// rank sent to one per-process CommStats, by kind of call, which the run summary reports.
#pragma once
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace meshlm {

// The kinds of call that are counted apart. A non-blocking all-reduce counts its start and its wait as kAllreduce;
// the wait of a point-to-point send counts as kSend.
enum class CommOp : int { kAllreduce, kBcast, kReduce, kGatherv, kAllgather, kSend, kRecv, kProbe, kCount };
constexpr int kCommOps = int(CommOp::kCount);
const char* comm_op_name(CommOp op);

struct OpStats {
  double seconds = 0;      // wall time inside MPI calls (waiting included)
  uint64_t bytes_sent = 0; // payload bytes this rank put on the wire (collectives: its own contribution)
  int64_t calls = 0;       // operations (a non-blocking one counts once)
};
struct CommStats : OpStats {  // the totals, and the same by kind of call
  OpStats by_op[kCommOps];
  CommStats since(const CommStats& start) const;  // what happened after `start` was taken
};
CommStats& comm_stats();
// Adds to comm_stats() (the totals and op's): for communication done outside Group (comm/async_allreduce.h).
void count_comm(CommOp op, uint64_t bytes_sent, int64_t calls, double seconds);

// How activations travel: fp32 (exact), or bf16 (half the bytes; sums are rounded to bf16 on the way).
enum class WireDType { kF32, kBF16 };
WireDType parse_wire_dtype(const std::string& text);  // "f32" | "bf16"; throws Error naming the flag
const char* wire_dtype_name(WireDType wire);

// Greedy-sampling partial result: the largest logit and its vocabulary id (MPI_FLOAT_INT layout).
struct MaxLoc {
  float value;
  int index;
};

class Group {
 public:
  Group() = default;
  explicit Group(MPI_Comm comm);  // takes ownership unless it is MPI_COMM_WORLD
  ~Group();
  Group(Group&& o) noexcept;
  Group& operator=(Group&& o) noexcept;
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  MPI_Comm raw() const { return comm_; }
  const std::vector<int>& world_ranks() const { return world_ranks_; }  // (size) world rank of each member

  void allreduce_sum(float* data, int64_t n);
  // MPI_Iallreduce; finish it with wait_allreduce(). Only bench/bench_comm uses it, to show why the layers use
  // comm/async_allreduce.h instead (Open MPI's libnbc took 1.7-2x the blocking time over TCP).
  MPI_Request iallreduce_sum(float* data, int64_t n);
  static void wait_allreduce(MPI_Request& request);
  void bcast(void* data, int64_t bytes, int root);
  // Broadcasts a byte vector whose size only the root knows.
  void bcast_bytes(std::vector<uint8_t>& data, int root);
  // Row-wise MAXLOC into the root's `rows` (the lowest index wins a tie).
  void reduce_maxloc(std::vector<MaxLoc>& rows, int root);
  // Concatenates each rank's `mine` at the root, in rank order; `counts` are every rank's element counts.
  void gatherv(const float* mine, int64_t n, float* all, const std::vector<int>& counts, int root);
  void allgather(const void* mine, int64_t bytes, void* all);

  // Point to point. isend copies nothing: `data` must live until wait(request) returns. wait() and test() also
  // work on any other request (test() lets MPI progress whatever is in flight).
  MPI_Request isend(const void* data, int64_t bytes, int dest, int tag);
  static void wait(MPI_Request& request);
  // Lets MPI move a pending message along; returns true (and clears the request) once it is done.
  static bool test(MPI_Request& request);
  void send(const void* data, int64_t bytes, int dest, int tag);
  // Receives a message of unknown size from `source` (MPI_ANY_SOURCE allowed); returns the sender.
  int recv_bytes(std::vector<uint8_t>& out, int source, int tag);
  bool probe(int source, int tag);

 private:
  int peer(int r) const {  // member r's world rank, or -1 (MPI_ANY_SOURCE)
    return r >= 0 && size_t(r) < world_ranks_.size() ? world_ranks_[size_t(r)] : -1;
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  std::vector<int> world_ranks_;
};

// The communicators of one rank: its tensor group (same stage of the same replica), its replica (all stages, for
// stage-to-stage messages), and the world (for collecting results from other replicas).
struct Groups {
  Group world, tp, replica;
  static Groups split(int tp_size, int pp_size);
};

}  // namespace meshlm
