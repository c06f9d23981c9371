// Winograd F(4x4, 3x3), F(3x3, 4x4) and F(2x2, 5x5) against the naive double reference
// (tests/reference/conv2d_ref.h): odd map sizes, pads, channel counts around the 16-channel
// panels, batches, every epilogue, every compiled target, 1 vs 3 and 16 threads bit-identical; plus the
// documented error bounds. Batches of
// few tiles take the lean path (fused passes below 12 tiles, a transformed block in scratch from
// 12 to 64), the others the staged one (all the weights transformed into scratch at the start of
// the run): the cases cover all three (both paths counted). Both keep the raw weights rearranged:
// unpacking gives them back bit for bit. A run is one pool job whose workers claim the items of
// both phases and wait for the V blocks / U panels they need: a pool whose workers start late or
// one after the other (the first then does everything) must give the same bits.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "kernels/conv_case.h"
#include "kernels/conv_operands.h"
#include "kernels/targets_threads.h"
#include "kernels/winograd.h"
#include "reference/conv2d_ref.h"

using namespace convoy;
using kernels::Activation;
using kernels::Conv2dParams;

namespace {

// Error bound for unit-scale data (inputs and weights uniform in [-1, 1], so every product has
// magnitude <= 1): max |winograd - exact| <= kErrC * sqrt(9 C) * eps_f32, plus 4 eps |y| for
// the epilogue's own roundings. im2col convolution measures a max of ~5 sqrt(9 C) eps on such
// data (C = 64 and 256, 30x30, 64 output channels); F(4x4, 3x3) amplifies the GEMM's rounding
// by its transforms (B^T d reaches 10x the input, A^T's coefficients 8 per dimension): 15-25x
// more on the same data (RMS error 1.3e-5 vs 1.9e-6 at C = 64, output RMS 7.8).
// Measured over these cases and all compiled targets (seed 20240611): 20-75 on maps of <= 5000
// outputs, up to ~230 on the large ones (57600 outputs of C = 256, 30x30: about 1.3e-3 absolute
// against outputs of RMS 16, 8e-5 relative); the max grows with the number of outputs sampled.
// Per path (weights transformed in fp32 per run with the integer G', see kernels/winograd.h): lean
// (D D scaling of Y) up to 189 (171 with these cases), staged (D D scaling of U) up to 204; the
// former U transformed in double at plan time measured up to 234 on the same cases. kErrC = 500
// leaves 2.4x room.
constexpr double kErrC = 500.0;
// F(2x2, 5x5), same interpolation points, error in units of sqrt(25 C) eps: G' reaches 16 (3x3:
// 4), A^T 2 (3x3: 8). Measured over the 5x5 cases below and all compiled targets, seeds 20240611
// and 1-4: 58-71 (im2col: ~5). kErrC5 = 250 leaves 3.5x room.
constexpr double kErrC5 = 250.0;
// F(3x3, 4x4), in units of sqrt(16 C) eps: G' reaches 8, A^T 4. Measured over the 4x4 cases below
// and all compiled targets, seeds 20240611 and 1-4: 46-58 (im2col: ~5). 4.3x room.
constexpr double kErrC4 = 250.0;

struct Case {
  size_t N, C, H, W, M;
  size_t pt, pl, pb, pr;
  bool bias, residual;
  Activation act;
  size_t k = 3;  // kernel side: 3, 4 or 5
};

kernel_test::ConvShape shape(const Case& c) {
  return {c.N, c.C, c.H, c.W, c.M, c.k, c.k, 1, 1, 1, c.pt, c.pl, c.pb, c.pr, 1, 1};
}

std::string describe(const Case& c) { return kernel_test::describe(shape(c), c.bias, c.residual, c.act); }

Conv2dParams params(const Case& c) { return kernel_test::conv_params(shape(c)); }

// Three workers that run one after the other, the last first: the first to run finds every item
// unclaimed and does all the work, the others find none (a pool whose workers woke late).
class LateParallel final : public kernels::Parallel {
 public:
  size_t threads() const override { return 3; }
  void run(size_t n_tasks, const std::function<void(size_t, size_t)>& fn) const override {
    for (size_t i = n_tasks; i-- > 0;) fn(i, i % 3);
  }
};

// Runs the case with 1, 3 (and 3 late ones) and 16 threads (more than kMakespanMaxThreads: smaller
// tile blocks and channel chunks); returns max |got - want| / (sqrt(k k C) eps)
// over the outputs.
double run_case(const Case& cs, std::mt19937& rng) {
  INFO(describe(cs));
  Conv2dParams p = params(cs);
  REQUIRE(kernels::winograd_applicable(p));
  const size_t out_size = p.N * p.M * p.OH * p.OW;
  const kernel_test::ConvOperands ops = kernel_test::conv_operands(rng, p, cs.bias, cs.residual, cs.act);
  const std::vector<float>& in = ops.in;
  const std::vector<float>& w = ops.w;
  const std::vector<double>& want = ops.want;

  std::vector<float> packed(kernels::winograd_packed_weight_floats(p));
  kernels::pack_winograd_weights(p, w.data(), packed.data());
  {
    // The model keeps only this copy: unpacking must give the weights back bit for bit.
    std::vector<float> back(w.size(), std::numeric_limits<float>::quiet_NaN());
    kernels::unpack_winograd_weights(p, packed.data(), back.data());
    CHECK(std::memcmp(back.data(), w.data(), w.size() * sizeof(float)) == 0);
  }
  std::vector<float> got[4];
  const size_t threads[4] = {1, 3, 3, 16};
  for (int t = 0; t < 4; ++t) {
    got[t].assign(out_size, std::numeric_limits<float>::quiet_NaN());
    // 1 thread: 64 B-aligned scratch (as the arena's: the staged path streams U into it); 3
    // threads: misaligned by a float (plain stores). Both must give the same bits.
    std::vector<float> buf(kernels::winograd_scratch_floats(p, threads[t]) + 17);
    float* scratch = buf.data() + (16 - reinterpret_cast<uintptr_t>(buf.data()) / sizeof(float) % 16) % 16 + (t & 1);
    if (t == 0) {
      kernels::winograd_conv(p, in.data(), packed.data(), got[t].data(), scratch, kernels::SerialParallel());
    } else if (t == 2) {
      kernels::winograd_conv(p, in.data(), packed.data(), got[t].data(), scratch, LateParallel());
    } else {
      kernels::winograd_conv(p, in.data(), packed.data(), got[t].data(), scratch, kernel_test::ThreadParallel(threads[t]));
    }
  }
  const double eps = std::numeric_limits<float>::epsilon();
  const double unit = std::sqrt(static_cast<double>(cs.k * cs.k * p.C)) * eps;
  const double bound = cs.k == 3 ? kErrC : cs.k == 4 ? kErrC4 : kErrC5;
  double worst = 0;
  for (size_t i = 0; i < out_size; ++i) {
    const double err = std::fabs(got[0][i] - want[i]);
    const double tol = bound * unit + 4 * eps * std::fabs(want[i]);
    if (!(err <= tol)) {
      FAIL_CHECK("index ", i, " got ", got[0][i], " expected ", want[i], " tol ", tol);
      return worst;
    }
    worst = std::max(worst, err / unit);
  }
  CHECK(std::memcmp(got[0].data(), got[1].data(), out_size * sizeof(float)) == 0);
  CHECK(std::memcmp(got[0].data(), got[2].data(), out_size * sizeof(float)) == 0);
  CHECK(std::memcmp(got[0].data(), got[3].data(), out_size * sizeof(float)) == 0);
  kernel_test::check_residual_in_output(p, ops, got[0], [&](const Conv2dParams& q, float* out, size_t t,
                                                            const kernels::Parallel& par) {
    std::vector<float> scratch(kernels::winograd_scratch_floats(q, t) + 16);
    kernels::winograd_conv(q, in.data(), packed.data(), out, scratch.data(), par);
  });
  return worst;
}

// N, C, H, W, M, pt, pl, pb, pr, bias, residual, act
const Case kCases[] = {
    {1, 1, 1, 1, 1, 1, 1, 1, 1, false, false, Activation::kNone},        // 1x1 map, one partial tile
    {1, 3, 1, 1, 17, 1, 1, 1, 1, true, true, Activation::kRelu},
    {1, 17, 3, 3, 3, 0, 0, 0, 0, true, false, Activation::kNone},        // no pad: 1x1 output
    {2, 3, 5, 7, 17, 1, 1, 1, 1, true, true, Activation::kLeakyRelu},   // batch 2, odd sizes
    {1, 17, 9, 6, 1, 1, 0, 2, 1, false, true, Activation::kClip},        // asymmetric pads
    {2, 17, 13, 11, 64, 0, 1, 1, 0, true, false, Activation::kRelu},
    {1, 64, 8, 8, 64, 1, 1, 1, 1, true, true, Activation::kRelu},        // multiples of the tile
    {1, 64, 7, 7, 17, 1, 1, 1, 1, false, false, Activation::kNone},      // ResNet stage-4 map
    {2, 64, 4, 17, 3, 2, 2, 2, 2, true, false, Activation::kLeakyRelu},  // pads of 2
    {1, 32, 7, 7, 130, 1, 1, 1, 1, true, true, Activation::kRelu},       // output-channel chunks, strip tail
    {1, 3, 37, 70, 20, 1, 1, 1, 1, true, false, Activation::kNone},      // tile rows longer than a vector
    {1, 256, 30, 30, 64, 1, 1, 1, 1, true, true, Activation::kRelu},     // several tile blocks
    {1, 100, 6, 6, 80, 1, 1, 1, 1, true, true, Activation::kRelu},       // lean: channel-block tail
    {1, 512, 7, 7, 512, 1, 1, 1, 1, true, true, Activation::kRelu},      // lean: ResNet stage 4
    {8, 64, 7, 7, 64, 1, 1, 1, 1, true, false, Activation::kRelu},       // lean, 32 tiles: Ub GEMMs
    {1, 32, 23, 23, 130, 1, 1, 1, 1, true, true, Activation::kRelu},    // lean, 36 tiles, strip tail
    {8, 64, 17, 17, 64, 1, 1, 1, 1, true, false, Activation::kRelu},     // 200 tiles: staged
    {1, 32, 40, 40, 130, 1, 1, 1, 1, true, true, Activation::kRelu},    // staged, channel chunks
    {1, 600, 30, 30, 32, 1, 1, 1, 1, true, true, Activation::kRelu},     // 64 tiles x 600 channels: staged
    {1, 256, 14, 14, 64, 1, 1, 1, 1, true, true, Activation::kRelu},     // lean: ResNet stage 3 (16 tiles)
    {1, 128, 28, 28, 40, 1, 1, 1, 1, true, true, Activation::kRelu},    // lean: ResNet stage 2 (7 tiles per row)
    {2, 45, 20, 18, 24, 1, 1, 0, 1, true, false, Activation::kNone},     // lean, 5 tiles per row: batch 2, block tail
    {1, 48, 13, 13, 40, 1, 1, 1, 1, true, false, Activation::kRelu},     // lean: AlexNet's 13x13 maps
    {1, 20, 2, 124, 24, 1, 1, 1, 1, false, true, Activation::kNone},     // lean: 31 tiles, two gather chunks
    {1, 37, 7, 7, 20, 1, 1, 1, 1, true, true, Activation::kNone},        // lean: 4 channels per gather, tail of 1
    {2, 40, 30, 30, 130, 1, 1, 1, 1, true, true, Activation::kRelu},    // staged, 128 tiles, strip tail
    {1, 17, 45, 46, 33, 0, 2, 1, 1, false, true, Activation::kLeakyRelu}, // staged: odd sizes, pads
    {3, 64, 28, 28, 64, 1, 1, 1, 1, true, false, Activation::kRelu},     // staged: 147 tiles, ResNet-like
    {8, 40, 14, 13, 40, 1, 1, 1, 0, true, true, Activation::kRelu},      // staged, 4 tile columns: 8 blocks
    {5, 24, 7, 15, 20, 0, 1, 2, 1, false, true, Activation::kNone},      // staged, 5 blocks made even
    {1, 200, 13, 13, 72, 1, 1, 1, 1, true, true, Activation::kRelu},     // lean: 7 V blocks, 2 chunks + tail
    {1, 300, 5, 6, 40, 1, 1, 1, 1, true, true, Activation::kRelu},       // lean, fused: channel blocks of 256 + 44
};

// F(3x3, 4x4): the staged path only (tiles of 3x3 outputs, patches 3 apart).
const Case kCases4[] = {
    {1, 1, 1, 1, 1, 2, 1, 1, 2, false, false, Activation::kNone, 4},        // 1x1 map, one partial tile
    {1, 3, 4, 4, 17, 0, 0, 0, 0, true, true, Activation::kRelu, 4},         // no pad: 1x1 output
    {2, 17, 9, 12, 20, 2, 1, 1, 2, true, true, Activation::kLeakyRelu, 4},  // batch 2, asymmetric pads
    {1, 20, 50, 53, 33, 1, 2, 2, 1, false, true, Activation::kClip, 4},     // tile rows longer than a vector
    {8, 24, 13, 13, 40, 1, 1, 2, 2, true, false, Activation::kRelu, 4},     // many tiles: several blocks
    {1, 12, 115, 115, 64, 0, 0, 0, 0, true, false, Activation::kRelu, 4},   // the ResNet stem's rewriting
};

// F(2x2, 5x5): the staged path only (tiles of 2x2 outputs, patches 2 apart).
const Case kCases5[] = {
    {1, 1, 1, 1, 1, 2, 2, 2, 2, false, false, Activation::kNone, 5},        // 1x1 map, one partial tile
    {1, 3, 5, 5, 17, 0, 0, 0, 0, true, true, Activation::kRelu, 5},         // no pad: 1x1 output
    {2, 17, 9, 12, 20, 2, 1, 0, 2, true, true, Activation::kLeakyRelu, 5},  // batch 2, asymmetric pads
    {1, 20, 40, 37, 33, 2, 2, 2, 2, false, true, Activation::kClip, 5},     // tile rows longer than a vector
    {8, 24, 13, 13, 40, 2, 2, 2, 2, true, false, Activation::kRelu, 5},     // 392 tiles: several blocks
    {1, 130, 11, 11, 70, 1, 1, 1, 1, true, true, Activation::kNone, 5},     // pads of 1, channel tails
    {1, 64, 27, 27, 192, 2, 2, 2, 2, true, false, Activation::kRelu, 5},    // AlexNet features.3
};

}  // namespace

