// Where and when a benchmark ran, for its results file.
#pragma once

#include <string>

namespace herd::bench {

std::string cpu_model();  // /proc/cpuinfo "model name", or "unknown"
int cpu_cores();          // logical CPUs this process may use
std::string date_now();   // local time as vLLM writes it: %Y%m%d-%H%M%S

}  // namespace herd::bench
