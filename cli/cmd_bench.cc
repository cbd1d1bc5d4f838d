// herd bench <kind>: dispatches to the benchmark commands registered as "bench <kind>"
// (cmd_bench_offline.cc, cmd_bench_serve.cc), so each benchmark stays in its own file.
#include <cstdio>

#include "cli/command.h"

namespace herd::cli {
namespace {

int run_bench(const std::vector<std::string>& args) {
  const auto& cmds = commands();
  auto it = args.empty() ? cmds.end() : cmds.find("bench " + args[0]);
  if (it == cmds.end()) {
    std::fprintf(stderr, "usage: herd bench <kind> [flags]\n\nkinds:\n");
    for (const auto& [name, cmd] : cmds)
      if (name.rfind("bench ", 0) == 0)
        std::fprintf(stderr, "  %-16s %s\n", name.c_str() + 6, cmd.usage.c_str());
    return 2;
  }
  return it->second.run(std::vector<std::string>(args.begin() + 1, args.end()));
}

HERD_COMMAND("bench", "<offline|serve> [flags]   (herd bench with no kind lists them)", run_bench);

}  // namespace
}  // namespace herd::cli
