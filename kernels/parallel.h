// Parallel-for interface the kernels see. The thread pool that implements it lives in runtime/.
// A kernel splits its work into independent tasks (output tiles/channels); run() calls
// fn(task, thread) for every task in [0, n_tasks), each exactly once, possibly concurrently,
// and returns when all are done. `thread` < threads() indexes per-thread scratch.
// Results must not depend on the number of threads (no split reductions).
#pragma once
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <functional>

namespace convoy::kernels {

class Parallel {
 public:
  virtual ~Parallel() = default;
  virtual size_t threads() const = 0;
  virtual void run(size_t n_tasks, const std::function<void(size_t task, size_t thread)>& fn) const = 0;
};

// Runs every task inline on the calling thread (tests, constant folding).
class SerialParallel final : public Parallel {
 public:
  size_t threads() const override { return 1; }
  void run(size_t n_tasks, const std::function<void(size_t, size_t)>& fn) const override {
    for (size_t i = 0; i < n_tasks; ++i) fn(i, 0);
  }
};

// Claims tasks from a shared counter `grain` at a time (several per atomic when there are many
// tiny ones, which would otherwise serialise on the counter's cache line) until none of
// [0, n_tasks) is left; fn(begin, end) runs each claimed range.
template <class Fn>
void claim_ranges(std::atomic<size_t>& next, size_t n_tasks, size_t grain, Fn fn) {
  for (size_t begin; (begin = next.fetch_add(grain, std::memory_order_relaxed)) < n_tasks;)
    fn(begin, std::min(n_tasks, begin + grain));
}

// Work planning for few threads: the longest thread of a greedy run of tasks [0, n_tasks) in
// index order, each taken by the thread with the least work so far, task t costing cost(t): an
// estimate of the pool's run (each thread its contiguous range, idle threads taking the others'
// leftovers: the same ends for equal tasks, close for unequal ones). threads <=
// kMakespanMaxThreads (the searches that call it try many splits, so they stop at a few threads).
inline constexpr size_t kMakespanMaxThreads = 4;
template <class Cost>
size_t greedy_makespan(size_t threads, size_t n_tasks, Cost cost) {
  size_t load[kMakespanMaxThreads] = {};
  for (size_t t = 0; t < n_tasks; ++t) *std::min_element(load, load + threads) += cost(t);
  return *std::max_element(load, load + threads);
}

}  // namespace convoy::kernels
