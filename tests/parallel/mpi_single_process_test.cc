// Without an MPI launcher (a plain `herd serve`) the runtime makes no MPI call at all.
#include <gtest/gtest.h>

#include "engine/parallel/mpi_communicator.h"

namespace herd {
namespace {

TEST(MpiRuntime, WithoutMpirunNoMpiAndWorldSizeOne) {
  if (MpiRuntime::launched_by_mpi()) GTEST_SKIP() << "this test is for a plain process";
  MpiRuntime& rt = MpiRuntime::instance();
  EXPECT_FALSE(rt.active());
  EXPECT_EQ(rt.world_size(), 1);
  EXPECT_EQ(rt.world_rank(), 0);
  // MPI_Initialized may be called before MPI_Init: it tells nobody initialized MPI.
  EXPECT_FALSE(MpiRuntime::mpi_initialized());
  EXPECT_THROW(rt.world(), Error);
}

}  // namespace
}  // namespace herd
