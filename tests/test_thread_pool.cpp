// The persistent thread pool (runtime/thread_pool.h): every task runs exactly once for task
// counts around the claiming grain and thread counts above the core count; a slow thread's
// range is finished by the others; back-to-back runs
// hand over cleanly (the workers poll between runs); a worker that comes late to a run never
// touches it after run() returned; an idle pool sleeps (no CPU used).
#include <doctest/doctest.h>

#include <time.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "runtime/thread_pool.h"

using convoy::ThreadPool;

TEST_CASE("thread pool: every task exactly once, thread index in range") {
  for (size_t threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    CHECK(pool.threads() == threads);
    for (size_t n : {0, 1, 2, 3, 7, 17, 63, 64, 65, 255, 256, 257, 1000, 4099}) {
      std::vector<std::atomic<int>> hits(n);
      std::atomic<bool> bad_thread{false};
      pool.run(n, [&](size_t task, size_t thread) {
        hits[task].fetch_add(1);
        if (thread >= threads) bad_thread = true;
      });
      size_t wrong = 0;
      for (auto& h : hits) wrong += h.load() != 1;
      INFO("threads " << threads << ", tasks " << n);
      CHECK(wrong == 0);
      CHECK(!bad_thread);
    }
  }
}

// Each thread owns a contiguous range (the caller [0, n/T)); threads done with theirs take the
// rest of the others' from the back. A caller whose tasks are slow gets help: 16 tasks of 2 ms
// would take it 32 ms alone, the workers finish their own in microseconds and take over part.
TEST_CASE("thread pool: idle threads take over a slow thread's range") {
  ThreadPool pool(4);
  std::vector<std::atomic<int>> by(64);
  for (auto& b : by) b = -1;
  std::atomic<int> runs{0};
  pool.run(by.size(), [&](size_t task, size_t thread) {
    by[task] = static_cast<int>(thread);
    ++runs;
    if (task < 16 && thread == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  });
  CHECK(runs == 64);
  size_t stolen = 0;
  for (size_t t = 0; t < 16; ++t) stolen += by[t].load() != 0;
  CHECK(stolen >= 1);
}

TEST_CASE("thread pool: many back-to-back runs, and runs after the workers fell asleep") {
  ThreadPool pool(4);
  std::vector<long> out(64);
  long total = 0;
  for (int run = 0; run < 3000; ++run) {
    pool.run(out.size(), [&](size_t task, size_t) { out[task] = run + static_cast<long>(task); });
    for (size_t i = 0; i < out.size(); ++i) total += out[i] - run - static_cast<long>(i);
    if (run % 1000 == 999)  // longer than the polling window: the next run wakes sleeping workers
      std::this_thread::sleep_for(std::chrono::microseconds(4 * ThreadPool::kSpinMicros));
  }
  CHECK(total == 0);
}

// run() waits only for the workers that joined the job; one that comes late (descheduled, slow
// wake-up) finds it closed. With 6 threads on this machine's 2 cores workers are often late:
// every job's tasks must still run exactly once, and no late worker may run an old job's task
// (each job counts into its own array, all kept and checked after the last run).
TEST_CASE("thread pool: workers late to a run never run its tasks after it returned") {
  ThreadPool pool(6);
  constexpr size_t kRuns = 100000;
  std::vector<std::vector<std::atomic<int>>> hits(kRuns);
  size_t wrong_now = 0;
  for (size_t run = 0; run < kRuns; ++run) {
    const size_t n = 1 + run % 37;
    hits[run] = std::vector<std::atomic<int>>(n);
    std::vector<std::atomic<int>>& h = hits[run];
    pool.run(n, [&h](size_t task, size_t) { h[task].fetch_add(1, std::memory_order_relaxed); });
    for (auto& x : h) wrong_now += x.load(std::memory_order_relaxed) != 1;
    if (run % 500 == 499) std::this_thread::sleep_for(std::chrono::microseconds(2 * ThreadPool::kSpinMicros));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  size_t wrong_later = 0;
  for (auto& h : hits)
    for (auto& x : h) wrong_later += x.load(std::memory_order_relaxed) != 1;
  CHECK(wrong_now == 0);
  CHECK(wrong_later == 0);
}

static double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

TEST_CASE("thread pool: an idle pool sleeps") {
  ThreadPool pool(8);
  std::atomic<size_t> sum{0};
  pool.run(100, [&](size_t task, size_t) { sum += task; });
  CHECK(sum == 4950);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // past the polling window
  const double cpu0 = process_cpu_seconds();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const double used = process_cpu_seconds() - cpu0;
  // 7 workers polling would use ~2.1 s of CPU here; sleeping ones use none.
  CHECK(used < 0.03);
}

TEST_CASE("thread pool: destroyed while its workers poll or sleep") {
  for (int i = 0; i < 50; ++i) {
    ThreadPool pool(3);
    std::atomic<int> n{0};
    pool.run(10, [&](size_t, size_t) { ++n; });
    CHECK(n == 10);
    if (i % 2) std::this_thread::sleep_for(std::chrono::microseconds(2 * ThreadPool::kSpinMicros));
  }
}
