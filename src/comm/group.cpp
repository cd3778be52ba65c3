#include "comm/group.h"

#include <utility>

#include "comm/comm.h"
#include "comm/stall_watch.h"
#include "core/check.h"
#include "core/timer.h"
#include "model/parallel_layout.h"

namespace meshlm {

CommStats& comm_stats() {
  static CommStats stats;
  return stats;
}

void count_comm(CommOp op, uint64_t bytes_sent, int64_t calls, double seconds) {
  CommStats& s = comm_stats();
  OpStats& o = s.by_op[int(op)];
  s.bytes_sent += bytes_sent, o.bytes_sent += bytes_sent;
  s.calls += calls, o.calls += calls;
  s.seconds += seconds, o.seconds += seconds;
}

const char* comm_op_name(CommOp op) {
  static const char* const names[kCommOps] = {"allreduce", "bcast", "reduce", "gatherv", "allgather", "send", "recv",
                                              "probe"};
  return names[int(op)];
}

CommStats CommStats::since(const CommStats& start) const {
  CommStats d;
  const auto minus = [](const OpStats& a, const OpStats& b) {
    return OpStats{a.seconds - b.seconds, a.bytes_sent - b.bytes_sent, a.calls - b.calls};
  };
  static_cast<OpStats&>(d) = minus(*this, start);
  for (int i = 0; i < kCommOps; ++i) d.by_op[i] = minus(by_op[i], start.by_op[i]);
  return d;
}

WireDType parse_wire_dtype(const std::string& text) {
  if (text == "f32") return WireDType::kF32;
  if (text == "bf16") return WireDType::kBF16;
  fail("--wire-dtype must be f32 or bf16, got '", text, "'");
}

const char* wire_dtype_name(WireDType wire) { return wire == WireDType::kF32 ? "f32" : "bf16"; }

namespace {
// Times one MPI call into comm_stats() (the totals and its kind's) and turns an MPI error into an Error naming it.
// `calls` is 0 for the second half of a non-blocking operation.
class Counted {
 public:
  Counted(CommOp op, uint64_t bytes, int calls = 1) : op_(op) { count_comm(op, bytes, calls, 0); }
  ~Counted() { count_comm(op_, 0, 0, timer_.seconds()); }
  void check(int rc) const { mpi_check(rc, (std::string("MPI ") + comm_op_name(op_)).c_str()); }

