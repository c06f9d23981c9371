// CPU hand-off probe of `convoy bench`: how long a cache line takes to go from one CPU to another
// and back. A thread pool's run hands each layer's activations from core to core, so this latency
// (~50 ns between cores sharing a last-level cache, 300+ ns across CCDs or sockets) tells how
// fast multi-threaded runs on this machine can be. A VM's vCPUs may move between such placements
// while it runs (the 2-vCPU CI machine does: ResNet-50 at 2 threads 35 ms in one, 49 in the
// other), so bench reports it next to every multi-threaded timing.
#pragma once
#include <cstddef>
#include <optional>
#include <string>

namespace convoy::cli {

struct HandoffReport {
  size_t pairs = 0;                 // CPU pairs measured: the first allowed CPU with each of the next ones
  double min_ns = 0, median_ns = 0, max_ns = 0;  // over the pairs, each pair's best of a few trials
};

// Ping-pong round trips between two threads pinned to the first CPU of this process's affinity
// set and to each of the next threads - 1 CPUs, best of 3 trials per pair. nullopt with fewer
// than two CPUs or threads, or when no trial of a pair ran its two threads together (other
// processes on those CPUs, a CPU quota below two: a trial that passes its 100 ms deadline is
// abandoned instead of waiting on the scheduler).
std::optional<HandoffReport> measure_handoff(size_t threads);

// "52 ns" for one pair, "min 50 / median 52 / max 330 ns over 15 CPU pairs" for several.
std::string handoff_summary(const HandoffReport& r);

}  // namespace convoy::cli
