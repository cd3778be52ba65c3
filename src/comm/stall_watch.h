// A watchdog for pulled cables: a network partition sends no FIN or RST, so a rank blocked in an MPI call would wait
// until Open MPI's keepalive gives up (~8 minutes by default). Every blocking wait is bracketed (StallScope); a
// thread checks the current wait, and one that lasts longer than the bound (--stall-timeout, or by default
// max(60 s, 20x the slowest step so far)) prints one line naming the silent peer and its host, calls MPI_Abort, and
// ends the process even if the abort cannot reach anyone.
#pragma once
#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace meshlm {

class StallWatch {
 public:
  ~StallWatch();
  // Starts watching. timeout_s > 0: a fixed bound; 0: max(60 s, 20x the slowest step). hosts: (world) host names.
  void arm(double timeout_s, int world_rank, std::vector<std::string> hosts);
  void disarm();
  bool armed() const { return armed_.load(std::memory_order_relaxed); }

  void step_took(double seconds);  // one step of this rank's work (sets the default bound)
  // A blocking wait on `peers` (world ranks; `peer` the one we wait on, or -1 for all of them) for `what`.
  void begin(const std::vector<int>* peers, int peer, const char* what);
  void end();

  double bound_seconds() const;

 private:
  void watch();
  [[noreturn]] void fire(double waited);

  std::atomic<bool> armed_{false}, stop_{false};
  std::thread thread_;
  double timeout_s_ = 0;
  std::atomic<double> slowest_step_{0};
  std::atomic<int64_t> waiting_since_ns_{-1};  // steady clock; -1: not in a wait
  std::atomic<const std::vector<int>*> peers_{nullptr};
  std::atomic<int> peer_{-1};
  std::atomic<const char*> what_{""};
  int world_rank_ = 0;
  std::vector<std::string> hosts_;
};

StallWatch& stall_watch();

// Brackets one blocking wait (a no-op while the watch is not armed).
class StallScope {
 public:
  StallScope(const std::vector<int>* peers, int peer, const char* what) : on_(stall_watch().armed()) {
    if (on_) stall_watch().begin(peers, peer, what);
  }
  ~StallScope() {
    if (on_) stall_watch().end();
  }
  StallScope(const StallScope&) = delete;
  StallScope& operator=(const StallScope&) = delete;

 private:
  bool on_;
};

}  // namespace meshlm
