// Loop-nest helpers shared by the broadcasting and data-movement kernels (binary,
// strided_copy, pad): dimension simplification, an odometer over the outer dimensions and the
// split of the work into parallel tasks. Plain C++; no Highway.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/tensor_shape.h"

namespace convoy::kernels::detail {

// A loop nest over `shape` addressing up to three arrays (out, a, b / dst, src) with their own
// element strides. The last dimension is the innermost one.
struct LoopNest {
  static constexpr size_t kMaxArrays = 3;
  size_t rank = 0;
  size_t arrays = 0;
  int64_t shape[kMaxRank] = {};
  int64_t stride[kMaxArrays][kMaxRank] = {};

  int64_t count() const {
    int64_t n = 1;
    for (size_t k = 0; k < rank; ++k) n *= shape[k];
    return n;
  }
  int64_t inner() const { return shape[rank - 1]; }
  // Number of innermost rows (product of every dimension but the last).
  int64_t rows() const {
    int64_t n = 1;
    for (size_t k = 0; k + 1 < rank; ++k) n *= shape[k];
    return n;
  }
};

// Drops size-1 dimensions and merges each dimension into its inner neighbour when every array
// steps through the pair as through one dimension (stride[k] == stride[k+1] * shape[k+1]; this
// also merges runs of broadcast, stride-0, dimensions). Leaves at least one dimension.
inline void simplify(LoopNest& ln) {
  LoopNest r;
  r.arrays = ln.arrays;
  for (size_t k = 0; k < ln.rank; ++k) {
    if (ln.shape[k] == 1) continue;
    r.shape[r.rank] = ln.shape[k];
    for (size_t a = 0; a < ln.arrays; ++a) r.stride[a][r.rank] = ln.stride[a][k];
    ++r.rank;
  }
  if (r.rank == 0) {
    r.rank = 1;
    r.shape[0] = 1;
    for (size_t a = 0; a < r.arrays; ++a) r.stride[a][0] = 1;
    ln = r;
    return;
  }
  // Merge from the innermost dimension outwards.
  LoopNest m;
  m.arrays = r.arrays;
  m.rank = 1;
  size_t top = kMaxRank - 1;  // build in reverse at the end of the arrays
  m.shape[top] = r.shape[r.rank - 1];
  for (size_t a = 0; a < r.arrays; ++a) m.stride[a][top] = r.stride[a][r.rank - 1];
  for (size_t k = r.rank - 1; k-- > 0;) {
    bool mergeable = true;
    for (size_t a = 0; a < r.arrays; ++a)
      mergeable = mergeable && r.stride[a][k] == m.stride[a][top] * m.shape[top];
    if (mergeable) {
      m.shape[top] *= r.shape[k];
    } else {
      --top;
      ++m.rank;
      m.shape[top] = r.shape[k];
      for (size_t a = 0; a < r.arrays; ++a) m.stride[a][top] = r.stride[a][k];
    }
  }
  ln.rank = m.rank;
  for (size_t k = 0; k < m.rank; ++k) {
    ln.shape[k] = m.shape[top + k];
    for (size_t a = 0; a < m.arrays; ++a) ln.stride[a][k] = m.stride[a][top + k];
  }
}

// Odometer over the outer dimensions (all but the last) of a LoopNest, keeping the element
// offset of the current row in every array.
struct RowCursor {
  int64_t idx[kMaxRank] = {};
  int64_t off[LoopNest::kMaxArrays] = {};

  void seek(const LoopNest& ln, int64_t row) {
    for (size_t a = 0; a < ln.arrays; ++a) off[a] = 0;
    for (size_t k = ln.rank - 1; k-- > 0;) {
      idx[k] = row % ln.shape[k];
      row /= ln.shape[k];
      for (size_t a = 0; a < ln.arrays; ++a) off[a] += idx[k] * ln.stride[a][k];
    }
  }
  void next(const LoopNest& ln) {
    for (size_t k = ln.rank - 1; k-- > 0;) {
      ++idx[k];
      for (size_t a = 0; a < ln.arrays; ++a) off[a] += ln.stride[a][k];
      if (idx[k] < ln.shape[k]) return;
      for (size_t a = 0; a < ln.arrays; ++a) off[a] -= idx[k] * ln.stride[a][k];
      idx[k] = 0;
    }
  }
};

// Work below this many elements per task is not worth a task of its own.
inline constexpr size_t kMinTaskElems = size_t{1} << 14;

// Splits rows x inner elements into tasks of about kMinTaskElems: several short rows per task,
// or a long row cut into column chunks (a multiple of 64 elements, so every vector width
// divides it). The split depends only on the sizes, never on the thread count.
struct WorkSplit {
  size_t rows_per_task = 1, chunk = 1, chunks_per_row = 1, n_tasks = 0;

  WorkSplit(size_t rows, size_t inner, size_t min_elems = kMinTaskElems) {
    if (rows == 0 || inner == 0) return;
    chunk = inner > 2 * min_elems ? (min_elems + 63) / 64 * 64 : inner;
    chunks_per_row = (inner + chunk - 1) / chunk;
    rows_per_task = chunks_per_row > 1 ? 1 : std::max<size_t>(1, min_elems / inner);
    n_tasks = (rows + rows_per_task - 1) / rows_per_task * chunks_per_row;
  }
  // Rows [row_begin, row_end) and columns [col_begin, col_end) of `task`.
  void range(size_t task, size_t rows, size_t inner, size_t& row_begin, size_t& row_end, size_t& col_begin,
             size_t& col_end) const {
    const size_t block = task / chunks_per_row, c = task % chunks_per_row;
    row_begin = block * rows_per_task;
    row_end = std::min(rows, row_begin + rows_per_task);
    col_begin = c * chunk;
    col_end = std::min(inner, col_begin + chunk);
  }
};

}  // namespace convoy::kernels::detail
