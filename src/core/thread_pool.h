// A fixed team of threads for the kernels. The calling thread takes part as member 0, so a pool of one runs
// everything inline. Workers spin briefly between jobs (decode calls the pool every few tens of microseconds) and
// then sleep, so an idle rank waiting in MPI does not burn its cores. The caller, once its own part is done, polls
// briefly and then yields its core while it waits: when another process shares the cores, a worker that the
// kernel has not scheduled yet gets the core instead of waiting behind a spinning caller.
//
// Kernels hand the pool only work big enough to pay for waking it (kMinParallelWork per member): small steps of
// small models run inline, as with one thread. And when the caller keeps finding itself waiting much longer for the
// workers than its own part took (they are not getting a core: another process is busy on the host), the pool runs
// the next jobs inline for a while before it tries the workers again.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace meshlm {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return int(workers_.size()) + 1; }

  // Calls fn(member) for every member in [0, size()) at once (member 0 on the calling thread) and returns when all
  // are done. Not re-entrant: fn must not call run. An exception thrown by any member reaches the caller (the first
  // one, after every member has finished), instead of ending the process.
  template <typename Fn>
  void run(Fn&& fn) {
    run_raw([](void* f, int member) { (*static_cast<Fn*>(f))(member); }, &fn);
  }
  // The same with only members [0, parts) calling fn, where parts = members(work): with one part, fn(0) runs on the
  // caller's thread and the workers are not woken.
  template <typename Fn>
  void run(int parts, Fn&& fn) {
    if (parts <= 1) return fn(0);
    if (inline_jobs_ > 0) {  // the workers are not getting a core: the caller does every part itself
      --inline_jobs_;
      for (int member = 0; member < parts; ++member) fn(member);
      return;
    }
    run_raw([](void* f, int member) { (*static_cast<Fn*>(f))(member); }, &fn, parts);
  }
  // Members worth using for `work` multiply-adds (or bytes streamed): at least kMinParallelWork each.
  static constexpr double kMinParallelWork = 524288;
  int members(double work) const { return int(std::max(1.0, std::min(double(size()), work / kMinParallelWork))); }

 private:
  // Members [0, parts) run fn; with parts < size(), the caller notes whether it waited for the workers much longer
  // than its own part took, and after kStrikes such jobs in a row runs the next kInlineJobs inline.
  void run_raw(void (*fn)(void*, int), void* context, int parts = 0);
  void work(int member);
  void keep_first_error();

  std::vector<std::thread> workers_;
  void (*fn_)(void*, int) = nullptr;
  void* context_ = nullptr;
  std::atomic<uint64_t> generation_{0};  // bumped once per job; workers wait for it to change
  std::atomic<int> pending_{0};          // workers still running the current job
  std::atomic<bool> stop_{false};
  int parts_ = 0;          // members that run the current job
  int strikes_ = 0;        // jobs in a row whose wait for the workers was long
  int64_t inline_jobs_ = 0;  // jobs still to run inline before trying the workers again
  static constexpr int kStrikes = 3;
  static constexpr int64_t kInlineJobs = 512;
  std::mutex error_mutex_;
  std::exception_ptr error_;  // the first exception of the current job
};

// The pool the kernels split their loops over: one thread until set_kernel_threads is called.
ThreadPool& kernel_pool();
void set_kernel_threads(int threads);

// [begin, end) of member t's share of n items split into `parts` nearly equal runs, each a multiple of `align`
// (except the last).
struct Share {
  int64_t begin, end;
};
Share share_of(int64_t n, int parts, int t, int64_t align = 1);

}  // namespace meshlm
