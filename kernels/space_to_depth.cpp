// Space-to-depth rewriting of a strided convolution: see kernels/space_to_depth.h.
#include "kernels/space_to_depth.h"

#include <algorithm>

#include "kernels/int_math.h"

namespace convoy::kernels {

namespace {

// Index of w' for output channel m, input channel c, phase (s, t), position (a, b).
size_t s2d_index(const Conv2dParams& p, const Conv2dParams& q, size_t m, size_t c, size_t s, size_t t, size_t a,
                 size_t b) {
  const size_t cs = (c * p.stride_h + s) * p.stride_w + t;
  return ((m * q.C + cs) * q.KH + a) * q.KW + b;
}

}  // namespace

bool space_to_depth_applicable(const Conv2dParams& p) {
  return (p.stride_h > 1 || p.stride_w > 1) && p.stride_h > 0 && p.stride_w > 0 && p.dil_h == 1 && p.dil_w == 1 &&
         p.group == 1 && p.N > 0 && p.C > 0 && p.M > 0 && p.OH > 0 && p.OW > 0;
}

Conv2dParams space_to_depth_params(const Conv2dParams& p) {
  Conv2dParams q = p;
  q.C = p.C * p.stride_h * p.stride_w;
  q.KH = div_up(p.KH, p.stride_h);
  q.KW = div_up(p.KW, p.stride_w);
  q.H = p.OH + q.KH - 1;
  q.W = p.OW + q.KW - 1;
  q.stride_h = q.stride_w = 1;
  q.pad_top = q.pad_left = 0;
  return q;
}

size_t space_to_depth_input_floats(const Conv2dParams& p) {
  const Conv2dParams q = space_to_depth_params(p);
  return q.N * q.C * q.H * q.W;
}

void space_to_depth_input(const Conv2dParams& p, const float* in, float* d, const Parallel& par) {
  const Conv2dParams q = space_to_depth_params(p);
  const size_t Sh = p.stride_h, Sw = p.stride_w;
  // Plane (n, c, s, t) of D: rows i read input row Sh i + s - pad_top, columns j read input column
  // Sw j + t - pad_left; outside the input: zeros. Columns in range form one interval of j.
  par.run(q.N * q.C, [&](size_t task, size_t) {
    const size_t n = task / q.C, cs = task % q.C;
    const size_t c = cs / (Sh * Sw), s = cs / Sw % Sh, t = cs % Sw;
    const float* plane = in + (n * p.C + c) * p.H * p.W;
    float* out = d + task * q.H * q.W;
    // j with 0 <= Sw j + t - pad_left < W: [j0, j1).
    const size_t j0 = std::min(q.W, p.pad_left > t ? div_up(p.pad_left - t, Sw) : size_t{0});
    const size_t j1 = std::max(j0, std::min(q.W, p.W + p.pad_left > t ? div_up(p.W + p.pad_left - t, Sw) : size_t{0}));
    for (size_t i = 0; i < q.H; ++i) {
      float* row = out + i * q.W;
      const size_t ih = Sh * i + s;  // + pad_top rows above the input
      if (ih < p.pad_top || ih - p.pad_top >= p.H) {
        std::fill(row, row + q.W, 0.f);
        continue;
      }
      const float* src = plane + (ih - p.pad_top) * p.W;
      std::fill(row, row + j0, 0.f);
      for (size_t j = j0; j < j1; ++j) row[j] = src[Sw * j + t - p.pad_left];
      std::fill(row + j1, row + q.W, 0.f);
    }
  });
}

void space_to_depth_weights(const Conv2dParams& p, const float* w, float* w_s2d) {
  const Conv2dParams q = space_to_depth_params(p);
  std::fill(w_s2d, w_s2d + q.M * q.C * q.KH * q.KW, 0.f);
  for (size_t m = 0; m < p.M; ++m)
    for (size_t c = 0; c < p.C; ++c)
      for (size_t kh = 0; kh < p.KH; ++kh)
        for (size_t kw = 0; kw < p.KW; ++kw)
          w_s2d[s2d_index(p, q, m, c, kh % p.stride_h, kw % p.stride_w, kh / p.stride_h, kw / p.stride_w)] =
              w[((m * p.C + c) * p.KH + kh) * p.KW + kw];
}

void space_to_depth_weights_back(const Conv2dParams& p, const float* w_s2d, float* w) {
  const Conv2dParams q = space_to_depth_params(p);
  for (size_t m = 0; m < p.M; ++m)
    for (size_t c = 0; c < p.C; ++c)
      for (size_t kh = 0; kh < p.KH; ++kh)
        for (size_t kw = 0; kw < p.KW; ++kw)
          w[((m * p.C + c) * p.KH + kh) * p.KW + kw] =
              w_s2d[s2d_index(p, q, m, c, kh % p.stride_h, kw % p.stride_w, kh / p.stride_h, kw / p.stride_w)];
}

}  // namespace convoy::kernels
