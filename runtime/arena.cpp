#include <algorithm>
#include <numeric>

#include "runtime/planner.h"

namespace convoy {

namespace {
// Every buffer is 64-byte aligned and followed by one spare vector (64 bytes), so a kernel's
// masked tail access never leaves the arena.
size_t padded(size_t bytes) { return (bytes + kArenaAlign - 1) / kArenaAlign * kArenaAlign + kArenaAlign; }
}  // namespace

void assign_arena_offsets(Plan& plan) {
  auto& bufs = plan.buffers;
  std::vector<size_t> order(bufs.size());
  std::iota(order.begin(), order.end(), 0);
  // Largest first; ties by earlier start.
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (bufs[a].bytes != bufs[b].bytes) return bufs[a].bytes > bufs[b].bytes;
    return bufs[a].first < bufs[b].first;
  });
  std::vector<size_t> placed;
  size_t arena = 0;
  for (size_t idx : order) {
    Buffer& b = bufs[idx];
    const size_t size = padded(b.bytes);
    // Intervals already taken by buffers whose lifetimes overlap this one.
    std::vector<std::pair<size_t, size_t>> taken;
    for (size_t p : placed) {
      const Buffer& o = bufs[p];
      if (o.last < b.first || b.last < o.first) continue;
      taken.emplace_back(o.offset, o.offset + padded(o.bytes));
    }
    std::sort(taken.begin(), taken.end());
    // Best fit: the smallest gap that holds it, else the end.
    size_t best = SIZE_MAX, best_gap = SIZE_MAX, cursor = 0;
    for (const auto& [lo, hi] : taken) {
      if (lo > cursor && lo - cursor >= size && lo - cursor < best_gap) {
        best = cursor;
        best_gap = lo - cursor;
      }
      cursor = std::max(cursor, hi);
    }
    if (best == SIZE_MAX) best = cursor;
    b.offset = best;
    arena = std::max(arena, best + size);
    placed.push_back(idx);
  }
  plan.arena_bytes = arena;
  plan.intermediate_bytes = 0;
  for (const Buffer& b : bufs) plan.intermediate_bytes += padded(b.bytes);
  // Lower bound: the most bytes live at any one step.
  const int n = static_cast<int>(plan.steps.size());
  size_t bound = 0;
  for (int t = -1; t <= n; ++t) {
    size_t live = 0;
    for (const Buffer& b : bufs)
      if (b.first <= t && t <= b.last) live += padded(b.bytes);
    bound = std::max(bound, live);
  }
  plan.live_bound_bytes = bound;
}

}  // namespace convoy
