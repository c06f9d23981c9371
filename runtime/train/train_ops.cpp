// Forward and backward lowering of each op the trainable suffix supports (see PlanBuilder in
// plan_builder.h). Forward kernels are the inference ones; backward kernels are kernels/*_grad.h,
// GEMM with transposing strides, and channel_affine for BatchNormalization (eval).
#include <cmath>
#include <cstdint>

#include "kernels/activation_grad.h"
#include "kernels/bias_grad.h"
#include "kernels/binary.h"
#include "kernels/channel_affine.h"
#include "kernels/conv2d.h"
#include "kernels/conv2d_grad.h"
#include "kernels/gemm.h"
#include "kernels/lrn.h"
#include "kernels/lrn_grad.h"
#include "kernels/pool2d.h"
#include "kernels/pool2d_grad.h"
#include "kernels/unary.h"
#include "runtime/ops/op_util.h"
#include "runtime/ops/ops.h"
#include "runtime/train/plan_builder.h"

namespace convoy::train {

using kernels::Parallel;

// Shape `in` broadcast to `out` as [outer, C, inner] where `in` covers the C block (its other
// dims are 1). False when the broadcast is not of that form.
bool block_of(const Shape& in, const Shape& out, kernels::BiasGradParams* bp) {
  if (in.size() > out.size()) return false;
  const size_t off = out.size() - in.size();
  int first = -1, last = -1;
  for (size_t k = 0; k < out.size(); ++k) {
    const int64_t d = k < off ? 1 : in[k - off];
    if (d == out[k] && out[k] != 1) {
      if (first < 0) first = static_cast<int>(k);
      last = static_cast<int>(k);
    } else if (d != 1) {
      return false;
    }
  }
  if (first < 0) first = last = static_cast<int>(out.size()) - 1;
  for (int k = first; k <= last; ++k) {
    const int64_t d = static_cast<size_t>(k) < off ? 1 : in[static_cast<size_t>(k) - off];
    if (d != out[static_cast<size_t>(k)]) return false;
  }
  bp->outer = bp->C = bp->inner = 1;
  for (int k = 0; k < static_cast<int>(out.size()); ++k) {
    const size_t d = static_cast<size_t>(out[static_cast<size_t>(k)]);
    (k < first ? bp->outer : k <= last ? bp->C : bp->inner) *= d;
  }
  return true;
}

kernels::Conv2dParams PlanBuilder::conv_params(const Node& n) {
  if (shape(n.inputs[0]).size() != 4) node_fail("only 2-D convolutions (rank 4) can be trained");
  return ops::conv2d_params(ctx(n), nullptr);
}

kernels::Pool2dParams PlanBuilder::pool_params(const Node& n, kernels::PoolKind kind) {
  if (shape(n.inputs[0]).size() != 4) node_fail("only 2-D pooling (rank 4) can be trained");
  return ops::pool2d_params(ctx(n), kind, nullptr);
}

PlanBuilder::Fc PlanBuilder::fc_params(const Node& n) {
  OpContext c = ctx(n);
  Fc f;
  const Shape& x = shape(n.inputs[0]);
  const Shape& w = shape(n.inputs[1]);
  if (!is_const(n.inputs[1])) node_fail("no backward for a computed weight; train fewer layers");
  if (w.size() != 2) node_fail(str_cat("weight ", shape_str(w), " must be 2-D"));
  if (n.op_type == "Gemm") {
    if (c.attr_int("transA", 0) != 0) node_fail("transA = 1 cannot be trained");
    if (x.size() != 2) node_fail(str_cat("A ", shape_str(x), " must be 2-D"));
    f.tb = c.attr_int("transB", 0) != 0;
    f.alpha = c.attr_float("alpha", 1.f);
    f.beta = c.attr_float("beta", 1.f);
    if (n.inputs.size() > 2 && !n.inputs[2].empty() && f.beta != 0.f) f.bias = n.inputs[2];
  } else if (x.empty()) {
    node_fail("a 1-D input cannot be trained");
  }
  f.K = static_cast<size_t>(f.tb ? w[1] : w[0]);
  f.N = static_cast<size_t>(f.tb ? w[0] : w[1]);
  if (x.back() != static_cast<int64_t>(f.K)) node_fail(str_cat("input ", shape_str(x), " does not match weight ", shape_str(w)));
  f.M = numel(x) / f.K;
  if (!f.bias.empty()) {
    if (!is_const(f.bias)) node_fail("a computed C cannot be trained");
    const size_t bn = numel(shape(f.bias));
    if (bn != f.N && bn != 1) node_fail(str_cat("C ", shape_str(shape(f.bias)), " must be [N], [1, N] or a scalar"));
  }
  return f;
}

void PlanBuilder::forward(size_t k) {
  const Node& n = g_.nodes[k];
  node_ = &n;
  const std::string& op = n.op_type;
  const std::string& y = n.outputs[0];
  if (op == "Conv") {
    if (n.inputs.size() > 3) node_fail("a fused residual cannot be trained");
    kernels::Conv2dParams p = conv_params(n);
    TensorLoc w = in_loc(n.inputs[1]);
    if (!kernels::conv2d_packing_is_identity(p)) {
      auto packed = std::make_shared<std::vector<float>>(kernels::conv2d_packed_weight_floats(p));
      if (Param* pr = param(n.inputs[1])) {
        tp_.repacks.push_back({pr, packed, p, UINT64_MAX});
      } else {
        kernels::pack_conv2d_weights(p, w.cptr, packed->data());
        tp_.keep.push_back(packed);
      }
      w = cloc(packed->data());
    }
    const bool has_bias = n.inputs.size() > 2 && !n.inputs[2].empty();
    std::vector<TensorLoc> in = {in_loc(n.inputs[0]), w};
    if (has_bias) in.push_back(in_loc(n.inputs[2]));
    TensorLoc out = out_buf(y);
    emit("Conv", in, {out},
         [p, has_bias](const StepArgs& a, const Parallel& par) {
           kernels::Conv2dParams q = p;
           q.ep.bias = has_bias ? a.in[2] : nullptr;
           kernels::conv2d(q, a.in[0], a.in[1], a.out[0], a.scratch, par);
         },
         kernels::conv2d_scratch_floats(p, threads_));
  } else if (op == "Gemm" || op == "MatMul") {
    const Fc f = fc_params(n);
    kernels::GemmParams p;
    p.M = f.M;
    p.N = f.N;
    p.K = f.K;
    p.a_rs = static_cast<ptrdiff_t>(f.K);
    p.a_cs = 1;
    p.b_rs = f.tb ? 1 : static_cast<ptrdiff_t>(f.N);
    p.b_cs = f.tb ? static_cast<ptrdiff_t>(f.K) : 1;
    p.ldc = f.N;
    p.alpha = f.alpha;
    std::vector<TensorLoc> in = {in_loc(n.inputs[0]), in_loc(n.inputs[1])};
    if (!f.bias.empty()) {
      // The epilogue adds a per-column bias; beta * C broadcast to [N] is made per run (C may
      // be a trained parameter).
      const size_t bn = numel(shape(f.bias));
      TensorLoc c = in_loc(f.bias);
      if (bn == f.N && f.beta == 1.f) {
        in.push_back(c);
      } else {
        TensorLoc b = buf(f.N);
        const size_t N = f.N;
        const float beta = f.beta;
        emit("GemmBias", {c}, {b}, [N, bn, beta](const StepArgs& a, const Parallel&) {
          for (size_t j = 0; j < N; ++j) a.out[0][j] = beta * a.in[0][bn == 1 ? 0 : j];
        });
        in.push_back(b);
      }
    }
    const bool has_bias = in.size() > 2;
    TensorLoc out = out_buf(y);
    emit(op, in, {out},
         [p, has_bias](const StepArgs& a, const Parallel& par) {
           kernels::GemmParams q = p;
           if (has_bias) {
             q.ep.bias = a.in[2];
             q.ep.bias_per_row = false;
           }
           kernels::gemm(q, a.in[0], a.in[1], a.out[0], a.scratch, par);
         },
         kernels::gemm_scratch_floats(p, threads_));
  } else if (op == "Add") {
    const Shape& ys = shape(y);
    kernels::BinaryParams p;
    p.op = kernels::BinaryOp::kAdd;
    OpContext c = ctx(n);
    p.out_shape = ops::to_dims(c, ys);
    p.a_strides = ops::broadcast_strides(shape(n.inputs[0]), ys);
    p.b_strides = ops::broadcast_strides(shape(n.inputs[1]), ys);
    TensorLoc a = in_loc(n.inputs[0]), b = in_loc(n.inputs[1]);
    TensorLoc out = out_buf(y);
    emit("Add", {a, b}, {out},
         [p](const StepArgs& s, const Parallel& par) { kernels::binary(p, s.in[0], s.in[1], s.out[0], par); });
  } else if (op == "Relu" || op == "LeakyRelu") {
    kernels::UnaryParams p;
    p.count = numel(shape(y));
    p.op = op == "Relu" ? kernels::UnaryOp::kRelu : kernels::UnaryOp::kLeakyRelu;
    p.alpha = ctx(n).attr_float("alpha", 0.01f);
    if (op == "LeakyRelu" && !(p.alpha > 0.f)) node_fail("LeakyRelu with alpha <= 0 cannot be trained");
    TensorLoc x = in_loc(n.inputs[0]);
    TensorLoc out = out_buf(y);
    emit(op, {x}, {out}, [p](const StepArgs& a, const Parallel& par) { kernels::unary(p, a.in[0], a.out[0], par); });
  } else if (op == "MaxPool" || op == "AveragePool") {
    const bool mx = op == "MaxPool";
    const kernels::Pool2dParams p = pool_params(n, mx ? kernels::PoolKind::kMax : kernels::PoolKind::kAvg);
    TensorLoc x = in_loc(n.inputs[0]);
    TensorLoc out = out_buf(y);
    if (mx && train_) {
      TensorLoc arg = buf(numel(shape(y)));  // int32 switches in float-sized slots
      saved_[y] = arg;
      emit(op, {x}, {out, arg}, [p](const StepArgs& a, const Parallel& par) {
        kernels::maxpool2d_forward_argmax(p, a.in[0], a.out[0], reinterpret_cast<int32_t*>(a.out[1]), par);
      });
    } else {
      emit(op, {x}, {out}, [p](const StepArgs& a, const Parallel& par) { kernels::pool2d(p, a.in[0], a.out[0], par); });
    }
  } else if (op == "GlobalAveragePool") {
    const Shape& x = shape(n.inputs[0]);
    kernels::GlobalPoolParams p;
    p.NC = static_cast<size_t>(x[0] * x[1]);
    p.HW = numel(x) / p.NC;
    p.kind = kernels::PoolKind::kAvg;
    TensorLoc in = in_loc(n.inputs[0]);
    TensorLoc out = out_buf(y);
    emit(op, {in}, {out}, [p](const StepArgs& a, const Parallel& par) { kernels::global_pool(p, a.in[0], a.out[0], par); });
  } else if (op == "BatchNormalization") {
    OpContext c = ctx(n);
    if (c.attr_int("training_mode", 0) != 0 || (n.outputs.size() > 1))
      node_fail("training-mode BatchNormalization is not supported; BatchNormalization is trained in eval mode");
    const Shape& x = shape(n.inputs[0]);
    const size_t C = static_cast<size_t>(x[1]);
    for (size_t i = 1; i < 5; ++i)
      if (!is_const(n.inputs[i]) || param(n.inputs[i])) node_fail("BatchNormalization parameters must be frozen constants");
    const float eps = c.attr_float("epsilon", 1e-5f);
    auto ss = std::make_shared<std::vector<float>>(3 * C, 0.f);  // scale, shift, zeros
    const float* gm = vals_.at(n.inputs[1]).constant->f32();
    const float* bt = vals_.at(n.inputs[2]).constant->f32();
    const float* mu = vals_.at(n.inputs[3]).constant->f32();
    const float* var = vals_.at(n.inputs[4]).constant->f32();
    for (size_t i = 0; i < C; ++i) {
      const double s = static_cast<double>(gm[i]) / std::sqrt(static_cast<double>(var[i]) + eps);
      (*ss)[i] = static_cast<float>(s);
      (*ss)[C + i] = static_cast<float>(static_cast<double>(bt[i]) - static_cast<double>(mu[i]) * s);
    }
    tp_.keep.push_back(ss);
    bn_[y] = ss->data();
    kernels::ChannelAffineParams p;
    p.N = static_cast<size_t>(x[0]);
    p.C = C;
    p.HW = numel(x) / (p.N * C);
    const float* sc = ss->data();
    TensorLoc in = in_loc(n.inputs[0]);
    TensorLoc out = out_buf(y);
    emit(op, {in}, {out}, [p, sc, C](const StepArgs& a, const Parallel& par) {
      kernels::channel_affine(p, a.in[0], sc, sc + C, a.out[0], par);
    });
  } else if (op == "LRN") {
    OpContext c = ctx(n);
    const Shape& x = shape(n.inputs[0]);
    kernels::LrnParams p;
    p.N = static_cast<size_t>(x[0]);
    p.C = static_cast<size_t>(x[1]);
    p.HW = numel(x) / (p.N * p.C);
    const int64_t size = c.attr_int("size", 0);
    if (size <= 0) node_fail("size must be positive");
    p.size = static_cast<size_t>(size);
    p.alpha = c.attr_float("alpha", 1e-4f);
    p.beta = c.attr_float("beta", 0.75f);
    p.bias = c.attr_float("bias", 1.f);
    TensorLoc in = in_loc(n.inputs[0]);
    TensorLoc out = out_buf(y);
    emit(op, {in}, {out}, [p](const StepArgs& a, const Parallel& par) { kernels::lrn(p, a.in[0], a.out[0], par); });
  } else if (op == "Flatten" || op == "Reshape" || op == "Identity" || op == "Squeeze" || op == "Unsqueeze") {
    alias(y, n.inputs[0]);
  } else if (op == "Dropout") {
    if (n.outputs.size() > 1 && !n.outputs[1].empty()) node_fail("the mask output of Dropout is not supported");
    OpContext c = ctx(n);
    float ratio = 0.5f;
    if (g_.opset < 12) {
      ratio = c.attr_float("ratio", 0.5f);
    } else if (n.inputs.size() > 1 && !n.inputs[1].empty()) {
      if (!is_const(n.inputs[1])) node_fail("the ratio must be a constant");
      ratio = static_cast<float>(vals_.at(n.inputs[1]).constant->as_f64().at(0));
    }
    if (!(ratio >= 0.f && ratio < 1.f)) node_fail(str_cat("ratio ", ratio, " must be in [0, 1)"));
    if (!train_ || ratio == 0.f) {
      alias(y, n.inputs[0]);
      return;
    }
    kernels::DropoutParams p;
    p.count = numel(shape(y));
    p.ratio = ratio;
    const uint64_t salt = (static_cast<uint64_t>(k) + 1) * 0x9E3779B97F4A7C15ull;
    auto state = tp_.state;
    TensorLoc x = in_loc(n.inputs[0]);
    TensorLoc out = out_buf(y);
    TensorLoc mask = buf(p.count);
    saved_[y] = mask;
    emit(op, {x}, {out, mask}, [p, salt, state](const StepArgs& a, const Parallel& par) {
      kernels::DropoutParams q = p;
      Rng r(state->dropout_seed ^ salt);
      q.seed = r.next();
      kernels::dropout_forward(q, a.in[0], a.out[0], a.out[1], par);
    });
  } else {
    node_fail(str_cat("no backward for ", op, "; train fewer layers"));
  }
}

void PlanBuilder::backward(size_t k) {
  const Node& n = g_.nodes[k];
  node_ = &n;
  const std::string& op = n.op_type;
  const std::string& y = n.outputs[0];
  auto git = grad_.find(y);
  if (git == grad_.end()) return;  // the loss does not depend on this node's output
  const TensorLoc dy = git->second;
  const std::string& x0 = n.inputs[0];
  if (op == "Conv") {
    const kernels::Conv2dParams p = conv_params(n);
    const TensorLoc x = in_loc(x0);
    const float* w_onnx = in_loc(n.inputs[1]).cptr;  // ONNX layout (never the packed copy)
    if (Param* pw = param(n.inputs[1])) {
      float* dw = pw->grad.data();
      written_.insert(pw);
      emit("ConvGradW", {x, dy}, {},
           [p, dw](const StepArgs& a, const Parallel& par) {
             kernels::conv2d_backward_weight(p, a.in[0], a.in[1], dw, false, a.scratch, par);
           },
           kernels::conv2d_backward_weight_scratch_floats(p, threads_));
    }
    if (n.inputs.size() > 2 && !n.inputs[2].empty())
      if (Param* pb = param(n.inputs[2])) bias_grad(pb, dy, {p.N, p.M, p.OH * p.OW});
    if (needs_grad(x0)) {
      TensorLoc dx = buf(numel(shape(x0)));
      emit("ConvGradX", {dy}, {dx},
           [p, w_onnx](const StepArgs& a, const Parallel& par) {
             kernels::conv2d_backward_data(p, a.in[0], w_onnx, a.out[0], a.scratch, par);
           },
           kernels::conv2d_backward_data_scratch_floats(p, threads_));
      contribute(x0, dx);
    }
  } else if (op == "Gemm" || op == "MatMul") {
    const Fc f = fc_params(n);
    const TensorLoc x = in_loc(x0);
    const float* w = in_loc(n.inputs[1]).cptr;
    const ptrdiff_t N = static_cast<ptrdiff_t>(f.N), K = static_cast<ptrdiff_t>(f.K);
    if (Param* pw = param(n.inputs[1])) {
      // dW = alpha * X^T dY ([K,N]) or alpha * dY^T X ([N,K]).
      kernels::GemmParams p;
      p.alpha = f.alpha;
      if (!f.tb) {
        p.M = f.K; p.N = f.N; p.K = f.M;
        p.a_rs = 1; p.a_cs = K;   // A = X^T
        p.b_rs = N; p.b_cs = 1;   // B = dY
        p.ldc = f.N;
      } else {
        p.M = f.N; p.N = f.K; p.K = f.M;
        p.a_rs = 1; p.a_cs = N;   // A = dY^T
        p.b_rs = K; p.b_cs = 1;   // B = X
        p.ldc = f.K;
      }
      float* dw = pw->grad.data();
      written_.insert(pw);
      const bool tb = f.tb;
      emit(op + "GradW", {x, dy}, {},
           [p, dw, tb](const StepArgs& a, const Parallel& par) {
             if (!tb) kernels::gemm(p, a.in[0], a.in[1], dw, a.scratch, par);
             else kernels::gemm(p, a.in[1], a.in[0], dw, a.scratch, par);
           },
           kernels::gemm_scratch_floats(p, threads_));
    }
    if (!f.bias.empty())
      if (Param* pb = param(f.bias)) {
        if (numel(shape(f.bias)) == f.N) {
          bias_grad(pb, dy, {f.M, f.N, 1}, f.beta);
        } else {  // scalar C: beta * sum of dY
          float* db = pb->grad.data();
          written_.insert(pb);
          const size_t cnt = f.M * f.N;
          const float beta = f.beta;
          emit("GemmGradC", {dy}, {}, [db, cnt, beta](const StepArgs& a, const Parallel&) {
            double s = 0;
            for (size_t i = 0; i < cnt; ++i) s += a.in[0][i];
            db[0] = static_cast<float>(beta * s);
          });
        }
      }
    if (needs_grad(x0)) {
      // dX[M,K] = alpha * dY[M,N] * B^T.
      kernels::GemmParams p;
      p.M = f.M; p.N = f.K; p.K = f.N;
      p.a_rs = N; p.a_cs = 1;
      p.b_rs = f.tb ? K : 1;
      p.b_cs = f.tb ? 1 : N;
      p.ldc = f.K;
      p.alpha = f.alpha;
      TensorLoc dx = buf(numel(shape(x0)));
      emit(op + "GradX", {dy}, {dx},
           [p, w](const StepArgs& a, const Parallel& par) { kernels::gemm(p, a.in[0], w, a.out[0], a.scratch, par); },
           kernels::gemm_scratch_floats(p, threads_));
      contribute(x0, dx);
    }
  } else if (op == "Add") {
    const Shape& ys = shape(y);
    for (size_t i = 0; i < 2; ++i) {
      const std::string& v = n.inputs[i];
      Param* pv = param(v);
      if (!pv && !needs_grad(v)) continue;
      const Shape& vs = shape(v);
      if (!pv && vs == ys) {
        contribute(v, dy);
        continue;
      }
      kernels::BiasGradParams bp;
      if (!block_of(vs, ys, &bp)) node_fail(str_cat("no backward for broadcasting ", shape_str(vs), " to ", shape_str(ys)));
      if (pv) {
        bias_grad(pv, dy, {bp.outer, bp.C, bp.inner});
      } else {
        TensorLoc dv = buf(numel(vs));
        emit("AddGrad", {dy}, {dv},
             [bp](const StepArgs& a, const Parallel& par) { kernels::bias_backward(bp, a.in[0], a.out[0], par); });
        contribute(v, dv);
      }
    }
  } else if (op == "Relu" || op == "LeakyRelu") {
    if (!needs_grad(x0)) return;
    kernels::ActGradParams p;
    p.count = numel(shape(y));
    p.kind = op == "Relu" ? kernels::ActGradKind::kRelu : kernels::ActGradKind::kLeakyRelu;
    p.alpha = ctx(n).attr_float("alpha", 0.01f);
    TensorLoc dx = buf(p.count);
    emit(op + "Grad", {fwd_.at(y), dy}, {dx},
         [p](const StepArgs& a, const Parallel& par) { kernels::activation_backward(p, a.in[0], a.in[1], a.out[0], par); });
    contribute(x0, dx);
  } else if (op == "MaxPool" || op == "AveragePool") {
    if (!needs_grad(x0)) return;
    const bool mx = op == "MaxPool";
    const kernels::Pool2dParams p = pool_params(n, mx ? kernels::PoolKind::kMax : kernels::PoolKind::kAvg);
    TensorLoc dx = buf(numel(shape(x0)));
    if (mx) {
      emit(op + "Grad", {dy, saved_.at(y)}, {dx}, [p](const StepArgs& a, const Parallel& par) {
        kernels::maxpool2d_backward(p, a.in[0], reinterpret_cast<const int32_t*>(a.in[1]), a.out[0], par);
      });
    } else {
      emit(op + "Grad", {dy}, {dx},
           [p](const StepArgs& a, const Parallel& par) { kernels::avgpool2d_backward(p, a.in[0], a.out[0], par); });
    }
    contribute(x0, dx);
  } else if (op == "GlobalAveragePool") {
    if (!needs_grad(x0)) return;
    const Shape& x = shape(x0);
    kernels::GlobalPoolParams p;
    p.NC = static_cast<size_t>(x[0] * x[1]);
    p.HW = numel(x) / p.NC;
    TensorLoc dx = buf(numel(x));
    emit(op + "Grad", {dy}, {dx},
         [p](const StepArgs& a, const Parallel& par) { kernels::global_avgpool_backward(p, a.in[0], a.out[0], par); });
    contribute(x0, dx);
  } else if (op == "BatchNormalization") {
    if (!needs_grad(x0)) return;
    const Shape& x = shape(x0);
    kernels::ChannelAffineParams p;
    p.N = static_cast<size_t>(x[0]);
    p.C = static_cast<size_t>(x[1]);
    p.HW = numel(x) / (p.N * p.C);
    const float* sc = bn_.at(y);
    const size_t C = p.C;
    TensorLoc dx = buf(numel(x));
    emit(op + "Grad", {dy}, {dx}, [p, sc, C](const StepArgs& a, const Parallel& par) {
      kernels::channel_affine(p, a.in[0], sc, sc + 2 * C, a.out[0], par);  // dy * scale + 0
    });
    contribute(x0, dx);
  } else if (op == "LRN") {
    if (!needs_grad(x0)) return;
    OpContext c = ctx(n);
    const Shape& x = shape(x0);
    kernels::LrnParams p;
    p.N = static_cast<size_t>(x[0]);
    p.C = static_cast<size_t>(x[1]);
    p.HW = numel(x) / (p.N * p.C);
    p.size = static_cast<size_t>(c.attr_int("size", 1));
    p.alpha = c.attr_float("alpha", 1e-4f);
    p.beta = c.attr_float("beta", 0.75f);
    p.bias = c.attr_float("bias", 1.f);
    TensorLoc dx = buf(numel(x));
    emit(op + "Grad", {fwd_.at(x0), dy}, {dx},
         [p](const StepArgs& a, const Parallel& par) { kernels::lrn_backward(p, a.in[0], a.in[1], a.out[0], par); });
    contribute(x0, dx);
  } else if (op == "Dropout" && saved_.count(y)) {
    if (!needs_grad(x0)) return;
    const size_t cnt = numel(shape(y));
    TensorLoc dx = buf(cnt);
    emit(op + "Grad", {dy, saved_.at(y)}, {dx},
         [cnt](const StepArgs& a, const Parallel& par) { kernels::dropout_backward(cnt, a.in[0], a.in[1], a.out[0], par); });
    contribute(x0, dx);
  } else {  // views: Flatten, Reshape, Identity, Squeeze, Unsqueeze, inactive Dropout
    if (needs_grad(x0)) contribute(x0, dy);
  }
}

}  // namespace convoy::train
