// The table of supported ops: name, arity, plan function. Opsets 7-17 of the default domain;
// per-opset differences (Clip, Softmax, Squeeze, Slice, Pad...) are handled in each op.
#include <algorithm>
#include <iterator>

#include "runtime/op_context.h"
#include "runtime/ops/ops.h"

namespace convoy {
namespace {

constexpr int kVar = -1;

const OpDef kOps[] = {
    {"Add", 2, 2, 1, 1, ops::plan_add},
    {"AveragePool", 1, 1, 1, 1, ops::plan_average_pool},
    {"BatchNormalization", 5, 5, 1, 5, ops::plan_batch_norm},
    {"Cast", 1, 1, 1, 1, ops::plan_cast},
    {"Clip", 1, 3, 1, 1, ops::plan_clip},
    {"Concat", 1, kVar, 1, 1, ops::plan_concat},
    {"Constant", 0, 0, 1, 1, ops::plan_constant},
    {"ConstantOfShape", 1, 1, 1, 1, ops::plan_constant_of_shape},
    // Input #3 is convoy's fused residual (set by passes::fuse_residual_add).
    {"Conv", 2, 4, 1, 1, ops::plan_conv},
    {"Div", 2, 2, 1, 1, ops::plan_div},
    {"Dropout", 1, 3, 1, 2, ops::plan_dropout},
    {"Flatten", 1, 1, 1, 1, ops::plan_flatten},
    {"Gather", 2, 2, 1, 1, ops::plan_gather},
    {"Gemm", 2, 3, 1, 1, ops::plan_gemm},
    {"GlobalAveragePool", 1, 1, 1, 1, ops::plan_global_average_pool},
    {"GlobalMaxPool", 1, 1, 1, 1, ops::plan_global_max_pool},
    {"Identity", 1, 1, 1, 1, ops::plan_identity},
    {"LRN", 1, 1, 1, 1, ops::plan_lrn},
    {"LeakyRelu", 1, 1, 1, 1, ops::plan_leaky_relu},
    {"LogSoftmax", 1, 1, 1, 1, ops::plan_log_softmax},
    {"MatMul", 2, 2, 1, 1, ops::plan_matmul},
    {"MaxPool", 1, 1, 1, 2, ops::plan_max_pool},
    {"Mul", 2, 2, 1, 1, ops::plan_mul},
    {"Pad", 1, 4, 1, 1, ops::plan_pad},
    {"ReduceMean", 1, 2, 1, 1, ops::plan_reduce_mean},
    {"Relu", 1, 1, 1, 1, ops::plan_relu},
    {"Reshape", 1, 2, 1, 1, ops::plan_reshape},
    {"Shape", 1, 1, 1, 1, ops::plan_shape},
    {"Sigmoid", 1, 1, 1, 1, ops::plan_sigmoid},
    {"Slice", 1, 5, 1, 1, ops::plan_slice},
    {"Softmax", 1, 1, 1, 1, ops::plan_softmax},
    {"Squeeze", 1, 2, 1, 1, ops::plan_squeeze},
    {"Sub", 2, 2, 1, 1, ops::plan_sub},
    {"Sum", 1, kVar, 1, 1, ops::plan_sum},
    {"Tanh", 1, 1, 1, 1, ops::plan_tanh},
    {"Transpose", 1, 1, 1, 1, ops::plan_transpose},
    {"Unsqueeze", 1, 2, 1, 1, ops::plan_unsqueeze},
};

}  // namespace

const OpDef* find_op(const std::string& op_type, const std::string& domain) {
  if (!domain.empty() && domain != "ai.onnx") return nullptr;
  for (const OpDef& d : kOps)
    if (op_type == d.name) return &d;
  return nullptr;
}

std::vector<std::string> supported_ops() {
  std::vector<std::string> r;
  for (const OpDef& d : kOps) r.emplace_back(d.name);
  return r;
}

}  // namespace convoy
