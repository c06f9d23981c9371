// N-D Pad (see pad.h). Plain C++ (data movement). Output index i maps to source index
// s = i - pads_begin in each dimension; a negative pad makes that a crop. Reflect and edge are
// applied to the cropped input, as ONNX Runtime does (crop first, then pad): reflect maps
// s < 0 to -s and s >= n to 2(n-1) - s, edge clamps to [0, n-1]; constant writes `value`
// wherever some dimension falls outside [0, n).
//
// Work is done per output row (the innermost dimension): the outer indices pick the source
// row (or a constant row); within the row, the middle part is one memcpy and only the pads
// are handled element by element.
#include "kernels/pad.h"

#include <algorithm>
#include <cstring>

#include "kernels/dims_util.h"

namespace convoy::kernels {
namespace {

// Source index of output index i in one dimension of length n, or -1 (constant mode, outside).
int64_t source_index(int64_t i, int64_t begin, int64_t n, PadMode mode) {
  int64_t s = i - begin;
  if (s >= 0 && s < n) return s;
  switch (mode) {
    case PadMode::kConstant: return -1;
    case PadMode::kEdge: return s < 0 ? 0 : n - 1;
    case PadMode::kReflect:
      if (n == 1) return 0;
      // Repeat until inside; with pad < n one step suffices, the loop keeps it in bounds anyway.
      while (s < 0 || s >= n) s = s < 0 ? -s : 2 * (n - 1) - s;
      return s;
  }
  return -1;
}

}  // namespace

void pad(const PadParams& p, const float* in, float* out, const Parallel& par) {
  const size_t rank = p.out_shape.rank;
  int64_t count = 1;
  for (size_t k = 0; k < rank; ++k) count *= p.out_shape.d[k];
  if (count == 0) return;
  if (rank == 0) {
    out[0] = in[0];
    return;
  }
  int64_t in_strides[kMaxRank];
  int64_t st = 1;
  for (size_t k = rank; k-- > 0;) {
    in_strides[k] = st;
    st *= p.in_shape.d[k];
  }
  const size_t last = rank - 1;
  const int64_t W = p.out_shape.d[last], in_w = p.in_shape.d[last], begin_w = p.pads_begin.d[last];
  // Output columns [mid0, mid1) copy input columns [mid0 - begin_w, mid1 - begin_w).
  const int64_t mid0 = std::clamp<int64_t>(begin_w, 0, W), mid1 = std::clamp<int64_t>(begin_w + in_w, 0, W);
  const size_t rows = static_cast<size_t>(count / W);
  const detail::WorkSplit split(rows, static_cast<size_t>(W));
  auto task = [&](size_t t, size_t) {
    size_t r0, r1, c0, c1;
    split.range(t, rows, static_cast<size_t>(W), r0, r1, c0, c1);
    for (size_t r = r0; r < r1; ++r) {
      float* dst = out + static_cast<int64_t>(r) * W;
      // Source row: decompose r over the outer output dimensions.
      int64_t rem = static_cast<int64_t>(r), src_off = 0;
      bool outside = false;
      for (size_t k = last; k-- > 0;) {
        const int64_t i = rem % p.out_shape.d[k];
        rem /= p.out_shape.d[k];
        const int64_t s = source_index(i, p.pads_begin.d[k], p.in_shape.d[k], p.mode);
        if (s < 0) {
          outside = true;
          break;
        }
        src_off += s * in_strides[k];
      }
      const int64_t lo = static_cast<int64_t>(c0), hi = static_cast<int64_t>(c1);
      if (outside) {
        std::fill(dst + lo, dst + hi, p.value);
        continue;
      }
      const float* src = in + src_off;
      const int64_t m0 = std::clamp(mid0, lo, hi), m1 = std::clamp(mid1, m0, hi);
      for (int64_t i = lo; i < m0; ++i) {
        const int64_t s = source_index(i, begin_w, in_w, p.mode);
        dst[i] = s < 0 ? p.value : src[s];
      }
      if (m1 > m0) std::memcpy(dst + m0, src + (m0 - begin_w), static_cast<size_t>(m1 - m0) * sizeof(float));
      for (int64_t i = m1; i < hi; ++i) {
        const int64_t s = source_index(i, begin_w, in_w, p.mode);
        dst[i] = s < 0 ? p.value : src[s];
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
