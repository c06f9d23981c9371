#include "tools/cli_handoff.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

namespace convoy::cli {
namespace {

using Clock = std::chrono::steady_clock;

// The CPUs this process may run on, in order.
std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

bool pin_to(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

// Mean round trip in ns of `trips` hand-offs of one cache line between threads on CPUs a and b,
// or a negative value if the deadline passed first (the two threads did not run together).
double ping_pong(int a, int b, size_t trips, Clock::duration budget) {
  struct alignas(64) Line {
    std::atomic<size_t> v{0};
  } line;
  alignas(64) std::atomic<bool> abandon{false};
  const auto deadline = Clock::now() + budget;
  // Spins until `line` holds `want`; false once abandoned or past the deadline.
  auto await = [&](size_t want) {
    for (size_t spins = 1;; ++spins) {
      if (line.v.load(std::memory_order_acquire) == want) return true;
      if (spins % 4096 == 0 && (abandon.load(std::memory_order_relaxed) || Clock::now() > deadline)) {
        abandon.store(true, std::memory_order_relaxed);
        return false;
      }
    }
  };
  std::atomic<bool> pinned{true};
  std::thread partner([&] {
    if (!pin_to(b)) pinned.store(false);
    for (size_t i = 0; i < trips; ++i) {
      if (!await(2 * i + 1)) return;
      line.v.store(2 * i + 2, std::memory_order_release);
    }
  });
  double ns = -1;
  std::thread starter([&] {
    if (!pin_to(a)) pinned.store(false);
    // The first trips wait for the partner thread to start: they are not timed.
    const size_t warm = trips / 8;
    auto t0 = Clock::now();
    for (size_t i = 0; i < trips; ++i) {
      if (i == warm) t0 = Clock::now();
      line.v.store(2 * i + 1, std::memory_order_release);
      if (!await(2 * i + 2)) return;
    }
    ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / double(trips - warm);
  });
  starter.join();
  partner.join();
  return pinned && !abandon.load() ? ns : -1;
}

}  // namespace

std::optional<HandoffReport> measure_handoff(size_t threads) {
  const std::vector<int> cpus = allowed_cpus();
  const size_t n = std::min(threads, cpus.size());
  if (n < 2) return std::nullopt;
  std::vector<double> per_pair;
  for (size_t k = 1; k < n; ++k) {
    double best = -1;
    for (int trial = 0; trial < 3; ++trial) {
      // 2000 round trips: 0.1 ms on one CCD, under 1 ms across; 100 ms is far past any placement.
      const double ns = ping_pong(cpus[0], cpus[k], 2000, std::chrono::milliseconds(100));
      if (ns >= 0) best = best < 0 ? ns : std::min(best, ns);
    }
    if (best < 0) return std::nullopt;  // no trial of this pair ran both threads together
    per_pair.push_back(best);
  }
  std::sort(per_pair.begin(), per_pair.end());
  HandoffReport r;
  r.pairs = per_pair.size();
  r.min_ns = per_pair.front();
  r.max_ns = per_pair.back();
  r.median_ns = per_pair[per_pair.size() / 2];
  return r;
}

std::string handoff_summary(const HandoffReport& r) {
  char buf[96];
  if (r.pairs == 1)
    std::snprintf(buf, sizeof buf, "%.0f ns", r.median_ns);
  else
    std::snprintf(buf, sizeof buf, "min %.0f / median %.0f / max %.0f ns over %zu CPU pairs", r.min_ns, r.median_ns,
                  r.max_ns, r.pairs);
  return buf;
}

}  // namespace convoy::cli
