// ONNX file -> optimised Graph: read, check every op is supported, then the passes in order.
#pragma once
#include <cstdint>
#include <span>
#include <string>

#include "runtime/ir.h"

namespace convoy {

// Fails listing ALL unsupported ops at once: "m.onnx: unsupported ops: Foo (node a), Bar (node b)".
void check_supported_ops(const Graph& g);
// The pass order: clean-up (identity, constants, dead nodes, Conv+BN), then fusion.
void optimize_graph(Graph& g);
// Clean-up passes then FC-to-conv, nothing fused (the graph stays writable as ONNX).
void prepare_fc_to_conv(Graph& g);

}  // namespace convoy
