// General N-D strided copy (see strided_copy.h). Plain C++: the work is memory movement, which
// memcpy and the compiler's own vectorisation handle; Highway would add nothing here.
//
// The loop nest is put in decreasing order of destination stride (a copy may run its loops in
// any order), size-1 dimensions are dropped and dimensions contiguous for both sides merged.
// The innermost dimension then becomes a memcpy (stride 1 both sides), a fill (source stride
// 0) or a strided loop. When the source is strided in the inner dimension but contiguous in
// another (a transpose), the copy is done in square tiles so both sides stay in cache.
#include "kernels/strided_copy.h"

#include <algorithm>
#include <cstring>

#include "kernels/dims_util.h"

namespace convoy::kernels {
namespace {

constexpr int64_t kTile = 32;

template <class F>
void run_tasks(size_t n_tasks, const Parallel& par, const F& task) {
  if (n_tasks == 1) {
    task(0, 0);
  } else if (n_tasks > 1) {
    par.run(n_tasks, task);
  }
}

// dst[r*dr + c] = src[r + c*sc] for r < R, c < C, in kTile x kTile tiles.
void copy_tiled(const float* src, int64_t sc, float* dst, int64_t dr, int64_t r0, int64_t r1, int64_t C) {
  for (int64_t rt = r0; rt < r1; rt += kTile) {
    const int64_t re = std::min(r1, rt + kTile);
    for (int64_t ct = 0; ct < C; ct += kTile) {
      const int64_t ce = std::min(C, ct + kTile);
      for (int64_t r = rt; r < re; ++r)
        for (int64_t c = ct; c < ce; ++c) dst[r * dr + c] = src[r + c * sc];
    }
  }
}

void copy_row(const float* src, int64_t ss, float* dst, int64_t sd, int64_t n) {
  if (ss == 1 && sd == 1) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
  } else if (ss == 0 && sd == 1) {
    std::fill_n(dst, n, *src);
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i * sd] = src[i * ss];
  }
}

}  // namespace

void strided_copy(const StridedCopyParams& p, const float* src, float* dst, const Parallel& par) {
  detail::LoopNest ln;
  ln.rank = p.shape.rank;
  ln.arrays = 2;  // 0: dst, 1: src
  size_t order[kMaxRank];
  for (size_t k = 0; k < ln.rank; ++k) order[k] = k;
  std::stable_sort(order, order + ln.rank, [&](size_t x, size_t y) { return p.dst_strides.d[x] > p.dst_strides.d[y]; });
  for (size_t k = 0; k < ln.rank; ++k) {
    ln.shape[k] = p.shape.d[order[k]];
    ln.stride[0][k] = p.dst_strides.d[order[k]];
    ln.stride[1][k] = p.src_strides.d[order[k]];
  }
  if (ln.count() == 0) return;
  detail::simplify(ln);
  const size_t last = ln.rank - 1;

  // Transpose: source contiguous along some outer dimension t, strided along the inner one.
  size_t t = last;
  if (ln.stride[0][last] == 1 && ln.stride[1][last] != 1 && ln.stride[1][last] != 0)
    for (size_t k = 0; k < last; ++k)
      if (ln.stride[1][k] == 1) t = k;
  if (t != last && ln.shape[last] >= 4 && ln.shape[t] >= 4) {
    // Move dimension t next to the inner one; the planes are the remaining dimensions.
    detail::LoopNest planes = ln;
    size_t q = 0;
    for (size_t k = 0; k < last; ++k) {
      if (k == t) continue;
      planes.shape[q] = ln.shape[k];
      planes.stride[0][q] = ln.stride[0][k];
      planes.stride[1][q] = ln.stride[1][k];
      ++q;
    }
    planes.shape[q] = 1;  // dummy inner dimension: RowCursor walks dims [0, q)
    planes.rank = q + 1;
    const int64_t R = ln.shape[t], C = ln.shape[last], dr = ln.stride[0][t], sc = ln.stride[1][last];
    const size_t n_planes = static_cast<size_t>(planes.rows());
    const detail::WorkSplit split(n_planes, static_cast<size_t>(R),
                                  std::max<size_t>(kTile, detail::kMinTaskElems / static_cast<size_t>(C)));
    run_tasks(split.n_tasks, par, [&](size_t task, size_t) {
      size_t p0, p1, c0, c1;
      split.range(task, n_planes, static_cast<size_t>(R), p0, p1, c0, c1);
      detail::RowCursor cur;
      cur.seek(planes, static_cast<int64_t>(p0));
      for (size_t pl = p0; pl < p1; ++pl, cur.next(planes))
        copy_tiled(src + cur.off[1], sc, dst + cur.off[0], dr, static_cast<int64_t>(c0), static_cast<int64_t>(c1), C);
    });
    return;
  }

  const size_t rows = static_cast<size_t>(ln.rows()), inner = static_cast<size_t>(ln.inner());
  const int64_t sd = ln.stride[0][last], ss = ln.stride[1][last];
  const detail::WorkSplit split(rows, inner);
  run_tasks(split.n_tasks, par, [&](size_t task, size_t) {
    size_t r0, r1, c0, c1;
    split.range(task, rows, inner, r0, r1, c0, c1);
    detail::RowCursor cur;
    cur.seek(ln, static_cast<int64_t>(r0));
    const int64_t c = static_cast<int64_t>(c0), n = static_cast<int64_t>(c1 - c0);
    for (size_t r = r0; r < r1; ++r, cur.next(ln)) copy_row(src + cur.off[1] + c * ss, ss, dst + cur.off[0] + c * sd, sd, n);
  });
}

}  // namespace convoy::kernels
