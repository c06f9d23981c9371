// lrn_backward against central finite differences of a double LRN forward: odd and even window
// sizes, windows wider than C, windows as deep as / deeper than the kernel's stack ring, column
// counts around the vector width, the ring row (64) and the task chunk (512); every compiled
// target, 1 vs 3 threads bit-identical.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/lrn_grad.h"
#include "kernels/targets_threads.h"
#include "reference/grad_ref.h"

using namespace convoy;

TEST_CASE("lrn_backward: finite differences") {
  std::mt19937 rng(kernel_test::test_seed("lrn_grad"));
  struct Case {
    size_t N, C, HW, size;
    float alpha, beta, bias;
  };
  const Case cases[] = {
      {2, 6, 9, 5, 1e-4f, 0.75f, 1.f},    // AlexNet constants
      {2, 6, 9, 5, 2.0f, 0.75f, 1.f},     // large alpha: the cross-channel terms matter
      {1, 7, 17, 2, 1.5f, 0.6f, 2.f},     // even window: asymmetric
      {1, 5, 33, 4, 1.0f, 1.2f, 0.5f},
      {2, 4, 600, 3, 0.8f, 0.75f, 1.f},   // two column chunks, tail
      {1, 4, 1, 7, 1.0f, 0.75f, 1.f},     // window wider than C, one column
      {1, 3, 16, 1, 3.0f, 0.5f, 1.f},     // size 1: no cross terms
      {1, 70, 5, 67, 4.0f, 0.75f, 1.f},   // deeper than the stack ring (16): recomputing path
      {2, 20, 70, 17, 4.0f, 0.75f, 1.f},  // one deeper than the ring
      {2, 20, 70, 16, 4.0f, 0.75f, 1.f},  // exactly the ring depth
  };
  double worst = 0;
  for (const Case& cs : cases) {
    kernels::LrnParams p;
    p.N = cs.N;
    p.C = cs.C;
    p.HW = cs.HW;
    p.size = cs.size;
    p.alpha = cs.alpha;
    p.beta = cs.beta;
    p.bias = cs.bias;
    INFO("N=", p.N, " C=", p.C, " HW=", p.HW, " size=", p.size, " alpha=", p.alpha, " beta=", p.beta, " bias=", p.bias);
    const auto x = kernel_test::random_floats(rng, p.N * p.C * p.HW, -1.f, 1.f);
    const auto dy = kernel_test::random_floats(rng, x.size(), -1.f, 1.f);
    const ref::DVec fd =
        ref::fd_grad([&](const ref::DVec& v) { return ref::lrn_fwd(p, v); }, ref::to_double(x), ref::to_double(dy), 1e-4);
    kernel_test::for_each_target([&](const char* target) {
      INFO("target ", target);
      std::vector<float> dx1(x.size(), std::nanf("")), dx3(x.size(), std::nanf(""));
      kernels::lrn_backward(p, x.data(), dy.data(), dx1.data(), kernels::SerialParallel());
      kernels::lrn_backward(p, x.data(), dy.data(), dx3.data(), kernel_test::ThreadParallel(3));
      const ref::GradErr e = ref::grad_error(dx1.data(), fd, 1e-3, 1e-5);
      worst = std::max(worst, e.rel_norm);
      INFO("rel_norm ", e.rel_norm, " max_abs ", e.max_abs, " first bad ", e.first_bad);
      CHECK(e.rel_norm <= 1e-4);
      CHECK(e.elem_ok);
      CHECK(std::memcmp(dx1.data(), dx3.data(), x.size() * sizeof(float)) == 0);
    });
  }
  MESSAGE("lrn backward max rel_norm vs finite differences: ", worst);
}
