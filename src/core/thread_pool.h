// A fixed team of threads for the kernels. The calling thread takes part as member 0, so a pool of one runs
// everything inline. Workers spin briefly between jobs (decode calls the pool every few tens of microseconds) and
// then sleep, so an idle rank waiting in MPI does not burn its cores.
#pragma once
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

 private:
  void run_raw(void (*fn)(void*, int), void* context);
  void work(int member);
  void keep_first_error();

  std::vector<std::thread> workers_;
  void (*fn_)(void*, int) = nullptr;
  void* context_ = nullptr;
  std::atomic<uint64_t> generation_{0};  // bumped once per job; workers wait for it to change
  std::atomic<int> pending_{0};          // workers still running the current job
  std::atomic<bool> stop_{false};
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