TEST_CASE("winograd: F(4x4,3x3) against the naive reference, every target, 1 vs 3 and 16 threads") {
  std::mt19937 rng(kernel_test::test_seed("winograd"));
  double worst[2] = {0, 0};  // by kernels::WinogradPath: lean, staged
  size_t count[2] = {0, 0};
  kernel_test::for_each_target([&](const char*) {
    for (const Case& c : kCases) {
      const auto path = static_cast<size_t>(kernels::winograd_path(params(c)));
      worst[path] = std::max(worst[path], run_case(c, rng));
      ++count[path];
    }
  });
  CHECK(count[0] > 0);
  CHECK(count[1] > 0);
  MESSAGE("winograd: max error ", worst[0], " (lean) / ", worst[1], " (staged) x sqrt(9C) eps (bound ", kErrC, ")");
}

TEST_CASE("winograd: F(3x3,4x4) and F(2x2,5x5) against the naive reference, every target, 1 vs 3 and 16 threads") {
  for (const size_t k : {4, 5}) {
    CAPTURE(k);
    std::mt19937 rng(kernel_test::test_seed(k == 4 ? "winograd 4x4" : "winograd 5x5"));
    double worst = 0;
    kernel_test::for_each_target([&](const char*) {
      for (const Case& c : k == 4 ? std::span<const Case>(kCases4) : std::span<const Case>(kCases5)) {
        CHECK(kernels::winograd_path(params(c)) == kernels::WinogradPath::kStaged);
        worst = std::max(worst, run_case(c, rng));
      }
    });
    MESSAGE("winograd ", k, "x", k, ": max error ", worst, " x sqrt(", k * k, "C) eps (bound ", k == 4 ? kErrC4 : kErrC5, ")");
  }
}

