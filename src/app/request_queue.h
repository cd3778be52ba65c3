// The job's requests shared by the data-parallel replicas: each replica's driver takes requests as its slots free
// up, so a faster replica (a faster host, or shorter answers) takes more of them, and no replica sits idle while
// another still has a backlog. World rank 0 (the driver of replica 0) holds the queue; the other drivers ask it for
// more whenever fewer than a batch are waiting, and it answers between its own steps.
//
// Requests that share a prefix go to the same replica, whose prefix cache then computes it once (PrefixDispatch).
// Each replica starts with a batch dealt that way on every driver alike (no message needed); the rest is handed out
// by rank 0, at most a 1/dp share of what is left per answer, so the tail spreads evenly.
#pragma once
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <thread>
#include <vector>

#include "comm/group.h"
#include "app/prefix_dispatch.h"
#include "runtime/request.h"

namespace meshlm {

class RequestQueue {
 public:
  // drivers: world rank of each replica's driver (replica d's is drivers[d]); total: requests in the job; batch:
  // requests a replica keeps waiting in its own queue. Only drivers construct one.
  RequestQueue(Group& world, std::vector<int> drivers, const std::vector<Request>& requests, int batch);

  // The index of the next request for this replica; none when none is here now (wait == false), or when the job
  // has none left for it (wait == true blocks until one of the two).
  std::optional<size_t> take(bool wait);
  // Rank 0: answers the other drivers' asks. Call it between steps.
  void serve();
  // Rank 0, after its own replica ran out: answers until every other driver has been told that the job is done.
  // `between` runs while it waits (taking finished results).
  template <class F>
  void finish(F&& between) {
    if (replica_ != 0) return;
    while (ended_ + 1 < int(drivers_.size())) {
      serve();
      between();
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  int64_t taken() const { return taken_; }  // requests this replica ran

 private:
  void ask();
  void take_grant(const std::vector<uint8_t>& message);

  Group& world_;
  std::vector<int> drivers_;
  int replica_ = 0;
  size_t total_ = 0;
  PrefixDispatch dispatch_;  // what is not handed out yet (rank 0's is the job's)
  int batch_ = 1;
  std::deque<size_t> local_;
  bool asked_ = false, ended_here_ = false;
  int ended_ = 0;                // rank 0: drivers told that the job is done
  int64_t taken_ = 0;
  std::vector<uint8_t> in_;
};

}  // namespace meshlm
