#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/lrn.h"
#include "kernels/targets_threads.h"
#include "reference/lrn_ref.h"

using namespace convoy;

TEST_CASE("lrn: sizes 2-5, odd channel counts, HW around the vector length") {
  std::mt19937 rng(kernel_test::test_seed("lrn"));
  kernel_test::for_each_target([&](const char*) {
    for (size_t size : {size_t{1}, size_t{2}, size_t{3}, size_t{4}, size_t{5}})
      for (size_t C : {size_t{1}, size_t{7}, size_t{13}})
        for (size_t hw : {size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{600}}) {
          kernels::LrnParams p;
          p.N = 2;
          p.C = C;
          p.HW = hw;
          p.size = size;
          // AlexNet's constants, and a large alpha so the normalisation matters.
          p.alpha = size == 5 ? 1e-4f : 0.5f;
          p.beta = size == 5 ? 0.75f : 0.6f;
          p.bias = size == 3 ? 2.f : 1.f;
          const std::string what = "size=" + std::to_string(size) + " C=" + std::to_string(C) + " hw=" + std::to_string(hw);
          const auto in = kernel_test::random_floats(rng, p.N * p.C * p.HW, -3.f, 3.f);
          const auto want = ref::lrn_ref(p, in.data());
          std::vector<float> got1(want.size()), got3(want.size());
          kernels::lrn(p, in.data(), got1.data(), kernels::SerialParallel());
          kernels::lrn(p, in.data(), got3.data(), kernel_test::ThreadParallel(3));
          kernel_test::all_close(got1, want, 1e-6, 1e-5, what);
          CHECK(std::memcmp(got1.data(), got3.data(), want.size() * sizeof(float)) == 0);
        }
  });
}
