// Graph passes: named functions of the IR, each returning whether it changed the graph.
// Their order lives in importer/pipeline.cpp.
#pragma once
#include "runtime/ir.h"

namespace convoy::passes {

// Identity and inference Dropout nodes are bypassed (consumers read their input).
bool remove_identity(Graph& g);
// Nodes whose inputs are all constants are evaluated now (with the runtime's own kernels).
bool fold_constants(Graph& g);
// Nodes none of whose outputs is used, and constants nothing reads, are removed.
bool eliminate_dead_nodes(Graph& g);
// Conv followed by inference BatchNormalization becomes one Conv with scaled weights and bias.
bool fold_conv_batchnorm(Graph& g);
// Add(Conv(x), y) becomes Conv(x, residual = y): the add happens in the conv epilogue.
bool fuse_residual_add(Graph& g);
// Conv/Gemm/BatchNormalization followed by Relu, LeakyRelu or Clip: the activation moves into
// the producer's epilogue (attributes _act, _act_alpha, _act_beta).
bool fuse_activation(Graph& g);

}  // namespace convoy::passes

namespace convoy::passes {

// FC-to-conv: the classifier head after the last Flatten/Reshape to [N, C*H*W] (through
// Gemm/MatMul+Add, elementwise activations, Dropout, Softmax) becomes convolutions with the
// same weights in NCHW flatten order: the first FC an HxW conv, later FCs 1x1 convs, a
// GlobalAveragePool feeding the head an AveragePool with the training-time window, Softmax on
// the channel axis. The input's H and W become dynamic. Shapes are inferred at the training
// size (static input dims, or metadata convoy.input_size). Returns false when the model is
// already fully convolutional; throws convoy::Error naming the node when the head cannot be
// converted exactly.
bool fc_to_conv(Graph& g);

// Training input size [H, W] of a single-image-input model (static dims or convoy.input_size).
std::vector<int64_t> training_size(const Graph& g);

}  // namespace convoy::passes
