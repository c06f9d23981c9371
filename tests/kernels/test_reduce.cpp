#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "kernels/reduce.h"
#include "kernels/targets_threads.h"
#include "reference/elementwise_ref.h"

using namespace convoy;
using kernels::ReduceKind;
using kernels::ReduceParams;

namespace {

const ReduceKind kKinds[] = {ReduceKind::kMean, ReduceKind::kSum,       ReduceKind::kMax, ReduceKind::kMin,
                             ReduceKind::kProd, ReduceKind::kSumSquare, ReduceKind::kL2,  ReduceKind::kLogSumExp};
const char* kind_name(ReduceKind k) {
  static const char* names[] = {"mean", "sum", "max", "min", "prod", "sum_square", "l2", "log_sum_exp"};
  return names[static_cast<int>(k)];
}

// Products stay finite with factors near 1; other kinds get signed data.
std::vector<float> input(std::mt19937& rng, const ReduceParams& p) {
  const size_t n = p.outer * p.len * p.inner;
  if (p.kind == ReduceKind::kProd) {
    auto v = kernel_test::random_floats(rng, n, 0.8f, 1.25f);
    std::bernoulli_distribution neg(0.3);
    for (auto& x : v) x = neg(rng) ? -x : x;
    return v;
  }
  return kernel_test::random_floats(rng, n, -3.f, 3.f);
}

// Float accumulation of len terms: the error bound grows with len and scales with the sum of
// magnitudes (the reference computes that sum in double, so cancellation is accounted for).
void check(const ReduceParams& p, const std::vector<float>& in, const std::vector<float>& got) {
  const auto ref = ref::reduce(p, in);
  ReduceParams abs_p = p;
  abs_p.kind = ReduceKind::kSum;
  std::vector<float> abs_in(in.size());
  for (size_t i = 0; i < in.size(); ++i) abs_in[i] = std::fabs(in[i]);
  const auto abs_sum = ref::reduce(abs_p, abs_in);
  const double gamma = 1.2e-7 * static_cast<double>(p.len + 4);
  for (size_t i = 0; i < got.size(); ++i) {
    double tol;
    switch (p.kind) {
      case ReduceKind::kSum: tol = gamma * abs_sum[i] + 1e-30; break;
      case ReduceKind::kMean: tol = gamma * abs_sum[i] / static_cast<double>(p.len) + 1e-30; break;
      case ReduceKind::kSumSquare: tol = gamma * ref[i] + 1e-30; break;
      case ReduceKind::kL2: tol = gamma * ref[i] + 1e-30; break;
      case ReduceKind::kProd: tol = gamma * std::fabs(ref[i]) + 1e-30; break;
      case ReduceKind::kLogSumExp: tol = 1e-6 * (std::fabs(ref[i]) + 1) + gamma; break;
      default: tol = 0;  // max/min are exact
    }
    if (!(std::fabs(got[i] - ref[i]) <= tol)) {
      FAIL_CHECK(kind_name(p.kind), ": index ", i, " got ", got[i], " expected ", ref[i], " tol ", tol);
      return;
    }
  }
}

}  // namespace

TEST_CASE("reduce: every kind, row and column layouts, every target") {
  std::mt19937 rng(kernel_test::test_seed("reduce"));
  kernels::SerialParallel serial;
  kernel_test::for_each_target([&](const char*) {
    for (ReduceKind kind : kKinds) {
      for (size_t len : kernel_test::odd_sizes()) {
        for (size_t inner : {size_t{1}, size_t{2}, size_t{7}, size_t{16}, size_t{33}}) {
          INFO(kind_name(kind), " len ", len, " inner ", inner);
          ReduceParams p;
          p.outer = 3;
          p.len = len;
          p.inner = inner;
          p.kind = kind;
          const auto in = input(rng, p);
          std::vector<float> out(p.outer * p.inner + 5, -77.f);
          kernels::reduce(p, in.data(), out.data(), serial);
          for (size_t i = p.outer * p.inner; i < out.size(); ++i) CHECK(out[i] == -77.f);
          out.resize(p.outer * p.inner);
          check(p, in, out);
        }
      }
    }
  });
}

TEST_CASE("reduce: long rows (tolerance grows with len) and 1 vs 3 threads") {
  std::mt19937 rng(kernel_test::test_seed("reduce-long"));
  kernels::SerialParallel serial;
  kernel_test::ThreadParallel three(3);
  const ReduceParams shapes[] = {{2, 100003, 1, ReduceKind::kSum}, {2000, 50, 1, ReduceKind::kSum},
                                 {3, 500, 999, ReduceKind::kSum}, {1, 3, 70001, ReduceKind::kSum},
                                 {5000, 4, 3, ReduceKind::kSum}};
  kernel_test::for_each_target([&](const char*) {
    for (ReduceParams p : shapes) {
      for (ReduceKind kind : kKinds) {
        p.kind = kind;
        INFO(kind_name(kind), " outer ", p.outer, " len ", p.len, " inner ", p.inner);
        const auto in = input(rng, p);
        std::vector<float> o1(p.outer * p.inner), o3(p.outer * p.inner);
        kernels::reduce(p, in.data(), o1.data(), serial);
        kernels::reduce(p, in.data(), o3.data(), three);
        CHECK(o1 == o3);
        if (kind != ReduceKind::kProd || p.len < 1000) check(p, in, o1);
      }
    }
  });
}

TEST_CASE("reduce: log-sum-exp is stable; infinities and empty axes") {
  kernels::SerialParallel serial;
  const float inf = std::numeric_limits<float>::infinity();
  kernel_test::for_each_target([&](const char*) {
    for (size_t inner : {size_t{1}, size_t{3}}) {
      // Row 0: large values (naive exp overflows); row 1: -inf everywhere; row 2: one +inf.
      const size_t len = 4;
      std::vector<float> in(3 * len * inner);
      for (size_t k = 0; k < len; ++k)
        for (size_t j = 0; j < inner; ++j) {
          in[(0 * len + k) * inner + j] = 1000.f + static_cast<float>(k);
          in[(1 * len + k) * inner + j] = -inf;
          in[(2 * len + k) * inner + j] = k == 2 ? inf : 1.f;
        }
      ReduceParams p{3, len, inner, ReduceKind::kLogSumExp};
      std::vector<float> out(3 * inner);
      kernels::reduce(p, in.data(), out.data(), serial);
      const double expect0 = 1003.0 + std::log(1 + std::exp(-1.0) + std::exp(-2.0) + std::exp(-3.0));
      for (size_t j = 0; j < inner; ++j) {
        CHECK(std::fabs(out[j] - expect0) < 1e-3);
        CHECK(out[inner + j] == -inf);
        CHECK(out[2 * inner + j] == inf);
      }
    }
    // Empty reduction axis: identities (sum 0, prod 1, max -inf, min +inf, lse -inf).
    ReduceParams p{2, 0, 3, ReduceKind::kSum};
    const std::vector<float> none;
    const std::pair<ReduceKind, float> empty[] = {{ReduceKind::kSum, 0.f},     {ReduceKind::kProd, 1.f},
                                                  {ReduceKind::kMax, -inf},    {ReduceKind::kMin, inf},
                                                  {ReduceKind::kLogSumExp, -inf}, {ReduceKind::kL2, 0.f}};
    for (auto [kind, value] : empty) {
      p.kind = kind;
      std::vector<float> out(6, 5.f);
      kernels::reduce(p, none.data(), out.data(), serial);
      for (float v : out) CHECK(v == value);
    }
  });
}
