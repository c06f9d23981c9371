// Gather along one axis with constant indices: in viewed as [outer, axis_len, inner],
// out [outer, n_indices, inner], out[o, j, i] = in[o, indices[j], i]. Indices are already
// normalised to [0, axis_len) by the planner.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/parallel.h"

namespace convoy::kernels {

struct GatherParams {
  size_t outer = 1, axis_len = 0, inner = 1;
  size_t n_indices = 0;
};
void gather(const GatherParams& p, const float* in, const int64_t* indices, float* out, const Parallel& par);

}  // namespace convoy::kernels
