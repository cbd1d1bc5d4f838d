// Helpers shared by the benchmark programs: timing, the machine line every result carries, and
// the streaming-read bandwidth that is the ceiling of memory-bound decode.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "hwy/targets.h"
#include "kernels/cpu/thread_pool.h"

namespace herd::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

inline std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown CPU";
}

// The SIMD target Highway's dynamic dispatch picks on this machine (the best one compiled).
inline const char* simd_target() {
  return hwy::TargetName(hwy::SupportedAndGeneratedTargets().front());
}

inline std::string utc_date() {
  const std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  return buf;
}

// The first three fields of /proc/loadavg (1, 5 and 15 minutes): other work on the machine
// shows up here, and a figure taken under load says so.
inline std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return in ? a + " " + b + " " + c : "unknown";
}

// "command: ..." and "machine: ..." lines, so that a pasted result says how it was made.
inline void print_command_and_machine(int argc, char** argv, int threads) {
  std::printf("command:");
  for (int i = 0; i < argc; ++i) std::printf(" %s", argv[i]);
  std::printf("\nmachine: %s, %u hardware threads, %d threads used, SIMD target %s\n",
              cpu_model().c_str(), std::max(1u, std::thread::hardware_concurrency()), threads,
              simd_target());
}

// A buffer for read_pass(), filled from the pool's threads so that every page is mapped before
// anything is timed.
inline std::vector<uint64_t> make_read_buffer(cpu::ThreadPool& pool, size_t bytes) {
  std::vector<uint64_t> buffer(bytes / 64 * 64 / 8);
  pool.parallel_for(64, [&](int64_t t, int) {
    const size_t per = buffer.size() / 64;
    for (size_t i = size_t(t) * per; i < (t == 63 ? buffer.size() : size_t(t + 1) * per); ++i)
      buffer[i] = i;
  });
  return buffer;
}

// One streaming read of `bytes` with the pool, in GB/s: each task sums a contiguous 8 MiB
// chunk as 64-bit integers (integer adds vectorize without reassociation worries).
inline double read_pass(cpu::ThreadPool& pool, const uint64_t* data, size_t bytes) {
  const size_t words = bytes / 8, chunk = (8u << 20) / 8;
  const int64_t tasks = int64_t((words + chunk - 1) / chunk);
  std::vector<uint64_t> sums(static_cast<size_t>(tasks));
  const auto t0 = Clock::now();
  pool.parallel_for(tasks, [&](int64_t t, int) {
    const uint64_t* p = data + size_t(t) * chunk;
    const size_t n = std::min(chunk, words - size_t(t) * chunk);
    uint64_t s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (size_t i = 0; i + 8 <= n; i += 8)
      for (int j = 0; j < 8; ++j) s[j] += p[i + size_t(j)];
    sums[size_t(t)] = s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
  });
  const double gbps = double(bytes) / seconds_since(t0) / 1e9;
  uint64_t total = 0;
  for (uint64_t v : sums) total += v;
  if (total == 42) std::printf(" ");  // keeps the sums observable
  return gbps;
}

}  // namespace herd::bench