TEST_CASE("winograd: pads 0 to k-1 on each side, map sizes 1-9, 3x3, 4x4 and 5x5") {
  std::mt19937 rng(kernel_test::test_seed("winograd sweep"));
  kernel_test::for_each_target([&](const char*) {
    for (size_t h = 1; h <= 9; h += 2)
      for (size_t w = 1; w <= 9; w += 4)
        for (size_t pad = 0; pad <= 2; ++pad) {
          for (size_t k = 3; k <= 5; ++k) {
            const size_t q = pad * (k / 2);  // 0 .. k - 1 per side
            const Case c{1, 5, h, w + 2, 7, q, k - 1 - q, q, (q + 1) % k, true, true, Activation::kRelu, k};
            if (c.H + c.pt + c.pb < k || c.W + c.pl + c.pr < k) continue;
            run_case(c, rng);
          }
        }
  });
}

TEST_CASE("winograd: applicability") {
  Conv2dParams p = params({1, 8, 10, 10, 8, 1, 1, 1, 1, false, false, Activation::kNone});
  CHECK(kernels::winograd_applicable(p));
  Conv2dParams q = p;
  q.stride_h = q.stride_w = 2;
  CHECK_FALSE(kernels::winograd_applicable(q));
  q = p;
  q.dil_h = 2;
  CHECK_FALSE(kernels::winograd_applicable(q));
  q = p;
  q.group = 2;
  CHECK_FALSE(kernels::winograd_applicable(q));
  q = p;
  q.KH = q.KW = 5;
  CHECK(kernels::winograd_applicable(q));
  q.KH = q.KW = 4;
  CHECK(kernels::winograd_applicable(q));
  q.KH = q.KW = 2;
  CHECK_FALSE(kernels::winograd_applicable(q));
  q.KH = q.KW = 7;
  CHECK_FALSE(kernels::winograd_applicable(q));
  q = p;
  q.KW = 5;
  CHECK_FALSE(kernels::winograd_applicable(q));
}
