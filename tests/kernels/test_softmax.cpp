#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "kernels/softmax.h"
#include "kernels/targets_threads.h"
#include "reference/elementwise_ref.h"

using namespace convoy;
using kernels::SoftmaxParams;

namespace {

void run(std::mt19937& rng, const SoftmaxParams& p, const kernels::Parallel& par, float range) {
  const size_t n = p.outer * p.axis_len * p.inner;
  const auto in = kernel_test::random_floats(rng, n, -range, range);
  const auto ref = ref::softmax(p, in);
  // Float sums of axis_len terms: error grows with the length.
  const double tol = 2e-6 + 2e-7 * static_cast<double>(p.axis_len);
  const double atol = p.log ? tol * range : 1e-9;
  std::vector<float> out(n, -5.f);
  kernels::softmax(p, in.data(), out.data(), par);
  kernel_test::all_close(out, ref, atol, tol, "out-of-place");
  auto inplace = in;
  kernels::softmax(p, inplace.data(), inplace.data(), par);
  kernel_test::all_close(inplace, ref, atol, tol, "in-place");
}

}  // namespace

TEST_CASE("softmax: axis lengths and inner sizes, log and not, every target, in-place") {
  std::mt19937 rng(kernel_test::test_seed("softmax"));
  kernels::SerialParallel serial;
  kernel_test::for_each_target([&](const char*) {
    for (bool log : {false, true}) {
      for (size_t len : kernel_test::odd_sizes()) {
        for (size_t inner : {size_t{1}, size_t{3}, size_t{16}, size_t{17}}) {
          INFO("log ", log, " len ", len, " inner ", inner);
          SoftmaxParams p;
          p.outer = 3;
          p.axis_len = len;
          p.inner = inner;
          p.log = log;
          run(rng, p, serial, 10.f);
        }
      }
    }
  });
}

TEST_CASE("softmax: large logits do not overflow") {
  std::mt19937 rng(kernel_test::test_seed("softmax-large"));
  kernels::SerialParallel serial;
  kernel_test::for_each_target([&](const char*) {
    for (bool log : {false, true}) {
      for (size_t inner : {size_t{1}, size_t{5}}) {
        SoftmaxParams p;
        p.outer = 2;
        p.axis_len = 37;
        p.inner = inner;
        p.log = log;
        run(rng, p, serial, 1000.f);
      }
    }
  });
}

TEST_CASE("softmax: identical results for 1 and 3 threads") {
  std::mt19937 rng(kernel_test::test_seed("softmax-parallel"));
  kernels::SerialParallel serial;
  kernel_test::ThreadParallel three(3);
  const SoftmaxParams shapes[] = {{1000, 1001, 1, false}, {3, 40000, 1, true}, {5, 7, 20000, false},
                                  {20000, 3, 2, true}, {2, 1000, 197, false}};
  kernel_test::for_each_target([&](const char*) {
    for (const SoftmaxParams& p : shapes) {
      INFO("outer ", p.outer, " len ", p.axis_len, " inner ", p.inner);
      run(rng, p, three, 8.f);
      const auto in = kernel_test::random_floats(rng, p.outer * p.axis_len * p.inner, -8.f, 8.f);
      std::vector<float> o1(in.size()), o3(in.size());
      kernels::softmax(p, in.data(), o1.data(), serial);
      kernels::softmax(p, in.data(), o3.data(), three);
      CHECK(o1 == o3);
    }
  });
}
