// Gemm (alpha, beta, transA, transB, broadcast C, fused activation) and MatMul (numpy
// semantics: 1-D promotion, broadcast batch dimensions).
#include <memory>

#include "kernels/gemm.h"
#include "kernels/strided_copy.h"
#include "runtime/ops/op_util.h"
#include "runtime/ops/ops.h"

namespace convoy::ops {

void plan_gemm(OpContext& c) {
  c.require_float(0);
  c.require_float(1);
  const Shape& a = c.shape(0);
  const Shape& b = c.shape(1);
  if (a.size() != 2 || b.size() != 2) c.fail(str_cat("A ", shape_str(a), " and B ", shape_str(b), " must be 2-D"));
  const bool ta = c.attr_int("transA", 0) != 0, tb = c.attr_int("transB", 0) != 0;
  const int64_t M = ta ? a[1] : a[0], K = ta ? a[0] : a[1];
  const int64_t Kb = tb ? b[1] : b[0], N = tb ? b[0] : b[1];
  if (K != Kb)
    c.fail(str_cat("inner dimensions differ: A ", shape_str(a), (ta ? " (transposed)" : ""), " has K=", K, ", B ",
                   shape_str(b), (tb ? " (transposed)" : ""), " has K=", Kb));
  const float alpha = c.attr_float("alpha", 1.f), beta = c.attr_float("beta", 1.f);
  kernels::GemmParams p;
  p.M = static_cast<size_t>(M);
  p.N = static_cast<size_t>(N);
  p.K = static_cast<size_t>(K);
  p.a_rs = ta ? 1 : K;
  p.a_cs = ta ? M : 1;
  p.b_rs = tb ? 1 : N;
  p.b_cs = tb ? K : 1;
  p.ldc = static_cast<size_t>(N);
  p.alpha = alpha;
  float act_alpha = 0, act_beta = 0;
  p.ep.act = fused_activation(c, &act_alpha, &act_beta);
  p.ep.alpha = act_alpha;
  p.ep.beta = act_beta;
  const Shape out_shape = {M, N};
  TensorLoc out = c.set_tensor(0, out_shape);
  std::vector<TensorLoc> ins = {c.loc(0), c.loc(1)};
  enum class Bias { kNone, kPerColumn, kPerRow, kInOutput } bias = Bias::kNone;
  if (c.has_input(2) && beta != 0.f) {
    c.require_float(2);
    const Shape& cs = c.shape(2);
    if (cs.size() > 2 || broadcast_shapes(c, cs, out_shape) != out_shape)
      c.fail(str_cat("C ", shape_str(cs), " cannot be broadcast to [", M, ",", N, "]"));
    const Shape c2 = cs.size() == 2 ? cs : (cs.size() == 1 ? Shape{1, cs[0]} : Shape{1, 1});
    if (c.is_const(2) && (c2[0] == 1 || c2[1] == 1) && !(c2[0] == M && c2[1] == N && M > 1 && N > 1)) {
      // A vector C becomes the epilogue bias, pre-scaled by beta.
      const float* src = c.const_input(2, "C").f32();
      const bool per_row = c2[0] == M && c2[1] == 1 && M > 1;
      const size_t len = static_cast<size_t>(per_row ? M : N);
      auto v = std::make_shared<std::vector<float>>(len);
      for (size_t k = 0; k < len; ++k) (*v)[k] = beta * src[(per_row ? c2[0] : c2[1]) == 1 ? 0 : k];
      ins.push_back(c.keep_const(std::move(v)));
      bias = per_row ? Bias::kPerRow : Bias::kPerColumn;
    } else {
      kernels::StridedCopyParams cp;
      cp.shape = to_dims(c, out_shape);
      cp.src_strides = broadcast_strides(cs, out_shape);
      cp.dst_strides = to_dims(c, contiguous_strides(out_shape));
      c.emit("Gemm.C", {c.loc(2)}, {out},
             [cp](const StepArgs& s, const kernels::Parallel& par) { kernels::strided_copy(cp, s.in[0], s.out[0], par); });
      p.beta = beta;
      bias = Bias::kInOutput;
    }
  }
  const Bias bk = bias;
  c.emit("Gemm", ins, {out},
         [p, bk](const StepArgs& s, const kernels::Parallel& par) {
           kernels::GemmParams q = p;
           if (bk == Bias::kPerColumn || bk == Bias::kPerRow) {
             q.ep.bias = s.in[2];
             q.ep.bias_per_row = bk == Bias::kPerRow;
           }
           kernels::gemm(q, s.in[0], s.in[1], s.out[0], s.scratch, par);
         },
         kernels::gemm_scratch_floats(p, c.threads()), 2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K));
}

