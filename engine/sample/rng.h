// Counter-based random numbers for seeded sampling. A request's draws depend only on
// (seed, sample index, output position), never on what else shares the batch or on the order
// in which sequences are sampled, so a seeded request is reproducible under any batching, and
// a GPU sampler can produce the very same uniforms (Philox is what cuRAND's and PyTorch's
// counter-based generators use).
#pragma once

#include <array>
#include <cstdint>

namespace herd {

// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11):
// 10 rounds over a 128-bit counter with a 64-bit key.
inline std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> ctr,
                                             std::array<uint32_t, 2> key) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = uint64_t{kM0} * ctr[0];
    const uint64_t p1 = uint64_t{kM1} * ctr[2];
    const uint32_t hi0 = uint32_t(p0 >> 32), lo0 = uint32_t(p0);
    const uint32_t hi1 = uint32_t(p1 >> 32), lo1 = uint32_t(p1);
    ctr = {hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0};
    key[0] += kW0;
    key[1] += kW1;
  }
  return ctr;
}

// The uniform that decides the token at `position` (0-based index among the sample's output
// tokens) of sample `sample_index` of a request seeded with `seed`:
//   key     = {seed low 32 bits, seed high 32 bits}
//   counter = {position, sample_index, stream, 0}   (stream 0 = token choice)
//   u       = ((r[0] >> 5) * 2^26 + (r[1] >> 6)) * 2^-53, a double in [0, 1) with 53
//             random bits, r = philox4x32_10(counter, key).
inline double sampling_uniform(uint64_t seed, uint32_t sample_index, uint32_t position,
                               uint32_t stream = 0) {
  const auto r =
      philox4x32_10({position, sample_index, stream, 0u}, {uint32_t(seed), uint32_t(seed >> 32)});
  const uint64_t bits = (uint64_t{r[0] >> 5} << 26) | uint64_t{r[1] >> 6};
  return double(bits) * 0x1.0p-53;
}

// A fresh seed for a request that did not give one (drawn once, when the request is added;
// the engine stores it so that all of the request's samples use it).
uint64_t draw_random_seed();

}  // namespace herd
