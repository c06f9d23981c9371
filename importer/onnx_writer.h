// Writes a Graph back to an ONNX file (convert, finetune export). Written to a temporary file
// in the target directory and renamed into place: the output appears whole or not at all.
#pragma once
#include <string>

#include "runtime/ir.h"

namespace convoy {

// The graph must not carry convoy-internal fusion attributes (write unfused graphs).
void write_onnx_file(const Graph& g, const std::string& path);

}  // namespace convoy
