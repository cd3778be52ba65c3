#include "comm/stall_watch.h"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace meshlm {
namespace {
int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
constexpr double kMinBoundSeconds = 60, kStepsPerBound = 20;
}  // namespace

StallWatch::~StallWatch() { disarm(); }

void StallWatch::arm(double timeout_s, int world_rank, std::vector<std::string> hosts) {
  disarm();
  timeout_s_ = timeout_s, world_rank_ = world_rank, hosts_ = std::move(hosts);
  stop_.store(false);
  armed_.store(true);
  thread_ = std::thread([this] { watch(); });
}

void StallWatch::disarm() {
  armed_.store(false);
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  waiting_since_ns_.store(-1);
}

void StallWatch::step_took(double seconds) {
  if (seconds > slowest_step_.load(std::memory_order_relaxed)) slowest_step_.store(seconds, std::memory_order_relaxed);
}

double StallWatch::bound_seconds() const {
  return timeout_s_ > 0 ? timeout_s_ : std::max(kMinBoundSeconds, kStepsPerBound * slowest_step_.load());
}

void StallWatch::begin(const std::vector<int>* peers, int peer, const char* what) {
  peers_.store(peers, std::memory_order_relaxed);
  peer_.store(peer, std::memory_order_relaxed);
  what_.store(what, std::memory_order_relaxed);
  waiting_since_ns_.store(now_ns(), std::memory_order_release);
}

void StallWatch::end() { waiting_since_ns_.store(-1, std::memory_order_release); }

void StallWatch::watch() {
  while (!stop_.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const int64_t since = waiting_since_ns_.load(std::memory_order_acquire);
    if (since < 0) continue;
    const double waited = double(now_ns() - since) / 1e9;
    if (waited > bound_seconds() && waiting_since_ns_.load(std::memory_order_acquire) == since) fire(waited);
  }
}

void StallWatch::fire(double waited) {
  const auto name = [&](int r) {
    return "rank " + std::to_string(r) + " (" + (r >= 0 && size_t(r) < hosts_.size() ? hosts_[size_t(r)] : "?") + ")";
  };
  std::string silent;
  const std::vector<int>* peers = peers_.load();
  const int peer = peer_.load();
  if (peer >= 0) {
    silent = name(peer);
  } else if (peers) {
    for (int r : *peers)
      if (r != world_rank_) silent += (silent.empty() ? "" : ", ") + name(r);
  }
  if (silent.empty()) silent = "the other ranks";
  std::fprintf(stderr, "meshlm: error: [%s] no message from %s for %.0f s while waiting for %s (--stall-timeout "
                       "%.0f s): a network partition or a stopped host? aborting the job\n",
               name(world_rank_).c_str(), silent.c_str(), waited, what_.load(), bound_seconds());
  std::fflush(stderr);
  // MPI_Abort may itself wait on the unreachable side: end this process regardless after a grace period.
  std::thread([] {
    std::this_thread::sleep_for(std::chrono::seconds(5));
    std::_Exit(3);
  }).detach();
  MPI_Abort(MPI_COMM_WORLD, 3);
  std::_Exit(3);
}

StallWatch& stall_watch() {
  static StallWatch watch;
  return watch;
}

}  // namespace meshlm
