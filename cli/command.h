// Subcommands of the `herd` binary. Each cli/cmd_*.cc registers itself with HERD_COMMAND so
// that adding a command never touches main.cc.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace herd::cli {

struct Command {
  std::string name;
  std::string usage;  // one line: flags
  std::function<int(const std::vector<std::string>& args)> run;
};

bool register_command(Command c);
const std::map<std::string, Command>& commands();

}  // namespace herd::cli

#define HERD_CONCAT_INNER(a, b) a##b
#define HERD_CONCAT(a, b) HERD_CONCAT_INNER(a, b)
#define HERD_COMMAND(NAME, USAGE, FN) \
  static const bool HERD_CONCAT(herd_cmd_registered_, __LINE__) = \
      ::herd::cli::register_command({NAME, USAGE, FN})
