#include "engine/sample/rng.h"

#include <random>

namespace herd {

uint64_t draw_random_seed() {
  // random_device is the OS entropy source; a new one per call keeps this thread-safe, and
  // requests are added far too rarely for its cost to matter.
  std::random_device rd;
  return (uint64_t{rd()} << 32) | uint64_t{rd()};
}

}  // namespace herd
