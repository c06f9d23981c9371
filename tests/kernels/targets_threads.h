// Test helpers for the Highway kernels: run a check on every compiled target, a
// std::thread-based Parallel, seeded random data and a tolerance comparison.
#pragma once
#include <doctest/doctest.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "hwy/targets.h"
#include "kernels/parallel.h"

namespace convoy::kernel_test {

// Spawns `n` threads per run(); tasks are taken from a shared counter, so the task-to-thread
// assignment differs from run to run (results must not depend on it).
class ThreadParallel final : public kernels::Parallel {
 public:
  explicit ThreadParallel(size_t n) : n_(n) {}
  size_t threads() const override { return n_; }
  void run(size_t n_tasks, const std::function<void(size_t, size_t)>& fn) const override {
    std::atomic<size_t> next{0};
    std::vector<std::thread> pool;
    for (size_t t = 0; t < n_; ++t)
      pool.emplace_back([&, t] {
        for (size_t task; (task = next.fetch_add(1)) < n_tasks;) fn(task, t);
      });
    for (auto& th : pool) th.join();
  }

 private:
  size_t n_;
};

// Calls fn(target_name) once per target that is both compiled and supported by this CPU,
// with Highway's dispatch pinned to that target.
inline void for_each_target(const std::function<void(const char*)>& fn) {
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    const char* name = hwy::TargetName(target);
    INFO("target ", name);
    fn(name);
  }
  hwy::SetSupportedTargetsForTest(0);
}

// Seed from CONVOY_TEST_SEED (to replay a failure) or a fixed default; printed either way.
inline uint32_t test_seed(const char* what) {
  const char* env = std::getenv("CONVOY_TEST_SEED");
  const uint32_t seed = env ? static_cast<uint32_t>(std::strtoul(env, nullptr, 10)) : 20240611u;
  MESSAGE(std::string(what), ": seed ", seed, " (set CONVOY_TEST_SEED to replay)");
  return seed;
}

inline std::vector<float> random_floats(std::mt19937& rng, size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// |got - ref| <= atol + rtol * |ref| everywhere (NaN matches NaN, inf matches the same inf).
// Reports the first mismatch only, to keep failure output readable.
template <class Ref>
inline bool all_close(const std::vector<float>& got, const Ref& ref, double atol, double rtol,
                      const std::string& what) {
  REQUIRE(got.size() == ref.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], r = static_cast<double>(ref[i]);
    bool ok;
    if (std::isnan(r)) {
      ok = std::isnan(g);
    } else if (std::isinf(r)) {
      ok = g == r;
    } else {
      ok = std::fabs(g - r) <= atol + rtol * std::fabs(r);
    }
    if (!ok) {
      FAIL_CHECK(what, ": index ", i, " got ", g, " expected ", r);
      return false;
    }
  }
  return true;
}

// Sizes around the widest vector (16 floats with AVX-512) and a few primes.
inline const std::vector<size_t>& odd_sizes() {
  static const std::vector<size_t> s = {1, 2, 3, 4, 5, 7, 8, 9, 13, 15, 16, 17, 31, 32, 33, 127, 257, 1031};
  return s;
}

}  // namespace convoy::kernel_test
