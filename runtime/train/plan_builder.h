// The builder of a suffix training plan (train_plan.cpp: buffers, steps, gradient bookkeeping;
// train_ops.cpp: each op's forward and backward lowering). Internal to runtime/train/.
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

#include "kernels/bias_grad.h"
#include "kernels/conv2d.h"
#include "kernels/pool2d.h"
#include "runtime/error.h"
#include "runtime/op_context.h"
#include "runtime/planner.h"
#include "runtime/train/train_internal.h"

namespace convoy::train {

inline size_t numel(const Shape& s) {
  size_t n = 1;
  for (int64_t d : s) n *= static_cast<size_t>(d);
  return n;
}

// Shape `in` broadcast to `out` as [outer, C, inner] where `in` covers the C block (its other
// dims are 1). False when the broadcast is not of that form.
bool block_of(const Shape& in, const Shape& out, kernels::BiasGradParams* bp);

class PlanBuilder {
 public:
  PlanBuilder(const SplitModel& m, const std::map<std::string, PValue>& vals, bool train, size_t threads);

  TrainPlan build(const std::vector<Shape>& frontier_shapes);

 private:
  // ---------------------------------------------------------------- plan building blocks
  int new_buffer(size_t floats);
  TensorLoc buf(size_t floats);
  static TensorLoc cloc(const float* p) {
    TensorLoc l;
    l.cptr = p;
    return l;
  }
  void emit(const std::string& op, std::vector<TensorLoc> in, std::vector<TensorLoc> out, StepFn fn,
            size_t scratch_floats = 0);

  // ---------------------------------------------------------------- values
  const Shape& shape(const std::string& v) const;
  Param* param(const std::string& v) const;
  [[noreturn]] void node_fail(const std::string& reason) const { fail(str_cat(g_.where(*node_), ": ", reason)); }
  // Location of an input: a parameter, a constant, or a runtime value.
  TensorLoc in_loc(const std::string& v);
  bool is_const(const std::string& v) const;
  // A runtime value computed by the suffix (frontier values are frozen: no gradient).
  bool needs_grad(const std::string& v) const { return !v.empty() && produced_.count(v) != 0; }
  TensorLoc out_buf(const std::string& v);
  void alias(const std::string& out, const std::string& in);
  // Adds a gradient contribution for value v (write-once buffers: a sum is a new buffer).
  void contribute(const std::string& v, TensorLoc g);
  OpContext ctx(const Node& n);

  // ---------------------------------------------------------------- per-op parameters
  kernels::Conv2dParams conv_params(const Node& n);

  kernels::Pool2dParams pool_params(const Node& n, kernels::PoolKind kind);

  // Gemm/MatMul as Y[M,N] = alpha * X[M,K] * B + bias: B [K,N] (trans 0) or [N,K] (trans 1).
  struct Fc {
    size_t M = 0, N = 0, K = 0;
    bool tb = false;
    float alpha = 1.f, beta = 1.f;
    std::string bias;  // Gemm C (a constant vector or scalar), or ""
  };
  Fc fc_params(const Node& n);

  // ---------------------------------------------------------------- forward
  void forward(size_t k);

  // ---------------------------------------------------------------- backward
  void backward(size_t k);

  void bias_grad(Param* pb, TensorLoc dy, kernels::BiasGradParams bp, float scale = 1.f);

  const SplitModel& m_;
  const Graph& g_;
  const std::map<std::string, PValue>& vals_;
  const bool train_;
  const size_t threads_;
  Planner dummy_;  // OpContext needs one to read attributes; nothing is planned with it
  const Node* node_ = nullptr;
  TrainPlan tp_;
  std::map<std::string, Param*> params_;
  std::map<std::string, TensorLoc> fwd_, grad_, saved_;
  std::map<std::string, const float*> bn_;
  std::set<std::string> produced_;
  std::set<Param*> written_;
};

}  // namespace convoy::train
