// Persistent thread pool implementing kernels::Parallel; the calling thread takes part in every
// job. Between jobs a worker polls for the next one for a short while (kSpinMicros: the gaps
// between the parallel steps of one inference are usually shorter than a futex wake-up, 20-40 us
// per thread on a VM), then sleeps on a condition variable, so an idle pool uses no CPU.
// Each thread owns a contiguous range of the tasks (thread t: [t n / T, (t + 1) n / T)), which it
// claims from the front, several at a time when there are many; a thread whose range is done
// takes what is left of the others' from their back. So a thread keeps to the same part of every
// step's work (the same image of a batch, the same part of a layer's grid), which keeps the data
// it hands to the next step in its own caches, and the load still balances. When the CPUs do
// not share a last-level cache (a VM's vCPUs on two CCDs: a cache line's round trip 330 ns instead
// of 55), tasks handed out in turn from one shared counter made ResNet-50 at 2 threads run 346 ms
// at batch 8 against 303 with the ranges (batch 1: 49.4 against 47.6 ms); on one CCD 279 against
// 275 (35.35 against 34.85). An owner's claims stay on its own cache line; only steals touch
// another thread's.
// run() returns once every task is done and closes the job: it waits only for the workers that
// joined it, never for one that has not begun (a worker whose CPU the host gave to another
// process, or that wakes slowly), which finds the job closed and waits for the next (ORT's pool
// likewise runs what nobody took). On the 16-core device with one or two CPUs kept busy by
// another process, ResNet-50 at 16 threads: 11.1-12.8 ms against 11.3-15.7 when run() waited for
// every worker to acknowledge every job; quiet, the same (10.6-11.6).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "kernels/parallel.h"

namespace convoy {

class ThreadPool final : public kernels::Parallel {
 public:
  // How long an idle worker polls for the next job before it sleeps.
  static constexpr int64_t kSpinMicros = 300;

  explicit ThreadPool(size_t threads);
  ~ThreadPool() override;
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t threads() const override { return workers_.size() + 1; }
  // One caller at a time (a Session runs one inference at a time); fn must not call run().
  void run(size_t n_tasks, const std::function<void(size_t, size_t)>& fn) const override;

 private:
  void worker(size_t index);
  void work(size_t thread) const;
  // Claims up to a grain of thread `owner`'s range, from its front (the owner) or its back (the
  // others): [*begin, *end); false once the range is empty.
  bool claim(size_t owner, bool front, size_t* begin, size_t* end) const;

  // A thread's range of the current job: [begin, end) packed as end << 32 | begin, so that the
  // owner (taking from the front) and thieves (from the back) claim with one compare-exchange.
  struct alignas(64) Range {
    std::atomic<uint64_t> span{0};
  };
  // Waits until generation_ differs from `seen` (or stop_); returns false on stop.
  bool await_job(uint64_t seen);

  std::vector<std::thread> workers_;
  mutable std::mutex mu_;
  mutable std::condition_variable wake_;
  // The job: written by run() before generation_ is bumped (release), read by workers after
  // they see the new generation (acquire).
  mutable const std::function<void(size_t, size_t)>* job_ = nullptr;
  mutable size_t grain_ = 1;
  alignas(64) mutable std::atomic<uint64_t> generation_{0};
  std::unique_ptr<Range[]> ranges_;  // one per thread, the caller's first
  // The generation of the job a worker is running, 0 when none (index 0, the caller's, unused);
  // one cache line each, written by its worker only.
  struct alignas(64) Slot {
    std::atomic<uint64_t> job{0};
  };
  std::unique_ptr<Slot[]> slots_;
  alignas(64) mutable std::atomic<uint64_t> closed_{0};  // the last job run() closed
  alignas(64) mutable std::atomic<size_t> sleepers_{0};
  std::atomic<bool> stop_{false};
};

// Number of hardware threads (at least 1).
size_t hardware_threads();

}  // namespace convoy
