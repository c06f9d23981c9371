// Reads an ONNX ModelProto into convoy's Graph: initializers become constants (external data
// only from the model's own directory), nodes are topologically sorted, structural errors
// (dangling edges, cycles, bad tensors) are reported with the model and node.
#pragma once
#include <cstdint>
#include <span>
#include <string>

#include "runtime/ir.h"

namespace convoy {

inline constexpr int64_t kMinOpset = 7;
inline constexpr int64_t kMaxOpset = 17;

Graph read_onnx_file(const std::string& path);
// `name` is used in messages; external data is refused (there is no directory to resolve it in).
Graph read_onnx_bytes(std::span<const uint8_t> bytes, const std::string& name);

}  // namespace convoy
