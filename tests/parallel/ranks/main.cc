// main of herd_mpi_tests: started by mpirun, one process per rank. Rank 0 prints GoogleTest's
// usual report; the other ranks print only their failures (prefixed with the rank), so a log
// of 4 ranks stays readable. The exit status is non-zero on every rank if any rank failed.
#include <gtest/gtest.h>

#include <cstdio>

#include "engine/parallel/mpi_communicator.h"

namespace {

class FailurePrinter : public testing::EmptyTestEventListener {
 public:
  explicit FailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const testing::TestPartResult& r) override {
    if (!r.failed()) return;
    std::fprintf(stderr, "[rank %d] %s:%d: %s\n", rank_, r.file_name() ? r.file_name() : "?",
                 r.line_number(), r.summary());
  }

 private:
  int rank_;
};

}  // namespace

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  if (!herd::MpiRuntime::launched_by_mpi()) {
    std::fprintf(stderr, "herd_mpi_tests: run under mpirun (e.g. mpirun -np 2 %s)\n", argv[0]);
    return 2;
  }
  herd::MpiRuntime& rt = herd::MpiRuntime::instance();
  // A rank that fails an assertion skips the rest of its test and meets the others in a
  // different collective; a short timeout turns that into failures instead of a long hang.
  rt.world().set_timeout_ms(30'000);
  if (rt.world_rank() != 0) {
    testing::TestEventListeners& ls = testing::UnitTest::GetInstance()->listeners();
    delete ls.Release(ls.default_result_printer());
    ls.Append(new FailurePrinter(rt.world_rank()));
  }
  int32_t failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  try {
    rt.world().all_reduce_sum(&failed, 1, herd::DType::kI32);
  } catch (const herd::CommError& e) {
    herd::MpiRuntime::abort_job(1, e.what());
  }
  return failed ? 1 : 0;
}
