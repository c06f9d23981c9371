// Gather along one axis with constant indices (see gather.h). Plain C++ (data movement): each
// (outer, index) pair copies one run of `inner` contiguous floats.
#include "kernels/gather.h"

#include <algorithm>
#include <cstring>

#include "kernels/dims_util.h"

namespace convoy::kernels {

void gather(const GatherParams& p, const float* in, const int64_t* indices, float* out, const Parallel& par) {
  const size_t rows = p.outer * p.n_indices, inner = p.inner;
  if (rows == 0 || inner == 0) return;
  const detail::WorkSplit split(rows, inner);
  auto task = [&](size_t t, size_t) {
    size_t r0, r1, c0, c1;
    split.range(t, rows, inner, r0, r1, c0, c1);
    for (size_t r = r0; r < r1; ++r) {
      const size_t o = r / p.n_indices, j = r % p.n_indices;
      const float* src = in + (o * p.axis_len + static_cast<size_t>(indices[j])) * inner;
      float* dst = out + r * inner;
      if (c1 - c0 == 1) {
        dst[c0] = src[c0];
      } else {
        std::memcpy(dst + c0, src + c0, (c1 - c0) * sizeof(float));
      }
    }
  };
  if (split.n_tasks == 1) {
    task(0, 0);
  } else {
    par.run(split.n_tasks, task);
  }
}

}  // namespace convoy::kernels
