#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "kernels/channel_affine.h"
#include "kernels/targets_threads.h"
#include "reference/elementwise_ref.h"

using namespace convoy;
using kernels::Activation;
using kernels::ChannelAffineParams;

namespace {

void run(std::mt19937& rng, ChannelAffineParams p, const kernels::Parallel& par) {
  const size_t n = p.N * p.C * p.HW;
  const auto in = kernel_test::random_floats(rng, n, -3.f, 3.f);
  const auto scale = kernel_test::random_floats(rng, p.C, -2.f, 2.f);
  const auto shift = kernel_test::random_floats(rng, p.C, -1.f, 1.f);
  const auto ref = ref::channel_affine(p, in, scale, shift);
  // x*s+t may cancel; without FMA (SSE4) the product is rounded first: atol ~ ulp(|x*s|).
  const double atol = 1e-6, rtol = 1e-6;
  std::vector<float> out(n, -99.f);
  kernels::channel_affine(p, in.data(), scale.data(), shift.data(), out.data(), par);
  kernel_test::all_close(out, ref, atol, rtol, "out-of-place");
  auto inplace = in;
  kernels::channel_affine(p, inplace.data(), scale.data(), shift.data(), inplace.data(), par);
  kernel_test::all_close(inplace, ref, atol, rtol, "in-place");
}

}  // namespace

TEST_CASE("channel_affine: activations, odd plane sizes, every target, in-place") {
  std::mt19937 rng(kernel_test::test_seed("channel_affine"));
  kernels::SerialParallel serial;
  kernel_test::for_each_target([&](const char*) {
    for (Activation act : {Activation::kNone, Activation::kRelu, Activation::kLeakyRelu, Activation::kClip}) {
      INFO("act ", static_cast<int>(act));
      for (size_t hw : kernel_test::odd_sizes()) {
        INFO("HW ", hw);
        ChannelAffineParams p;
        p.N = 2;
        p.C = 3;
        p.HW = hw;
        p.act = act;
        p.alpha = act == Activation::kClip ? -0.5f : 0.2f;
        p.beta = 1.5f;
        run(rng, p, serial);
      }
    }
  });
}

TEST_CASE("channel_affine: many planes, identical results for 1 and 3 threads") {
  std::mt19937 rng(kernel_test::test_seed("channel_affine-parallel"));
  kernels::SerialParallel serial;
  kernel_test::ThreadParallel three(3);
  kernel_test::for_each_target([&](const char*) {
    for (size_t hw : {size_t{1}, size_t{49}, size_t{40000}}) {
      ChannelAffineParams p;
      p.N = 3;
      p.C = 67;
      p.HW = hw;
      p.act = Activation::kRelu;
      run(rng, p, three);
      const size_t n = p.N * p.C * p.HW;
      const auto in = kernel_test::random_floats(rng, n, -3.f, 3.f);
      const auto s = kernel_test::random_floats(rng, p.C, -2.f, 2.f), t = kernel_test::random_floats(rng, p.C, -1.f, 1.f);
      std::vector<float> o1(n), o3(n);
      kernels::channel_affine(p, in.data(), s.data(), t.data(), o1.data(), serial);
      kernels::channel_affine(p, in.data(), s.data(), t.data(), o3.data(), three);
      CHECK(o1 == o3);
    }
  });
}
