// Random operands of one conv test case, shared by the conv2d, conv_direct and winograd tests:
// input, weights, bias and residual uniform in [-1, 1) (drawn in that order), the epilogue of
// `p` pointed at the bias/residual the case asks for, and the double reference output.
#pragma once

#include <doctest/doctest.h>

#include <cstddef>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/targets_threads.h"
#include "reference/conv2d_ref.h"

namespace convoy::kernel_test {

struct ConvOperands {
  std::vector<float> in, w, bias, res;
  std::vector<double> want, mag;  // ref::conv2d_ref's output and magnitudes
};

// Sets p.ep (bias, residual, act; alpha/beta for LeakyRelu/Clip) and computes the reference.
// The vectors' buffers stay where p.ep points when the result is moved.
inline ConvOperands conv_operands(std::mt19937& rng, kernels::Conv2dParams& p, bool bias, bool residual,
                                  kernels::Activation act) {
  ConvOperands o;
  o.in = random_floats(rng, p.N * p.C * p.H * p.W, -1.f, 1.f);
  o.w = random_floats(rng, p.M * (p.C / p.group) * p.KH * p.KW, -1.f, 1.f);
  o.bias = random_floats(rng, p.M, -1.f, 1.f);
  o.res = random_floats(rng, p.N * p.M * p.OH * p.OW, -1.f, 1.f);
  if (bias) p.ep.bias = o.bias.data();
  if (residual) p.ep.residual = o.res.data();
  p.ep.act = act;
  p.ep.alpha = act == kernels::Activation::kClip ? -0.25f : 0.2f;
  p.ep.beta = 0.5f;
  ref::conv2d_ref(p, o.in.data(), o.w.data(), o.want, o.mag);
  return o;
}

// The residual in the output buffer itself (the planner runs a conv over its residual when the
// conv is that tensor's last reader): `run(q, out, threads, par)` computes p with q's residual
// at `out`, which holds ops.res; the result must be `want` bit for bit, at 1 and 3 threads.
template <class Run>
void check_residual_in_output(const kernels::Conv2dParams& p, const ConvOperands& ops, const std::vector<float>& want,
                              Run run) {
  if (!p.ep.residual) return;
  for (size_t t : {size_t{1}, size_t{3}}) {
    std::vector<float> io(ops.res);
    kernels::Conv2dParams q = p;
    q.ep.residual = io.data();
    if (t == 1) {
      run(q, io.data(), t, kernels::SerialParallel());
    } else {
      run(q, io.data(), t, ThreadParallel(t));
    }
    CHECK_MESSAGE(std::memcmp(want.data(), io.data(), want.size() * sizeof(float)) == 0,
                  "residual in the output, threads ", t);
  }
}

}  // namespace convoy::kernel_test