void plan_matmul(OpContext& c) {
  c.require_float(0);
  c.require_float(1);
  Shape a = c.shape(0), b = c.shape(1);
  if (a.empty() || b.empty()) c.fail("MatMul inputs must have rank >= 1");
  const bool a1 = a.size() == 1, b1 = b.size() == 1;
  if (a1) a.insert(a.begin(), 1);
  if (b1) b.push_back(1);
  const int64_t M = a[a.size() - 2], K = a.back(), Kb = b[b.size() - 2], N = b.back();
  if (K != Kb) c.fail(str_cat("inner dimensions differ: ", shape_str(c.shape(0)), " x ", shape_str(c.shape(1))));
  const Shape ab(a.begin(), a.end() - 2), bb(b.begin(), b.end() - 2);
  const Shape batch = broadcast_shapes(c, ab, bb);
  Shape out_shape = batch;
  if (!a1) out_shape.push_back(M);
  if (!b1) out_shape.push_back(N);
  TensorLoc out = c.set_tensor(0, out_shape);
  int64_t nb = 1;
  for (int64_t d : batch) nb *= d;
  kernels::GemmParams p;
  p.K = static_cast<size_t>(K);
  p.N = static_cast<size_t>(N);
  p.a_rs = K;
  p.a_cs = 1;
  p.b_rs = N;
  p.b_cs = 1;
  p.ldc = static_cast<size_t>(N);
  const double flops = 2.0 * static_cast<double>(nb * M) * static_cast<double>(N * K);
  int64_t nbb = 1;
  for (int64_t d : bb) nbb *= d;
  if (nbb == 1) {
    // B is shared by every batch: fold A's batch into M (A is contiguous).
    p.M = static_cast<size_t>(nb * M);
    if (ab.size() < batch.size() || [&] { int64_t n = 1; for (int64_t d : ab) n *= d; return n != nb; }()) {
      // A itself is broadcast along batch: fall through to the general loop below.
    } else {
      c.emit("MatMul", {c.loc(0), c.loc(1)}, {out},
             [p](const StepArgs& s, const kernels::Parallel& par) { kernels::gemm(p, s.in[0], s.in[1], s.out[0], s.scratch, par); },
             kernels::gemm_scratch_floats(p, c.threads()), flops);
      return;
    }
  }
  // General broadcast: one GEMM per output batch element, offsets computed now.
  p.M = static_cast<size_t>(M);
  const kernels::Dims sa = broadcast_strides(ab, batch), sb = broadcast_strides(bb, batch);
  std::vector<std::pair<size_t, size_t>> offs(static_cast<size_t>(nb));
  std::vector<int64_t> idx(batch.size(), 0);
  for (int64_t j = 0; j < nb; ++j) {
    int64_t oa = 0, ob = 0;
    for (size_t k = 0; k < batch.size(); ++k) { oa += idx[k] * sa.d[k]; ob += idx[k] * sb.d[k]; }
    offs[static_cast<size_t>(j)] = {static_cast<size_t>(oa * M * K), static_cast<size_t>(ob * K * N)};
    for (size_t k = batch.size(); k-- > 0;) {
      if (++idx[k] < batch[k]) break;
      idx[k] = 0;
    }
  }
  const size_t out_stride = static_cast<size_t>(M * N);
  c.emit("MatMul", {c.loc(0), c.loc(1)}, {out},
         [p, offs, out_stride](const StepArgs& s, const kernels::Parallel& par) {
           for (size_t j = 0; j < offs.size(); ++j)
             kernels::gemm(p, s.in[0] + offs[j].first, s.in[1] + offs[j].second, s.out[0] + j * out_stride, s.scratch, par);
         },
         kernels::gemm_scratch_floats(p, c.threads()), flops);
}

}  // namespace convoy::ops
