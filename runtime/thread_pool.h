// Persistent thread pool implementing kernels::Parallel. Workers sleep on a condition variable
// between jobs (no spinning when idle); the calling thread takes part in every job.
#pragma once
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "kernels/parallel.h"

namespace convoy {

class ThreadPool final : public kernels::Parallel {
 public:
  explicit ThreadPool(size_t threads);
  ~ThreadPool() override;
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t threads() const override { return workers_.size() + 1; }
  void run(size_t n_tasks, const std::function<void(size_t, size_t)>& fn) const override;

 private:
  void worker(size_t index);
  void work(size_t thread) const;

  std::vector<std::thread> workers_;
  mutable std::mutex mu_;
  mutable std::condition_variable wake_, done_;
  mutable const std::function<void(size_t, size_t)>* job_ = nullptr;
  mutable size_t n_tasks_ = 0;
  mutable std::atomic<size_t> next_{0};
  mutable size_t active_ = 0;
  mutable uint64_t generation_ = 0;
  bool stop_ = false;
};

// Number of hardware threads (at least 1).
size_t hardware_threads();

}  // namespace convoy
