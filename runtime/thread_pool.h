// Persistent thread pool implementing kernels::Parallel; the calling thread takes part in every
// job. Between jobs a worker polls for the next one for a short while (kSpinMicros: the gaps
// between the parallel steps of one inference are usually shorter than a futex wake-up, 20-40 us
// per thread on a VM), then sleeps on a condition variable, so an idle pool uses no CPU.
// Tasks are claimed from one shared counter, several at a time when there are many, so that
// thousands of tiny tasks (one plane each) do not serialise on that counter's cache line.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
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
  // Waits until generation_ differs from `seen` (or stop_); returns false on stop.
  bool await_job(uint64_t seen);

  std::vector<std::thread> workers_;
  mutable std::mutex mu_;
  mutable std::condition_variable wake_;
  // The job: written by run() before generation_ is bumped (release), read by workers after
  // they see the new generation (acquire).
  mutable const std::function<void(size_t, size_t)>* job_ = nullptr;
  mutable size_t n_tasks_ = 0, grain_ = 1;
  alignas(64) mutable std::atomic<uint64_t> generation_{0};
  alignas(64) mutable std::atomic<size_t> next_{0};
  alignas(64) mutable std::atomic<size_t> pending_{0};  // workers yet to finish this generation
  alignas(64) mutable std::atomic<size_t> sleepers_{0};
  std::atomic<bool> stop_{false};
};

// Number of hardware threads (at least 1).
size_t hardware_threads();

}  // namespace convoy
