#include "core/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <utility>

#include "core/check.h"

namespace meshlm {
namespace {
constexpr int kSpins = 20000;       // workers' polls of the generation before sleeping (~tens of microseconds)
constexpr int kCallerSpins = 2000;  // the caller's polls of the workers before it yields its core (a few us)

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}
}  // namespace

ThreadPool::ThreadPool(int threads) {
  MESH_CHECK(threads >= 1, "thread count must be at least 1, got ", threads);
  for (int t = 1; t < threads; ++t) workers_.emplace_back([this, t] { work(t); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  generation_.fetch_add(1);
  generation_.notify_all();
  for (std::thread& w : workers_) w.join();
}

void ThreadPool::run_raw(void (*fn)(void*, int), void* context, int parts) {
  if (workers_.empty()) return fn(context, 0);  // exceptions go straight to the caller
  const bool adaptive = parts > 0;
  fn_ = fn;
  context_ = context;
  parts_ = adaptive ? parts : size();
  pending_.store(int(workers_.size()), std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  const auto start = std::chrono::steady_clock::now();
  try {
    fn(context, 0);
  } catch (...) {
    keep_first_error();
  }
  const auto own_done = std::chrono::steady_clock::now();
  for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; ++spin) {
    if (spin < kCallerSpins) cpu_relax();
    else std::this_thread::yield();
  }
  if (adaptive) {  // waited for the workers more than twice its own part (and more than 50 us): a strike
    const auto own = own_done - start, wait = std::chrono::steady_clock::now() - own_done;
    strikes_ = wait > 2 * own && wait > std::chrono::microseconds(50) ? strikes_ + 1 : 0;
    if (strikes_ >= kStrikes) strikes_ = 0, inline_jobs_ = kInlineJobs;
  }
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

void ThreadPool::keep_first_error() {
  const std::lock_guard<std::mutex> lock(error_mutex_);
  if (!error_) error_ = std::current_exception();
}

void ThreadPool::work(int member) {
  uint64_t seen = 0;
  while (true) {
    uint64_t now = generation_.load(std::memory_order_acquire);
    for (int spin = 0; now == seen && spin < kSpins; ++spin) {
      cpu_relax();
      now = generation_.load(std::memory_order_acquire);
    }
    if (now == seen) {
      generation_.wait(seen, std::memory_order_acquire);
      continue;
    }
    seen = now;
    if (stop_.load()) return;
    try {
      if (member < parts_) fn_(context_, member);
    } catch (...) {
      keep_first_error();
    }
    pending_.fetch_sub(1, std::memory_order_release);
  }
}

namespace {
std::unique_ptr<ThreadPool>& pool_slot() {
  static std::unique_ptr<ThreadPool> pool = std::make_unique<ThreadPool>(1);
  return pool;
}
}  // namespace

ThreadPool& kernel_pool() { return *pool_slot(); }

void set_kernel_threads(int threads) {
  if (pool_slot()->size() != threads) pool_slot() = std::make_unique<ThreadPool>(threads);
}

Share share_of(int64_t n, int parts, int t, int64_t align) {
  const int64_t units = (n + align - 1) / align;
  const int64_t base = units / parts, extra = units % parts;
  const int64_t begin = (t * base + std::min<int64_t>(t, extra)) * align;
  const int64_t end = begin + (base + (t < extra ? 1 : 0)) * align;
  return {std::min(begin, n), std::min(end, n)};
}

}  // namespace meshlm
