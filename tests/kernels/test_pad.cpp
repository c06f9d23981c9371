#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "kernels/pad.h"
#include "kernels/targets_threads.h"
#include "reference/movement_ref.h"

using namespace convoy;
using kernels::Dims;
using kernels::PadMode;
using kernels::PadParams;

namespace {

Dims dims(const std::vector<int64_t>& v) {
  Dims d;
  for (int64_t x : v) d.d[d.rank++] = x;
  return d;
}

PadParams make(const std::vector<int64_t>& in, const std::vector<int64_t>& begin, const std::vector<int64_t>& end,
               PadMode mode) {
  PadParams p;
  p.in_shape = dims(in);
  p.pads_begin = dims(begin);
  std::vector<int64_t> out(in.size());
  for (size_t k = 0; k < in.size(); ++k) out[k] = in[k] + begin[k] + end[k];
  p.out_shape = dims(out);
  p.mode = mode;
  p.value = 2.5f;
  return p;
}

void check_pad(std::mt19937& rng, const PadParams& p, const kernels::Parallel& par) {
  size_t n_in = 1, n_out = 1;
  for (size_t k = 0; k < p.in_shape.rank; ++k) {
    n_in *= static_cast<size_t>(p.in_shape.d[k]);
    n_out *= static_cast<size_t>(p.out_shape.d[k]);
  }
  const auto in = kernel_test::random_floats(rng, n_in, -5.f, 5.f);
  std::vector<float> out(n_out + 3, -1e9f);
  kernels::pad(p, in.data(), out.data(), par);
  for (size_t i = n_out; i < out.size(); ++i) CHECK(out[i] == -1e9f);
  out.resize(n_out);
  CHECK(out == ref::pad(p, in));
}

const PadMode kModes[] = {PadMode::kConstant, PadMode::kReflect, PadMode::kEdge};

}  // namespace

TEST_CASE("pad: constant/reflect/edge with positive, zero and negative pads") {
  std::mt19937 rng(kernel_test::test_seed("pad"));
  kernels::SerialParallel serial;
  struct Case {
    std::vector<int64_t> in, begin, end;
  };
  // Reflect needs pad < (cropped) dim; all cases satisfy it.
  const std::vector<Case> cases = {
      {{7}, {3}, {2}},
      {{7}, {0}, {0}},
      {{7}, {-2}, {3}},
      {{7}, {3}, {-2}},
      {{9}, {-3}, {-4}},
      {{2, 3, 5, 6}, {0, 0, 1, 2}, {0, 0, 1, 2}},      // spatial NCHW padding
      {{2, 3, 5, 6}, {0, 1, 2, 0}, {1, 0, 0, 3}},      // channel and batch padding too
      {{2, 3, 5, 6}, {0, -1, -2, 1}, {0, 1, 3, -3}},   // mixed crops and pads
      {{4, 17}, {2, 5}, {3, 15}},                     // wide rows
      {{3, 1, 4}, {1, 0, 0}, {1, 2, 0}},              // size-1 dim (edge/constant only below)
      {{2, 2, 2, 2, 2}, {1, 1, 1, 1, 1}, {1, 0, 1, 0, 1}},
  };
  for (const Case& c : cases) {
    for (PadMode mode : kModes) {
      bool reflect_ok = true;
      for (size_t k = 0; k < c.in.size(); ++k) {
        const int64_t cropped = c.in[k] + std::min<int64_t>(c.begin[k], 0) + std::min<int64_t>(c.end[k], 0);
        reflect_ok = reflect_ok && c.begin[k] < cropped && c.end[k] < cropped;
      }
      if (mode == PadMode::kReflect && !reflect_ok) continue;
      INFO("mode ", static_cast<int>(mode), " rank ", c.in.size(), " in[0] ", c.in[0], " begin[0] ", c.begin[0]);
      check_pad(rng, make(c.in, c.begin, c.end, mode), serial);
    }
  }
}

TEST_CASE("pad: hand-checked values") {
  kernels::SerialParallel serial;
  const std::vector<float> in = {1, 2, 3, 4};
  auto run = [&](PadMode mode, int64_t b, int64_t e) {
    PadParams p = make({4}, {b}, {e}, mode);
    std::vector<float> out(static_cast<size_t>(4 + b + e));
    kernels::pad(p, in.data(), out.data(), serial);
    return out;
  };
  CHECK(run(PadMode::kConstant, 2, 1) == std::vector<float>{2.5f, 2.5f, 1, 2, 3, 4, 2.5f});
  CHECK(run(PadMode::kReflect, 2, 2) == std::vector<float>{3, 2, 1, 2, 3, 4, 3, 2});
  CHECK(run(PadMode::kEdge, 2, 1) == std::vector<float>{1, 1, 1, 2, 3, 4, 4});
  CHECK(run(PadMode::kConstant, -1, -2) == std::vector<float>{2});
  CHECK(run(PadMode::kEdge, -2, 2) == std::vector<float>{3, 4, 4, 4});
  CHECK(run(PadMode::kReflect, 1, -1) == std::vector<float>{2, 1, 2, 3});
}

TEST_CASE("pad: large tensors give identical results for 1 and 3 threads") {
  std::mt19937 rng(kernel_test::test_seed("pad-parallel"));
  kernel_test::ThreadParallel three(3);
  for (PadMode mode : kModes) {
    check_pad(rng, make({2, 32, 56, 57}, {0, 0, 3, 2}, {0, 0, 2, 3}, mode), three);
    check_pad(rng, make({1, 70001}, {0, 5}, {0, -7}, mode), three);
  }
}
