// Short waits inside one pool run: a task waiting for work another running task has claimed and
// is finishing (conv2d's JoinedStage, Winograd's RunSync). Both avoid a second pool run, whose
// wake-up costs 20-40 us on this class of machine.
#pragma once
#include <cstddef>
#include <thread>

#include "hwy/cache_control.h"

namespace convoy::kernels {

// Returns once done() holds: spins with a pause for a while, then yields the core between polls
// (with more threads than cores the task being waited for may have been preempted).
template <class Done>
void spin_until(Done done) {
  constexpr size_t kSpins = 4096;
  for (size_t spins = 0; !done(); ++spins) {
    if (spins < kSpins) {
      hwy::Pause();
    } else {
      std::this_thread::yield();
    }
  }
}

}  // namespace convoy::kernels
