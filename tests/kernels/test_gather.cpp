#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "kernels/gather.h"
#include "kernels/targets_threads.h"
#include "reference/movement_ref.h"

using namespace convoy;
using kernels::GatherParams;

namespace {

void check_gather(std::mt19937& rng, const GatherParams& p, const kernels::Parallel& par) {
  const auto in = kernel_test::random_floats(rng, p.outer * p.axis_len * p.inner, -5.f, 5.f);
  std::uniform_int_distribution<int64_t> pick(0, static_cast<int64_t>(p.axis_len) - 1);
  std::vector<int64_t> idx(p.n_indices);
  for (auto& i : idx) i = pick(rng);  // repeats allowed
  const size_t n_out = p.outer * p.n_indices * p.inner;
  std::vector<float> out(n_out + 2, -1e9f);
  kernels::gather(p, in.data(), idx.data(), out.data(), par);
  CHECK(out[n_out] == -1e9f);
  CHECK(out[n_out + 1] == -1e9f);
  out.resize(n_out);
  CHECK(out == ref::gather(p, in, idx));
}

}  // namespace

TEST_CASE("gather: axes of every position, repeated indices") {
  std::mt19937 rng(kernel_test::test_seed("gather"));
  kernels::SerialParallel serial;
  const GatherParams shapes[] = {{1, 10, 1, 4}, {1, 10, 1, 1}, {3, 7, 1, 13},  {1, 5, 17, 9},
                                 {4, 6, 5, 3},  {2, 3, 127, 5}, {5, 1, 3, 2}, {2, 4, 3, 0}};
  for (const GatherParams& p : shapes) {
    INFO("outer ", p.outer, " axis ", p.axis_len, " inner ", p.inner, " n ", p.n_indices);
    check_gather(rng, p, serial);
  }
}

TEST_CASE("gather: hand-checked embedding lookup") {
  kernels::SerialParallel serial;
  const std::vector<float> table = {0, 1, 10, 11, 20, 21};  // [3, 2]
  const std::vector<int64_t> idx = {2, 0, 2};
  std::vector<float> out(6);
  kernels::gather({1, 3, 2, 3}, table.data(), idx.data(), out.data(), serial);
  CHECK(out == std::vector<float>{20, 21, 0, 1, 20, 21});
}

TEST_CASE("gather: large outputs give identical results for 1 and 3 threads") {
  std::mt19937 rng(kernel_test::test_seed("gather-parallel"));
  kernel_test::ThreadParallel three(3);
  check_gather(rng, {1, 1000, 64, 3000}, three);
  check_gather(rng, {3, 4, 50000, 3}, three);
  check_gather(rng, {20000, 3, 1, 2}, three);
}
