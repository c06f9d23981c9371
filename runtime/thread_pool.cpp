#include "runtime/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "kernels/spin_wait.h"

namespace convoy {

size_t hardware_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

ThreadPool::ThreadPool(size_t threads)
    : ranges_(new Range[std::max<size_t>(threads, 1)]), slots_(new Slot[std::max<size_t>(threads, 1)]) {
  for (size_t i = 1; i < std::max<size_t>(threads, 1); ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

namespace {
constexpr uint64_t pack(uint64_t begin, uint64_t end) { return end << 32 | begin; }
constexpr size_t lo(uint64_t span) { return static_cast<size_t>(span & 0xffffffffu); }
constexpr size_t hi(uint64_t span) { return static_cast<size_t>(span >> 32); }
}  // namespace

bool ThreadPool::claim(size_t owner, bool front, size_t* begin, size_t* end) const {
  std::atomic<uint64_t>& r = ranges_[owner].span;
  uint64_t span = r.load(std::memory_order_relaxed);
  for (;;) {
    const size_t b = lo(span), e = hi(span);
    if (b >= e) return false;
    const size_t take = std::min(e - b, grain_);
    *begin = front ? b : e - take;
    *end = front ? b + take : e;
    if (r.compare_exchange_weak(span, front ? pack(b + take, e) : pack(b, e - take), std::memory_order_relaxed))
      return true;
  }
}

void ThreadPool::work(size_t thread) const {
  // Own range from the front, then what the others have left from their back, starting with
  // the next thread's.
  const size_t threads = workers_.size() + 1;
  for (size_t k = 0; k < threads; ++k) {
    for (size_t begin, end; claim((thread + k) % threads, k == 0, &begin, &end);)
      for (size_t task = begin; task < end; ++task) (*job_)(task, thread);
  }
}

bool ThreadPool::await_job(uint64_t seen) {
  using Clock = std::chrono::steady_clock;
  // Poll: a pause per check for the first microseconds, then yield the core between checks
  // (with more threads than cores the caller may need this one), then sleep.
  const auto start = Clock::now();
  for (size_t polls = 0;; ++polls) {
    if (generation_.load(std::memory_order_acquire) != seen) return true;
    if (stop_.load(std::memory_order_relaxed)) return false;
    if (polls < 256) {
      hwy::Pause();
      continue;
    }
    if (Clock::now() - start > std::chrono::microseconds(kSpinMicros)) break;
    std::this_thread::yield();
  }
  std::unique_lock<std::mutex> lock(mu_);
  // sleepers_ is raised before the generation is re-read (both seq_cst), and run() bumps the
  // generation before it reads sleepers_: either run() sees this sleeper and notifies under the
  // mutex, or this wait's predicate sees the new generation. No wake-up is lost.
  sleepers_.fetch_add(1);
  wake_.wait(lock, [&] { return stop_.load() || generation_.load() != seen; });
  sleepers_.fetch_sub(1);
  return !stop_.load();
}

void ThreadPool::worker(size_t index) {
  uint64_t seen = 0;
  while (await_job(seen)) {
    seen = generation_.load(std::memory_order_acquire);
    // A worker that comes late (its CPU taken by another process, a slow wake-up) finds the job
    // closed and waits for the next one: the caller never waits for a thread that has not begun.
    // seq_cst store then load, against run()'s seq_cst store of closed_ then load of the slot:
    // either this worker sees the job closed, or run() sees it inside and waits for it.
    std::atomic<uint64_t>& slot = slots_[index].job;
    slot.store(seen);
    if (closed_.load() >= seen) {
      slot.store(0, std::memory_order_relaxed);
      continue;
    }
    work(index);
    slot.store(0, std::memory_order_release);  // this thread's results, to the caller
  }
}

void ThreadPool::run(size_t n_tasks, const std::function<void(size_t, size_t)>& fn) const {
  if (n_tasks == 0) return;
  if (workers_.empty() || n_tasks == 1) {
    for (size_t i = 0; i < n_tasks; ++i) fn(i, 0);
    return;
  }
  // Several tasks per claim only when there are plenty (>= 64 per thread; 16 claims per thread
  // remain): below that, one at a time, so that steals split the leftovers finely. The GEMM's B
  // prefetch relies on a thread's next task being likely the next index.
  const size_t threads = workers_.size() + 1;
  if (n_tasks > 0xffffffffu) throw std::length_error("ThreadPool::run: more than 2^32 - 1 tasks");
  job_ = &fn;
  grain_ = n_tasks >= 64 * threads ? n_tasks / (16 * threads) : 1;
  for (size_t t = 0; t < threads; ++t)
    ranges_[t].span.store(pack(t * n_tasks / threads, (t + 1) * n_tasks / threads), std::memory_order_relaxed);
  // seq_cst: publishes the job, ordered before the sleepers_ read
  const uint64_t generation = generation_.fetch_add(1) + 1;
  if (sleepers_.load() > 0) {
    { std::lock_guard<std::mutex> lock(mu_); }
    wake_.notify_all();
  }
  work(0);
  // Every task has been claimed: close the job, so that no worker enters it once its state may
  // be reused, and wait for the workers inside it to finish their tasks (acquire: their
  // results). Workers that have not entered by then are not waited for (ORT's pool likewise runs
  // what nobody took). Each worker writes only its own slot's cache line; the caller reads them.
  closed_.store(generation);
  for (size_t w = 1; w <= workers_.size(); ++w)
    kernels::spin_until([&] { return slots_[w].job.load() != generation; });
  job_ = nullptr;
}

}  // namespace convoy
