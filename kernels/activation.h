// Epilogue shared by the GEMM and convolution kernels: bias, residual add, activation.
#pragma once
#include <cstddef>
#include <cstdint>

namespace convoy::kernels {

enum class Activation : uint8_t { kNone, kRelu, kLeakyRelu, kClip };

struct Epilogue {
  // y = act(acc + bias + residual). Order: bias, then residual, then activation.
  const float* bias = nullptr;      // per output row (GEMM bias_per_row / conv output channel) or per column
  bool bias_per_row = true;         // GEMM only; conv bias is always per output channel
  const float* residual = nullptr;  // same layout as the output (GEMM: leading dim ldc); may be nullptr
  Activation act = Activation::kNone;
  float alpha = 0.f;                // LeakyRelu slope, or Clip min
  float beta = 0.f;                 // Clip max
};

}  // namespace convoy::kernels
