// Runs a shell command (tests that drive the real `herd` binary) and returns its stdout; the
// raw wait status goes to *status (WIFEXITED / WEXITSTATUS read it).
#pragma once

#include <cstdio>
#include <memory>
#include <string>

namespace herd::testing {

inline std::string run_command(const std::string& cmd, int* status) {
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p.get())) > 0;) out.append(buf, n);
  *status = pclose(p.release());
  return out;
}

}  // namespace herd::testing
