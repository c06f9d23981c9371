// Naive reference loops for the elementwise, softmax and reduction kernels, computed in double.
// Written independently of kernels/ (only the param structs and enums are shared).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/binary.h"
#include "kernels/channel_affine.h"
#include "kernels/reduce.h"
#include "kernels/softmax.h"
#include "kernels/unary.h"

namespace convoy::ref {

inline double unary_one(kernels::UnaryOp op, double x, double alpha, double beta) {
  using kernels::UnaryOp;
  switch (op) {
    case UnaryOp::kCopy: return x;
    case UnaryOp::kRelu: return x > 0 ? x : 0.0;
    case UnaryOp::kLeakyRelu: return x >= 0 ? x : alpha * x;
    case UnaryOp::kClip: return std::min(std::max(x, alpha), beta);
    case UnaryOp::kSigmoid: return 1.0 / (1.0 + std::exp(-x));
    case UnaryOp::kTanh: return std::tanh(x);
    case UnaryOp::kExp: return std::exp(x);
    case UnaryOp::kNeg: return -x;
    case UnaryOp::kAbs: return std::fabs(x);
    case UnaryOp::kSqrt: return std::sqrt(x);
  }
  return std::numeric_limits<double>::quiet_NaN();
}

inline std::vector<double> unary(const kernels::UnaryParams& p, const std::vector<float>& in) {
  std::vector<double> out(p.count);
  for (size_t i = 0; i < p.count; ++i) out[i] = unary_one(p.op, in[i], p.alpha, p.beta);
  return out;
}

inline double binary_one(kernels::BinaryOp op, double a, double b) {
  using kernels::BinaryOp;
  switch (op) {
    case BinaryOp::kAdd: return a + b;
    case BinaryOp::kSub: return a - b;
    case BinaryOp::kMul: return a * b;
    case BinaryOp::kDiv: return a / b;
    case BinaryOp::kMax: return std::max(a, b);
    case BinaryOp::kMin: return std::min(a, b);
    case BinaryOp::kPow: return std::pow(a, b);
  }
  return std::numeric_limits<double>::quiet_NaN();
}

// Walks every output index with explicit per-dimension counters.
inline std::vector<double> binary(const kernels::BinaryParams& p, const float* a, const float* b) {
  const size_t r = p.out_shape.rank;
  size_t total = 1;
  for (size_t k = 0; k < r; ++k) total *= static_cast<size_t>(p.out_shape.d[k]);
  std::vector<double> out(total);
  std::vector<int64_t> idx(r, 0);
  for (size_t flat = 0; flat < total; ++flat) {
    int64_t ia = 0, ib = 0;
    for (size_t k = 0; k < r; ++k) {
      ia += idx[k] * p.a_strides.d[k];
      ib += idx[k] * p.b_strides.d[k];
    }
    out[flat] = binary_one(p.op, a[ia], b[ib]);
    for (size_t k = r; k-- > 0;) {
      if (++idx[k] < p.out_shape.d[k]) break;
      idx[k] = 0;
    }
  }
  return out;
}

inline std::vector<double> channel_affine(const kernels::ChannelAffineParams& p, const std::vector<float>& in,
                                          const std::vector<float>& scale, const std::vector<float>& shift) {
  std::vector<double> out(p.N * p.C * p.HW);
  for (size_t n = 0; n < p.N; ++n)
    for (size_t c = 0; c < p.C; ++c)
      for (size_t i = 0; i < p.HW; ++i) {
        const size_t at = (n * p.C + c) * p.HW + i;
        double y = static_cast<double>(in[at]) * scale[c] + shift[c];
        switch (p.act) {
          case kernels::Activation::kNone: break;
          case kernels::Activation::kRelu: y = std::max(y, 0.0); break;
          case kernels::Activation::kLeakyRelu: y = y >= 0 ? y : p.alpha * y; break;
          case kernels::Activation::kClip: y = std::min(std::max(y, double{p.alpha}), double{p.beta}); break;
        }
        out[at] = y;
      }
  return out;
}

inline std::vector<double> softmax(const kernels::SoftmaxParams& p, const std::vector<float>& in) {
  std::vector<double> out(in.size());
  for (size_t o = 0; o < p.outer; ++o)
    for (size_t i = 0; i < p.inner; ++i) {
      auto at = [&](size_t k) { return (o * p.axis_len + k) * p.inner + i; };
      double m = -std::numeric_limits<double>::infinity();
      for (size_t k = 0; k < p.axis_len; ++k) m = std::max(m, double{in[at(k)]});
      double s = 0;
      for (size_t k = 0; k < p.axis_len; ++k) s += std::exp(in[at(k)] - m);
      for (size_t k = 0; k < p.axis_len; ++k)
        out[at(k)] = p.log ? in[at(k)] - m - std::log(s) : std::exp(in[at(k)] - m) / s;
    }
  return out;
}

inline std::vector<double> reduce(const kernels::ReduceParams& p, const std::vector<float>& in) {
  using kernels::ReduceKind;
  std::vector<double> out(p.outer * p.inner);
  const double inf = std::numeric_limits<double>::infinity();
  for (size_t o = 0; o < p.outer; ++o)
    for (size_t i = 0; i < p.inner; ++i) {
      std::vector<double> x(p.len);
      for (size_t k = 0; k < p.len; ++k) x[k] = in[(o * p.len + k) * p.inner + i];
      double r = 0;
      switch (p.kind) {
        case ReduceKind::kSum:
        case ReduceKind::kMean:
          for (double v : x) r += v;
          if (p.kind == ReduceKind::kMean) r /= static_cast<double>(p.len);
          break;
        case ReduceKind::kMax:
          r = -inf;
          for (double v : x) r = std::max(r, v);
          break;
        case ReduceKind::kMin:
          r = inf;
          for (double v : x) r = std::min(r, v);
          break;
        case ReduceKind::kProd:
          r = 1;
          for (double v : x) r *= v;
          break;
        case ReduceKind::kSumSquare:
        case ReduceKind::kL2:
          for (double v : x) r += v * v;
          if (p.kind == ReduceKind::kL2) r = std::sqrt(r);
          break;
        case ReduceKind::kLogSumExp: {
          double m = -inf;
          for (double v : x) m = std::max(m, v);
          for (double v : x) r += std::exp(v - m);
          r = m + std::log(r);
          break;
        }
      }
      out[o * p.inner + i] = r;
    }
  return out;
}

}  // namespace convoy::ref
