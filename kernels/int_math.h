// Integer helpers of the kernels' work splits and buffer sizes.
#pragma once
#include <cstddef>

namespace convoy::kernels {

// ceil(a / b) and a rounded up to a multiple of b (b > 0).
constexpr size_t div_up(size_t a, size_t b) { return (a + b - 1) / b; }
constexpr size_t round_up(size_t a, size_t b) { return div_up(a, b) * b; }

}  // namespace convoy::kernels
