// Naive double-precision references for the backward kernels: forward functions in double
// (so central finite differences of sum(dy * f(x)) are accurate), direct backward loops for
// the cases too large for finite differences, and the training-step maths (SGD, softmax
// cross-entropy). Written from the operator definitions, independently of kernels/*.cpp.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/lrn.h"
#include "kernels/pool2d.h"

namespace convoy::ref {

using DVec = std::vector<double>;

inline DVec to_double(const std::vector<float>& v) { return DVec(v.begin(), v.end()); }

// ---- forward functions in double ----

// ONNX Conv, weights [M][C/group][KH][KW], no bias/epilogue.
inline DVec conv2d_fwd(const kernels::Conv2dParams& p, const DVec& x, const DVec& w) {
  const size_t Cg = p.C / p.group, Mg = p.M / p.group;
  DVec y(p.N * p.M * p.OH * p.OW, 0.0);
  for (size_t n = 0; n < p.N; ++n)
    for (size_t m = 0; m < p.M; ++m)
      for (size_t oh = 0; oh < p.OH; ++oh)
        for (size_t ow = 0; ow < p.OW; ++ow) {
          double s = 0;
          for (size_t c = 0; c < Cg; ++c)
            for (size_t kh = 0; kh < p.KH; ++kh)
              for (size_t kw = 0; kw < p.KW; ++kw) {
                const long ih = static_cast<long>(oh * p.stride_h + kh * p.dil_h) - static_cast<long>(p.pad_top);
                const long iw = static_cast<long>(ow * p.stride_w + kw * p.dil_w) - static_cast<long>(p.pad_left);
                if (ih < 0 || iw < 0 || ih >= static_cast<long>(p.H) || iw >= static_cast<long>(p.W)) continue;
                const size_t ci = (m / Mg) * Cg + c;
                s += x[((n * p.C + ci) * p.H + static_cast<size_t>(ih)) * p.W + static_cast<size_t>(iw)] *
                     w[((m * Cg + c) * p.KH + kh) * p.KW + kw];
              }
          y[((n * p.M + m) * p.OH + oh) * p.OW + ow] = s;
        }
  return y;
}

// Visits every (output index, input index) pair of a pooling window that lies inside the input,
// and reports per output the count of positions inside the padded input.
inline void pool_windows(const kernels::Pool2dParams& p,
                         const std::function<void(size_t o, const std::vector<size_t>& in_idx, size_t padded)>& fn) {
  const long H = static_cast<long>(p.H), W = static_cast<long>(p.W);
  std::vector<size_t> idx;
  for (size_t nc = 0; nc < p.N * p.C; ++nc)
    for (size_t oh = 0; oh < p.OH; ++oh)
      for (size_t ow = 0; ow < p.OW; ++ow) {
        idx.clear();
        size_t padded = 0;
        for (size_t kh = 0; kh < p.KH; ++kh)
          for (size_t kw = 0; kw < p.KW; ++kw) {
            const long ih = static_cast<long>(oh * p.stride_h + kh * p.dil_h) - static_cast<long>(p.pad_top);
            const long iw = static_cast<long>(ow * p.stride_w + kw * p.dil_w) - static_cast<long>(p.pad_left);
            if (ih >= -static_cast<long>(p.pad_top) && ih < H + static_cast<long>(p.pad_bottom) &&
                iw >= -static_cast<long>(p.pad_left) && iw < W + static_cast<long>(p.pad_right))
              ++padded;
            if (ih < 0 || iw < 0 || ih >= H || iw >= W) continue;
            idx.push_back((nc * p.H + static_cast<size_t>(ih)) * p.W + static_cast<size_t>(iw));
          }
        fn((nc * p.OH + oh) * p.OW + ow, idx, padded);
      }
}

// Max (empty window: 0, it has no gradient) or average pooling.
inline DVec pool2d_fwd(const kernels::Pool2dParams& p, const DVec& x) {
  DVec y(p.N * p.C * p.OH * p.OW, 0.0);
  pool_windows(p, [&](size_t o, const std::vector<size_t>& idx, size_t padded) {
    if (idx.empty()) return;
    if (p.kind == kernels::PoolKind::kMax) {
      double m = -std::numeric_limits<double>::infinity();
      for (size_t i : idx) m = std::max(m, x[i]);
      y[o] = m;
    } else {
      double s = 0;
      for (size_t i : idx) s += x[i];
      y[o] = s / static_cast<double>(p.count_include_pad ? padded : idx.size());
    }
  });
  return y;
}

// Max pooling's chosen input per output: the first maximum in window order (row-major over
// kh, kw), -1 for a window with no input.
inline std::vector<int32_t> maxpool_argmax(const kernels::Pool2dParams& p, const std::vector<float>& x) {
  std::vector<int32_t> arg(p.N * p.C * p.OH * p.OW, -1);
  const size_t hw = p.H * p.W;
  pool_windows(p, [&](size_t o, const std::vector<size_t>& idx, size_t) {
    if (idx.empty()) return;
    size_t best = idx[0];
    for (size_t i : idx)
      if (x[i] > x[best]) best = i;
    arg[o] = static_cast<int32_t>(best % hw);
  });
  return arg;
}

// ONNX LRN.
inline DVec lrn_fwd(const kernels::LrnParams& p, const DVec& x) {
  DVec y(x.size());
  const size_t before = (p.size - 1) / 2, after = p.size / 2;
  for (size_t n = 0; n < p.N; ++n)
    for (size_t c = 0; c < p.C; ++c)
      for (size_t i = 0; i < p.HW; ++i) {
        double s = 0;
        const size_t lo = c >= before ? c - before : 0, hi = std::min(p.C - 1, c + after);
        for (size_t k = lo; k <= hi; ++k) {
          const double v = x[(n * p.C + k) * p.HW + i];
          s += v * v;
        }
        const size_t o = (n * p.C + c) * p.HW + i;
        y[o] = x[o] / std::pow(static_cast<double>(p.bias) + static_cast<double>(p.alpha) / static_cast<double>(p.size) * s,
                               static_cast<double>(p.beta));
      }
  return y;
}

// ---- finite differences ----

// Gradient of L(x) = sum(dy * f(x)) by central differences with step h (per element of x).
inline DVec fd_grad(const std::function<DVec(const DVec&)>& f, const DVec& x, const DVec& dy, double h) {
  auto loss = [&](const DVec& v) {
    const DVec y = f(v);
    double s = 0;
    for (size_t i = 0; i < y.size(); ++i) s += dy[i] * y[i];
    return s;
  };
  DVec g(x.size());
  DVec v = x;
  for (size_t i = 0; i < x.size(); ++i) {
    v[i] = x[i] + h;
    const double lp = loss(v);
    v[i] = x[i] - h;
    const double lm = loss(v);
    v[i] = x[i];
    g[i] = (lp - lm) / (2 * h);
  }
  return g;
}

// ---- direct backward loops (for shapes too large for finite differences) ----

inline void conv2d_bwd(const kernels::Conv2dParams& p, const DVec& x, const DVec& w, const DVec& dy, DVec& dx, DVec& dw) {
  const size_t Cg = p.C / p.group, Mg = p.M / p.group;
  dx.assign(p.N * p.C * p.H * p.W, 0.0);
  dw.assign(p.M * Cg * p.KH * p.KW, 0.0);
  for (size_t n = 0; n < p.N; ++n)
    for (size_t m = 0; m < p.M; ++m)
      for (size_t oh = 0; oh < p.OH; ++oh)
        for (size_t ow = 0; ow < p.OW; ++ow) {
          const double g = dy[((n * p.M + m) * p.OH + oh) * p.OW + ow];
          for (size_t c = 0; c < Cg; ++c)
            for (size_t kh = 0; kh < p.KH; ++kh)
              for (size_t kw = 0; kw < p.KW; ++kw) {
                const long ih = static_cast<long>(oh * p.stride_h + kh * p.dil_h) - static_cast<long>(p.pad_top);
                const long iw = static_cast<long>(ow * p.stride_w + kw * p.dil_w) - static_cast<long>(p.pad_left);
                if (ih < 0 || iw < 0 || ih >= static_cast<long>(p.H) || iw >= static_cast<long>(p.W)) continue;
                const size_t xi = ((n * p.C + (m / Mg) * Cg + c) * p.H + static_cast<size_t>(ih)) * p.W + static_cast<size_t>(iw);
                const size_t wi = ((m * Cg + c) * p.KH + kh) * p.KW + kw;
                dx[xi] += g * w[wi];
                dw[wi] += g * x[xi];
              }
        }
}

// ---- training-step maths ----

// torch.optim.SGD step (dampening 0, no Nesterov), each operation rounded to float as PyTorch.
inline void sgd_ref(size_t count, float lr, float momentum, float wd, float* w, const float* grad, float* v, bool first) {
  for (size_t i = 0; i < count; ++i) {
    const float g = grad[i] + wd * w[i];
    v[i] = first ? g : momentum * v[i] + g;
    w[i] = w[i] - lr * v[i];
  }
}

// Mean softmax cross-entropy and its gradient, in double.
inline double xent_ref(const std::vector<float>& logits, const std::vector<int32_t>& labels, size_t N, size_t K, DVec& grad) {
  grad.assign(N * K, 0.0);
  double loss = 0;
  for (size_t n = 0; n < N; ++n) {
    double m = -std::numeric_limits<double>::infinity();
    for (size_t k = 0; k < K; ++k) m = std::max(m, static_cast<double>(logits[n * K + k]));
    double z = 0;
    for (size_t k = 0; k < K; ++k) z += std::exp(logits[n * K + k] - m);
    const size_t y = static_cast<size_t>(labels[n]);
    loss += -(logits[n * K + y] - m - std::log(z)) / static_cast<double>(N);
    for (size_t k = 0; k < K; ++k)
      grad[n * K + k] = (std::exp(logits[n * K + k] - m) / z - (k == y ? 1.0 : 0.0)) / static_cast<double>(N);
  }
  return loss;
}

// ---- comparison ----

// Distance of a float gradient from its reference: ||g - r|| / ||r|| (0 when both are 0) and
// the elementwise test |g - r| <= rtol * |r| + afloor * max|r| (the floor absorbs cancellation
// in elements much smaller than the largest one).
struct GradErr {
  double rel_norm = 0, max_abs = 0, max_ref = 0;
  size_t first_bad = 0;
  bool elem_ok = true;
};
inline GradErr grad_error(const float* g, const DVec& r, double rtol, double afloor) {
  GradErr e;
  double num = 0, den = 0;
  for (double v : r) e.max_ref = std::max(e.max_ref, std::fabs(v));
  for (size_t i = 0; i < r.size(); ++i) {
    const double d = static_cast<double>(g[i]) - r[i];
    num += d * d;
    den += r[i] * r[i];
    e.max_abs = std::max(e.max_abs, std::fabs(d));
    if (e.elem_ok && !(std::fabs(d) <= rtol * std::fabs(r[i]) + afloor * e.max_ref)) {
      e.elem_ok = false;
      e.first_bad = i;
    }
  }
  e.rel_norm = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  return e;
}

}  // namespace convoy::ref
