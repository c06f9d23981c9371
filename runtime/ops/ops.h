// Plan functions of every op convoy supports (registered in runtime/op_registry.cpp).
#pragma once
#include "kernels/activation.h"
#include "kernels/conv2d.h"
#include "kernels/pool2d.h"
#include "runtime/op_context.h"

namespace convoy::ops {

// Fused epilogue activation recorded on a node by passes (attributes _act, _act_alpha, _act_beta).
kernels::Activation fused_activation(const OpContext& c, float* alpha, float* beta);

// Kernel parameters of a Conv / MaxPool / AveragePool node (1-D or 2-D, inputs' shapes known):
// validates attributes and shapes (failing through c) and, with out_shape, gives the output
// shape. Shared by the plan functions and the training add-on's lowering. The conv epilogue
// is left empty.
kernels::Conv2dParams conv2d_params(const OpContext& c, Shape* out_shape);
kernels::Pool2dParams pool2d_params(const OpContext& c, kernels::PoolKind kind, Shape* out_shape);

void plan_relu(OpContext& c);
void plan_leaky_relu(OpContext& c);
void plan_clip(OpContext& c);
void plan_sigmoid(OpContext& c);
void plan_tanh(OpContext& c);
void plan_add(OpContext& c);
void plan_sub(OpContext& c);
void plan_mul(OpContext& c);
void plan_div(OpContext& c);
void plan_sum(OpContext& c);
void plan_conv(OpContext& c);
void plan_max_pool(OpContext& c);
void plan_average_pool(OpContext& c);
void plan_global_average_pool(OpContext& c);
void plan_global_max_pool(OpContext& c);
void plan_lrn(OpContext& c);
void plan_batch_norm(OpContext& c);
void plan_softmax(OpContext& c);
void plan_log_softmax(OpContext& c);
void plan_gemm(OpContext& c);
void plan_matmul(OpContext& c);
void plan_flatten(OpContext& c);
void plan_reshape(OpContext& c);
void plan_squeeze(OpContext& c);
void plan_unsqueeze(OpContext& c);
void plan_identity(OpContext& c);
void plan_dropout(OpContext& c);
void plan_cast(OpContext& c);
void plan_shape(OpContext& c);
void plan_constant(OpContext& c);
void plan_constant_of_shape(OpContext& c);
void plan_transpose(OpContext& c);
void plan_concat(OpContext& c);
void plan_slice(OpContext& c);
void plan_gather(OpContext& c);
void plan_pad(OpContext& c);
void plan_reduce_mean(OpContext& c);

}  // namespace convoy::ops
