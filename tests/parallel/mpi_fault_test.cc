// A rank that dies or hangs must end the whole job quickly with a message naming it, never
// leave the other ranks waiting. Each test launches `mpirun -np 2 herd_mpi_fault MODE` as a
// child process with a deadline, and reads its combined output.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct JobResult {
  bool finished = false;  // within the deadline
  int status = -1;        // exit status of mpirun, or 128 + signal
  std::string output;     // stdout and stderr of every rank and of mpirun
  double seconds = 0;
};

JobResult run_job(const std::string& mode, double deadline_s) {
  std::vector<std::string> args = {HERD_MPIEXEC, "-np", "2"};
  std::istringstream flags(HERD_MPIEXEC_FLAGS);
  for (std::string f; flags >> f;) args.push_back(f);
  args.push_back(HERD_MPI_FAULT_BINARY);
  args.push_back(mode);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  int fds[2];
  if (pipe(fds) != 0) return {};
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid == 0) {
    // Own process group: on a missed deadline the test kills mpirun and every rank at once.
    setpgid(0, 0);
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);  // containers and CI run as root
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    // Under ASan (the ranks inherit ASAN_OPTIONS): Open MPI's own leaks at exit are not ours;
    // see tests/parallel/lsan_openmpi.supp. Harmless without ASan.
    setenv("LSAN_OPTIONS", "suppressions=" HERD_LSAN_SUPPRESSIONS, 1);
    if (const char* asan = getenv("ASAN_OPTIONS"))
      setenv("ASAN_OPTIONS", (std::string(asan) + ":fast_unwind_on_malloc=0").c_str(), 1);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  JobResult res;
  const auto deadline = t0 + std::chrono::duration<double>(deadline_s);
  char buf[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fds[0], POLLIN, 0};
    if (poll(&p, 1, int(left.count())) <= 0) continue;
    const ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) {  // every writer (mpirun, the ranks) is gone
      res.finished = true;
      break;
    }
    res.output.append(buf, size_t(n));
  }
  close(fds[0]);
  if (!res.finished) kill(-pid, SIGKILL);
  int st = 0;
  waitpid(pid, &st, 0);
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  res.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return res;
}

TEST(MpiFault, HealthyJobExitsZero) {
  JobResult r = run_job("ok", 60);
  ASSERT_TRUE(r.finished) << r.output;
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("all rounds answered"), std::string::npos) << r.output;
}

TEST(MpiFault, KilledRankEndsTheJobNamingIt) {
  JobResult r = run_job("kill", 30);
  ASSERT_TRUE(r.finished) << "the job outlived 30 s after rank 1 died:\n" << r.output;
  EXPECT_NE(r.status, 0) << r.output;
  // Open MPI's launcher: "mpirun noticed that process rank 1 with PID ... exited on signal 9".
  EXPECT_NE(r.output.find("rank 1"), std::string::npos) << r.output;
}

TEST(MpiFault, SilentRankTimesOutAndRankZeroAbortsTheJob) {
  JobResult r = run_job("hang", 30);
  ASSERT_TRUE(r.finished) << "the job outlived 30 s with rank 1 silent:\n" << r.output;
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("herd: rank 0: recv_bytes with rank 1 (tag 2) got no answer within "
                          "500 ms"),
            std::string::npos)
      << r.output;
  // Rank 1 sleeps 120 s: only the abort ends it this soon.
  EXPECT_LT(r.seconds, 30.0);
}

}  // namespace