 private:
  CommOp op_;
  Timer timer_;
};

int to_int(int64_t n, const char* what) {
  MESH_CHECK(n >= 0 && n <= INT32_MAX, what, ": message of ", n, " elements is too large for one MPI call");
  return int(n);
}
}  // namespace

Group::Group(MPI_Comm comm) : comm_(comm) {
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
  // World ranks of the members, for naming a silent peer (comm/stall_watch.h).
  std::vector<int> mine(static_cast<size_t>(size_));
  for (int r = 0; r < size_; ++r) mine[size_t(r)] = r;
  world_ranks_.resize(size_t(size_));
  MPI_Group group, world;
  MPI_CHECK(MPI_Comm_group(comm_, &group));
  MPI_CHECK(MPI_Comm_group(MPI_COMM_WORLD, &world));
  MPI_CHECK(MPI_Group_translate_ranks(group, size_, mine.data(), world, world_ranks_.data()));
  MPI_Group_free(&group);
  MPI_Group_free(&world);
}

Group::~Group() {
  if (comm_ != MPI_COMM_NULL && comm_ != MPI_COMM_WORLD) MPI_Comm_free(&comm_);
}

Group::Group(Group&& o) noexcept { *this = std::move(o); }

Group& Group::operator=(Group&& o) noexcept {
  std::swap(comm_, o.comm_);
  std::swap(rank_, o.rank_);
  std::swap(size_, o.size_);
  std::swap(world_ranks_, o.world_ranks_);
  return *this;
}

void Group::allreduce_sum(float* data, int64_t n) {
  const StallScope wait(&world_ranks_, -1, "an all-reduce");
  const Counted c(CommOp::kAllreduce, uint64_t(n) * sizeof(float));
  c.check(MPI_Allreduce(MPI_IN_PLACE, data, to_int(n, "allreduce"), MPI_FLOAT, MPI_SUM, comm_));
}

MPI_Request Group::iallreduce_sum(float* data, int64_t n) {
  const Counted c(CommOp::kAllreduce, uint64_t(n) * sizeof(float));
  MPI_Request req = MPI_REQUEST_NULL;
  c.check(MPI_Iallreduce(MPI_IN_PLACE, data, to_int(n, "allreduce"), MPI_FLOAT, MPI_SUM, comm_, &req));
  return req;
}

void Group::wait_allreduce(MPI_Request& request) {
  if (request == MPI_REQUEST_NULL) return;
  const StallScope wait(nullptr, -1, "an all-reduce");
  const Counted c(CommOp::kAllreduce, 0, 0);
  c.check(MPI_Wait(&request, MPI_STATUS_IGNORE));
}

void Group::bcast(void* data, int64_t bytes, int root) {
  const StallScope wait(&world_ranks_, peer(root), "a broadcast");
  const Counted c(CommOp::kBcast, rank_ == root ? uint64_t(bytes) * uint64_t(size_ - 1) : 0);
  c.check(MPI_Bcast(data, to_int(bytes, "bcast"), MPI_BYTE, root, comm_));
}

void Group::bcast_bytes(std::vector<uint8_t>& data, int root) {
  int64_t n = int64_t(data.size());
  bcast(&n, sizeof n, root);
  data.resize(size_t(n));
  bcast(data.data(), n, root);
}

void Group::reduce_maxloc(std::vector<MaxLoc>& rows, int root) {
  const StallScope wait(&world_ranks_, -1, "a reduction");
  const Counted c(CommOp::kReduce, rows.size() * sizeof(MaxLoc));
  const int n = to_int(int64_t(rows.size()), "reduce");
  c.check(MPI_Reduce(rank_ == root ? MPI_IN_PLACE : rows.data(), rows.data(), n, MPI_FLOAT_INT, MPI_MAXLOC, root,
                     comm_));
}

void Group::gatherv(const float* mine, int64_t n, float* all, const std::vector<int>& counts, int root) {
  const StallScope wait(&world_ranks_, -1, "a gather");
  const Counted c(CommOp::kGatherv, rank_ == root ? 0 : uint64_t(n) * sizeof(float));
  std::vector<int> displs(counts.size(), 0);
  for (size_t i = 1; i < counts.size(); ++i) displs[i] = displs[i - 1] + counts[i - 1];
  c.check(MPI_Gatherv(mine, to_int(n, "gatherv"), MPI_FLOAT, all, counts.data(), displs.data(), MPI_FLOAT, root,
                      comm_));
}

void Group::allgather(const void* mine, int64_t bytes, void* all) {
  const StallScope wait(&world_ranks_, -1, "an all-gather");
  const Counted c(CommOp::kAllgather, uint64_t(bytes) * uint64_t(size_ - 1));
  const int n = to_int(bytes, "allgather");
  c.check(MPI_Allgather(mine, n, MPI_BYTE, all, n, MPI_BYTE, comm_));
}

MPI_Request Group::isend(const void* data, int64_t bytes, int dest, int tag) {
  const Counted c(CommOp::kSend, uint64_t(bytes));
  MPI_Request req = MPI_REQUEST_NULL;
  c.check(MPI_Isend(data, to_int(bytes, "isend"), MPI_BYTE, dest, tag, comm_, &req));
  return req;
}

void Group::wait(MPI_Request& request) {
  if (request == MPI_REQUEST_NULL) return;
  const StallScope wait(nullptr, -1, "a send to be taken");
  const Counted c(CommOp::kSend, 0, 0);
  c.check(MPI_Wait(&request, MPI_STATUS_IGNORE));
}

bool Group::test(MPI_Request& request) {
  if (request == MPI_REQUEST_NULL) return true;
  int done = 0;
  MPI_Test(&request, &done, MPI_STATUS_IGNORE);
  return done != 0;
}

void Group::send(const void* data, int64_t bytes, int dest, int tag) {
  const StallScope wait(&world_ranks_, peer(dest), "a send to be taken");
  const Counted c(CommOp::kSend, uint64_t(bytes));
  c.check(MPI_Send(data, to_int(bytes, "send"), MPI_BYTE, dest, tag, comm_));
}

int Group::recv_bytes(std::vector<uint8_t>& out, int source, int tag) {
  const StallScope wait(&world_ranks_, peer(source), "a message");
  const Counted c(CommOp::kRecv, 0);
  MPI_Status st;
  c.check(MPI_Probe(source, tag, comm_, &st));
  int n = 0;
  MPI_CHECK(MPI_Get_count(&st, MPI_BYTE, &n));
  out.resize(size_t(n));
  c.check(MPI_Recv(out.data(), n, MPI_BYTE, st.MPI_SOURCE, tag, comm_, MPI_STATUS_IGNORE));
  return st.MPI_SOURCE;
}

bool Group::probe(int source, int tag) {
  const Counted c(CommOp::kProbe, 0);
  int flag = 0;
  c.check(MPI_Iprobe(source, tag, comm_, &flag, MPI_STATUS_IGNORE));
  return flag != 0;
}

Groups Groups::split(int tp_size, int pp_size) {
  int world_rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  const Placement at = place(world_rank, tp_size, pp_size);
  Groups g;
  g.world = Group(MPI_COMM_WORLD);
  MPI_Comm tp, replica;
  MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, at.dp * pp_size + at.pp, at.tp, &tp));
  MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, at.dp, at.pp * tp_size + at.tp, &replica));
  g.tp = Group(tp);
  g.replica = Group(replica);
  return g;
}

}  // namespace meshlm
