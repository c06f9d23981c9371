// Conv (1-D and 2-D, groups, dilation, pads, auto_pad) with its fused bias/residual/activation.
#include <memory>

#include "kernels/binary.h"
#include "kernels/conv2d.h"
#include "kernels/conv_direct.h"
#include "kernels/space_to_depth.h"
#include "kernels/unary.h"
#include "kernels/winograd.h"
#include "runtime/ops/op_util.h"
#include "runtime/ops/ops.h"

namespace convoy::ops {

namespace {

// How plan_conv runs a Conv.
enum class Algo { kIm2col, kWinograd, kDirect, kWinogradS2d };

// Direct convolution (kernels/conv_direct.h) for few input channels, stride 1, group 1, when the
// output rows fill the vectors: measured against im2col at 1 thread (AVX-512, M = 64, Relu):
// 3x3 on 112x112 maps 1.51x (C = 1), 1.25x (C = 3), 1.13-1.19x (C = 4-16); 224x224 C = 3 1.51x
// (VGG-16 features.0 in the model: 2.93 -> 1.65-1.72 ms; with the kernel's 1-D Winograd path for
// KW = 3 on AVX-512, later, 1.31-1.38 ms); 5x5 on 112x112 1.16-1.29x; 7x7 on 224x224 (M = 32)
// 1.22x. Rows that waste vector lanes lost (before the 1-D Winograd path; not re-measured since):
// 3x3 on 56x56 (3.5 AVX-512 vectors) 0.94x, on 28x28 0.85x; 5x5 on 56x56 0.93-0.98x. Hence up
// to 15 input channels (the first conv of an image model has 1-4; Winograd takes 3x3 convs from
// C = 16) and at most 1/10 of the lanes of a 16-float row wasted.
constexpr size_t kDirectMaxC = 15;
bool use_direct(const kernels::Conv2dParams& p) {
  const size_t wasted = (p.OW + 15) / 16 * 16 - p.OW;
  return kernels::conv_direct_applicable(p) && p.C <= kDirectMaxC && wasted * 10 <= p.OW;
}

// Winograd on the space-to-depth rewriting of a strided conv (kernels/space_to_depth.h) when the
// rewritten conv is one Winograd takes (3x3, 4x4 or 5x5, >= 12 input and >= 16 output channels)
// and the rewriting adds at most half again the taps. Measured against im2col in the same minutes:
// AlexNet features.0 (11x11 stride 4, 3 -> 64, 55x55 output; 48 channels of 3x3, 432 taps for
// 363) 1.60 -> 0.94 ms in the model at 1 thread (88 -> 150 GFLOP/s in direct-conv terms; 0.78 ms
// alone, ~7% of it making D), 0.92 -> 0.60-0.63 ms at 2; the ResNet stem (7x7 stride 2, 3 -> 64,
// 112x112 output; 12 channels of 4x4, F(3x3, 4x4), 192 taps for 147) 2.45 -> 1.93-1.96 ms in
// ResNet-50 at 1 thread, alone 2.47 -> 1.87 (1 thread) and 1.37 -> 1.10 ms (2), its output
// transform (1444 tiles of 3x3) 36% of that. ResNet's 3x3 stride-2 convs would become 2x2
// kernels on 4x the channels (16 C taps for 9 C): those stay on im2col.
bool use_winograd_s2d(const kernels::Conv2dParams& p) {
  if (!kernels::space_to_depth_applicable(p)) return false;
  const kernels::Conv2dParams q = kernels::space_to_depth_params(p);
  return kernels::winograd_applicable(q) && q.C >= 12 && q.M >= 16 &&
         2 * q.C * q.KH * q.KW <= 3 * p.C * p.KH * p.KW;
}

}  // namespace

kernels::Activation fused_activation(const OpContext& c, float* alpha, float* beta) {
  const std::string act = c.attr_str("_act", "");
  *alpha = c.attr_float("_act_alpha", 0.f);
  *beta = c.attr_float("_act_beta", 0.f);
  if (act.empty()) return kernels::Activation::kNone;
  if (act == "Relu") return kernels::Activation::kRelu;
  if (act == "LeakyRelu") return kernels::Activation::kLeakyRelu;
  if (act == "Clip") return kernels::Activation::kClip;
  c.fail(str_cat("internal: unknown fused activation '", act, "'"));
}

kernels::Conv2dParams conv2d_params(const OpContext& c, Shape* out_shape) {
  c.require_float(0);
  const Shape& x = c.shape(0);
  const Shape& w = c.in(1).shape;
  c.require_float(1);
  if (x.size() != 3 && x.size() != 4)
    c.fail(str_cat("input rank ", x.size(), " not supported: convoy runs 1-D and 2-D convolutions (rank 3 or 4)"));
  if (w.size() != x.size()) c.fail(str_cat("weight shape ", shape_str(w), " does not match input rank ", x.size()));
  const size_t ns = x.size() - 2;
  const int64_t group = c.attr_int("group", 1);
  const int64_t C = x[1], M = w[0];
  if (group <= 0) c.fail(str_cat("group ", group, " must be positive"));
  if (C % group != 0) c.fail(str_cat("group ", group, " does not divide ", C, " input channels"));
  if (M % group != 0) c.fail(str_cat("group ", group, " does not divide ", M, " output channels"));
  if (w[1] * group != C)
    c.fail(str_cat("weight shape ", shape_str(w), " expects ", w[1] * group, " input channels, input has ", C));
  std::vector<int64_t> kernel(w.begin() + 2, w.end());
  const auto ks = c.attr_ints("kernel_shape", kernel);
  if (ks != kernel) c.fail(str_cat("kernel_shape ", shape_str(ks), " does not match weight shape ", shape_str(w)));
  const auto strides = c.attr_ints("strides", std::vector<int64_t>(ns, 1));
  const auto dil = c.attr_ints("dilations", std::vector<int64_t>(ns, 1));
  if (strides.size() != ns || dil.size() != ns) c.fail("strides/dilations have the wrong length");
  const Shape spatial(x.begin() + 2, x.end());
  const auto geo = spatial_geometry(c, spatial, kernel, strides, dil, false);

  kernels::Conv2dParams p;
  p.N = static_cast<size_t>(x[0]);
  p.C = static_cast<size_t>(C);
  p.M = static_cast<size_t>(M);
  p.group = static_cast<size_t>(group);
  const size_t h = ns == 2 ? 0 : SIZE_MAX;  // index of the H axis in the spatial lists
  const size_t wi = ns - 1;
  p.H = h == 0 ? static_cast<size_t>(spatial[0]) : 1;
  p.W = static_cast<size_t>(spatial[wi]);
  p.KH = h == 0 ? static_cast<size_t>(kernel[0]) : 1;
  p.KW = static_cast<size_t>(kernel[wi]);
  p.OH = h == 0 ? static_cast<size_t>(geo[0].out) : 1;
  p.OW = static_cast<size_t>(geo[wi].out);
  p.stride_h = h == 0 ? static_cast<size_t>(strides[0]) : 1;
  p.stride_w = static_cast<size_t>(strides[wi]);
  p.dil_h = h == 0 ? static_cast<size_t>(dil[0]) : 1;
  p.dil_w = static_cast<size_t>(dil[wi]);
  p.pad_top = h == 0 ? static_cast<size_t>(geo[0].pad_begin) : 0;
  p.pad_left = static_cast<size_t>(geo[wi].pad_begin);
  if (p.OH == 0 || p.OW == 0) c.fail("output would be empty");
  if (out_shape) {
    *out_shape = {x[0], M};
    for (const auto& g : geo) out_shape->push_back(g.out);
  }
  return p;
}

void plan_conv(OpContext& c) {
  Shape out_shape;
  kernels::Conv2dParams p = conv2d_params(c, &out_shape);
  const int64_t M = out_shape[1];
  float alpha = 0, beta = 0;
  p.ep.act = fused_activation(c, &alpha, &beta);
  p.ep.alpha = alpha;
  p.ep.beta = beta;
  std::vector<TensorLoc> ins = {c.loc(0), TensorLoc{}};
  const bool has_bias = c.has_input(2);
  if (has_bias) {
    c.require_float(2);
    if (c.shape(2) != Shape{M}) c.fail(str_cat("bias shape ", shape_str(c.shape(2)), " must be [", M, "]"));
  }
  // A fused residual of the output's shape is added in the epilogue; one that broadcasts (the
  // fusion pass cannot see shapes) is added by a separate step after the conv instead.
  const bool has_residual = c.has_input(3) && c.shape(3) == out_shape;
  const bool broadcast_residual = c.has_input(3) && !has_residual;
  if (broadcast_residual) {
    c.require_float(3);
    if (broadcast_shapes(c, c.shape(3), out_shape) != out_shape)
      c.fail(str_cat("residual ", shape_str(c.shape(3)), " cannot be broadcast to the output ", shape_str(out_shape)));
  }
  const kernels::Epilogue full_ep = p.ep;
  if (broadcast_residual) p.ep.act = kernels::Activation::kNone;

  // Winograd F(4x4,3x3) for 3x3 and F(2x2,5x5) for 5x5 stride-1 convs with enough channels to
  // fill its GEMMs (5x5: AlexNet features.3, C = 64, 27x27 maps: see kernels/winograd.h). Measured
  // against im2col (1 thread): 2.5-3.5x faster from C = 8-32 (M = 16-32, 28x28-56x56 maps) up to
  // VGG/ResNet's 512 channels, but slower on the first conv of an image model (C = 3: a K = 3
  // GEMM cannot pay for the transforms), which takes the direct kernel (use_direct). C >= 16 keeps
  // a margin; Winograd is chosen first, so lowering this bound takes convs from the direct kernel
  // too. Its packed weights are the raw weights rearranged, transformed per run (few tiles: inside
  // the GEMMs; many tiles: all at once into the step's scratch; kernels/winograd.h).
  const bool winograd = kernels::winograd_applicable(p) && p.C >= 16 && p.M >= 16;
  // Direct convolution for the first conv of image models: im2col + GEMM has a tiny K there
  // (C KH KW = 27 for 3 channels, 3x3); see use_direct.
  const bool direct = !winograd && use_direct(p);
  const bool s2d = !winograd && !direct && use_winograd_s2d(p);
  const Algo algo = winograd ? Algo::kWinograd : direct ? Algo::kDirect : s2d ? Algo::kWinogradS2d : Algo::kIm2col;
  // The stride-1 conv that the Winograd kernel runs on the space-to-depth input.
  const kernels::Conv2dParams ps = s2d ? kernels::space_to_depth_params(p) : p;
  const size_t packed_floats = algo == Algo::kWinograd || algo == Algo::kWinogradS2d
                                   ? kernels::winograd_packed_weight_floats(ps)
                               : algo == Algo::kDirect ? kernels::conv_direct_packed_weight_floats(p)
                                                       : kernels::conv2d_packed_weight_floats(p);
  // Every packing is a rearrangement of the weights (unpack gives them back bit for bit).
  const auto pack = [algo, ps](const kernels::Conv2dParams& q, const float* w, float* packed) {
    switch (algo) {
      case Algo::kWinograd:
        kernels::pack_winograd_weights(q, w, packed);
        break;
      case Algo::kWinogradS2d: {
        std::vector<float> ws(ps.M * ps.C * ps.KH * ps.KW);
        kernels::space_to_depth_weights(q, w, ws.data());
        kernels::pack_winograd_weights(ps, ws.data(), packed);
        break;
      }
      case Algo::kDirect:
        kernels::pack_conv_direct_weights(q, w, packed);
        break;
      case Algo::kIm2col:
        kernels::pack_conv2d_weights(q, w, packed);
        break;
    }
  };
  const auto unpack = [algo, ps](const kernels::Conv2dParams& q, const float* packed, float* w) {
    switch (algo) {
      case Algo::kWinograd:
        kernels::unpack_winograd_weights(q, packed, w);
        break;
      case Algo::kWinogradS2d: {
        std::vector<float> ws(ps.M * ps.C * ps.KH * ps.KW);
        kernels::unpack_winograd_weights(ps, packed, ws.data());
        kernels::space_to_depth_weights_back(q, ws.data(), w);
        break;
      }
      case Algo::kDirect:
        kernels::unpack_conv_direct_weights(q, packed, w);
        break;
      case Algo::kIm2col:
        kernels::unpack_conv2d_weights(q, packed, w);
        break;
    }
  };
  if (c.is_const(1) && algo == Algo::kIm2col && kernels::conv2d_packing_is_identity(p)) {
    ins[1] = c.loc(1);  // the model's weights, held once
  } else if (c.is_const(1)) {
    auto packed = std::make_shared<std::vector<float>>(packed_floats);
    pack(p, c.const_input(1, "weights").f32(), packed->data());
    // The model keeps only the packed copy (Winograd's is the raw weights in panels of 16 output
    // channels, transformed per run).
    ins[1] = c.keep_packed(1, std::move(packed), [p, unpack](const float* pk, float* w) { unpack(p, pk, w); });
  } else {
    TensorLoc packed = c.temp(packed_floats);
    c.emit("PackWeights", {c.loc(1)}, {packed},
           [p, pack](const StepArgs& a, const kernels::Parallel&) { pack(p, a.in[0], a.out[0]); });
    ins[1] = packed;
  }
  ins.push_back(has_bias ? c.loc(2) : TensorLoc{});
  ins.push_back(has_residual ? c.loc(3) : TensorLoc{});
  // Every conv kernel reads a residual element only just before writing the same output element,
  // so when this conv is the residual's last reader the output goes over it (ResNet-50 at batch
  // 8: arena 55.3 -> 40.4 MiB; the kernels' tests run every path so).
  TensorLoc out = has_residual ? c.set_tensor_over(0, out_shape, 3) : c.set_tensor(0, out_shape);
  // FLOPs in direct-convolution terms, whatever the algorithm.
  const double flops = 2.0 * static_cast<double>(p.N * p.M * p.OH * p.OW) * static_cast<double>(p.C / p.group * p.KH * p.KW);
  // Absent optional operands are passed as null pointers.
  std::vector<TensorLoc> step_in;
  for (const TensorLoc& l : ins) step_in.push_back(l);
  const bool bias = has_bias, residual = has_residual;
  // Space-to-depth: D first (whole 64 B lines: the Winograd scratch after it stays aligned).
  const size_t d_floats = s2d ? (kernels::space_to_depth_input_floats(p) + 15) / 16 * 16 : 0;
  const size_t scratch = algo == Algo::kWinograd ? kernels::winograd_scratch_floats(p, c.threads())
                         : algo == Algo::kWinogradS2d ? d_floats + kernels::winograd_scratch_floats(ps, c.threads())
                         : algo == Algo::kDirect      ? kernels::conv_direct_scratch_floats(p, c.threads())
                                                      : kernels::conv2d_scratch_floats(p, c.threads());
  Step& step = c.emit("Conv", step_in, {out},
                      [p, ps, d_floats, bias, residual, algo](const StepArgs& a, const kernels::Parallel& par) {
                        kernels::Conv2dParams q = p;
                        q.ep.bias = bias ? a.in[2] : nullptr;
                        q.ep.residual = residual ? a.in[3] : nullptr;
                        switch (algo) {
                          case Algo::kWinograd:
                            kernels::winograd_conv(q, a.in[0], a.in[1], a.out[0], a.scratch, par);
                            break;
                          case Algo::kDirect:
                            kernels::conv_direct(q, a.in[0], a.in[1], a.out[0], a.scratch, par);
                            break;
                          case Algo::kWinogradS2d: {
                            kernels::space_to_depth_input(p, a.in[0], a.scratch, par);
                            kernels::Conv2dParams qs = ps;
                            qs.ep = q.ep;
                            kernels::winograd_conv(qs, a.scratch, a.in[1], a.out[0], a.scratch + d_floats, par);
                            break;
                          }
                          case Algo::kIm2col:
                            kernels::conv2d(q, a.in[0], a.in[1], a.out[0], a.scratch, par);
                            break;
                        }
                      },
                      scratch, flops);
  // The algorithm shows in `convoy inspect` / `bench --per-op` next to the fused ops.
  const char* algo_name = algo == Algo::kWinograd       ? "winograd"
                          : algo == Algo::kWinogradS2d ? "s2d-winograd"
                          : algo == Algo::kDirect      ? "direct"
                                                       : nullptr;
  if (algo_name) step.fused = step.fused.empty() ? std::string(algo_name) : str_cat(algo_name, "+", step.fused);
  if (!broadcast_residual) return;
  kernels::BinaryParams add;
  add.op = kernels::BinaryOp::kAdd;
  add.out_shape = to_dims(c, out_shape);
  add.a_strides = to_dims(c, contiguous_strides(out_shape));
  add.b_strides = broadcast_strides(c.shape(3), out_shape);
  c.emit("Add", {out, c.loc(3)}, {out},
         [add](const StepArgs& a, const kernels::Parallel& par) { kernels::binary(add, a.in[0], a.in[1], a.out[0], par); });
  if (full_ep.act == kernels::Activation::kNone) return;
  kernels::UnaryParams act;
  act.count = static_cast<size_t>(checked_numel(out_shape, c.where()));
  act.op = full_ep.act == kernels::Activation::kRelu ? kernels::UnaryOp::kRelu
           : full_ep.act == kernels::Activation::kLeakyRelu ? kernels::UnaryOp::kLeakyRelu : kernels::UnaryOp::kClip;
  act.alpha = full_ep.alpha;
  act.beta = full_ep.beta;
  c.emit(c.attr_str("_act", ""), {out}, {out},
         [act](const StepArgs& a, const kernels::Parallel& par) { kernels::unary(act, a.in[0], a.out[0], par); });
}

}  // namespace convoy::ops
