// herd: one binary, many subcommands (see cli/command.h). Errors surface here as one line on
// stderr and exit status 1; usage errors exit 2.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "cli/command.h"
#include "engine/common/error.h"

namespace herd::cli {

namespace {
std::map<std::string, Command>& registry() {
  static std::map<std::string, Command> r;
  return r;
}
}  // namespace

bool register_command(Command c) {
  std::string name = c.name;
  registry()[name] = std::move(c);
  return true;
}

const std::map<std::string, Command>& commands() { return registry(); }

}  // namespace herd::cli

static void print_usage() {
  std::fprintf(stderr, "usage: herd <command> [flags]\n\ncommands:\n");
  for (const auto& [name, cmd] : herd::cli::commands())
    std::fprintf(stderr, "  %-16s %s\n", name.c_str(), cmd.usage.c_str());
}

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    print_usage();
    return argc < 2 ? 2 : 0;
  }
  const auto& cmds = herd::cli::commands();
  auto it = cmds.find(argv[1]);
  if (it == cmds.end()) {
    std::fprintf(stderr, "herd: unknown command '%s'\n", argv[1]);
    print_usage();
    return 2;
  }
  std::vector<std::string> args(argv + 2, argv + argc);
  try {
    return it->second.run(args);
  } catch (const herd::InvalidArgument& e) {
    std::fprintf(stderr, "herd %s: %s\nusage: herd %s %s\n", argv[1], e.what(), argv[1],
                 it->second.usage.c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "herd %s: error: %s\n", argv[1], e.what());
    return 1;
  }
}
