// A sum over a group that travels while the cores compute, driven by our own point-to-point messages. Open MPI's
// MPI_Iallreduce (libnbc) took 1.7-2x the time of the blocking call over TCP in bench/bench_comm, and the overlap it
// bought was lost to that; these messages cost what the blocking call does.
//
// Every rank ends with the same bits: each element is summed in rank order. Two ranks, or a small message: every
// rank sends its whole partial to every other (one round). Otherwise a direct reduce-scatter (rank r sums segment r)
// then an all-gather of the sums: two rounds, 2(p-1)/p of the message out of each rank, as a ring would send.
// With WireDType::kBF16 every value travels as bf16 (rounded once), and the sums are taken in fp32.
#pragma once
#include <mpi.h>

#include <cstdint>
#include <vector>

#include "comm/group.h"

namespace meshlm {

class AsyncAllreduce {
 public:
  // Starts summing data (n floats) over the group. `data` must live, untouched, until test() or wait() says done.
  // Operations in flight at once need different tags; the same tag may be reused once the last one finished.
  void start(const Group& group, float* data, int64_t n, WireDType wire, int tag);
  bool test();  // moves it along; true once data holds the sum (and when nothing was started)
  void wait();

 private:
  enum class Stage { kIdle, kScatter, kGather };
  void post_scatter();  // round 1 (the only round when direct_)
  void post_gather();   // round 2: each rank's summed segment to every other
  void advance();       // the posted round has completed
  void sum_into(int64_t begin, int64_t count);

  MPI_Comm comm_ = MPI_COMM_NULL;
  const std::vector<int>* peers_ = nullptr;  // world ranks of the group's members
  int p_ = 1, me_ = 0, tag_ = 0;
  float* data_ = nullptr;
  int64_t n_ = 0;
  bool bf16_ = false, direct_ = true;
  Stage stage_ = Stage::kIdle;
  std::vector<MPI_Request> requests_;
  std::vector<uint16_t> send16_;  // (n) this rank's partial as bf16, then the gathered sums as bf16
  std::vector<float> recv32_;     // (p-1, segment) partials from the other ranks, fp32 wire
  std::vector<uint16_t> recv16_;  // the same, bf16 wire
  std::vector<float> acc_;        // (segment) running sum
};

}  // namespace meshlm
