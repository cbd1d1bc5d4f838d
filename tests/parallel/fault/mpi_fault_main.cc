// herd_mpi_fault MODE: a two-rank ping-pong that goes wrong on purpose, launched under mpirun
// by tests/parallel/mpi_fault_test.cc, which checks that the whole job ends quickly, with a
// failure status and a message naming the rank at fault.
//   ok    all rounds answered; exit 0
//   kill  rank 1 raises SIGKILL on itself in the middle of round 1 (after the ping, before
//         the pong): the launcher notices the dead rank and ends the job
//   hang  rank 1 stays alive but never answers round 1: rank 0's recv times out (500 ms), and
//         rank 0 ends the job with MpiRuntime::abort_job, as the engine does
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <string>

#include "engine/parallel/mpi_communicator.h"

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "ok";
  herd::MpiRuntime& rt = herd::MpiRuntime::instance();
  if (!rt.active() || rt.world_size() != 2) {
    std::fprintf(stderr, "herd_mpi_fault: run under mpirun -np 2\n");
    return 2;
  }
  herd::MpiCommunicator& c = rt.world();
  c.set_timeout_ms(mode == "hang" ? 500 : 20'000);
  try {
    for (int round = 0; round < 3; ++round) {
      if (c.rank() == 0) {
        c.send_bytes(std::vector<uint8_t>(100, uint8_t(round)), 1, 1);
        std::vector<uint8_t> pong = c.recv_bytes(1, 2);
        if (pong.size() != 100) herd::MpiRuntime::abort_job(4, "bad pong");
      } else {
        std::vector<uint8_t> ping = c.recv_bytes(0, 1);
        if (round == 1 && mode == "kill") std::raise(SIGKILL);
        if (round == 1 && mode == "hang") sleep(120);  // ended by rank 0's abort_job
        c.send_bytes(ping, 0, 2);
      }
    }
    c.barrier();
  } catch (const herd::CommError& e) {
    herd::MpiRuntime::abort_job(3, e.what());
  }
  if (c.rank() == 0) std::printf("herd_mpi_fault: all rounds answered\n");
  return 0;
}
