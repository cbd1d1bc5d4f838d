// herd: one binary, many subcommands (see cli/command.h). Errors surface here as one line on
// stderr and exit status 1; usage errors exit 2. `herd --help`, `herd help [<command>]` and
// `herd <command> --help` print usage on stdout and exit 0.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/engine_flags.h"
#include "cli/flags.h"
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

namespace {

void print_usage(FILE* out) {
  std::fprintf(out,
               "usage: herd <command> [flags]\n"
               "       herd <command> --help    that command's flags\n\ncommands:\n");
  for (const auto& [name, cmd] : herd::cli::commands())
    std::fprintf(out, "  %-16s %s\n", name.c_str(), cmd.usage.c_str());
}

// The registered command named by args[first..]: "bench offline" before "bench".
using CommandIt = std::map<std::string, herd::cli::Command>::const_iterator;
CommandIt find_command(const std::vector<std::string>& args, size_t first) {
  const auto& cmds = herd::cli::commands();
  if (first >= args.size()) return cmds.end();
  if (first + 1 < args.size()) {
    auto sub = cmds.find(args[first] + " " + args[first + 1]);
    if (sub != cmds.end()) return sub;
  }
  return cmds.find(args[first]);
}

// `herd <command> --help`: the command's usage (and its subcommands, the engine flags it
// takes) on stdout.
int print_command_help(const herd::cli::Command& cmd) {
  std::printf("usage: herd %s %s\n", cmd.name.c_str(), cmd.usage.c_str());
  bool header = false;
  for (const auto& [name, sub] : herd::cli::commands()) {
    if (name.rfind(cmd.name + " ", 0) != 0) continue;
    if (!header) std::printf("\nsubcommands (herd %s <kind> --help for each):\n", cmd.name.c_str());
    header = true;
    std::printf("  %-16s %s\n", name.c_str() + cmd.name.size() + 1, sub.usage.c_str());
  }
  if (cmd.usage.find("[engine flags]") != std::string::npos)
    std::printf("\nengine flags: %s\n", herd::cli::engine_flags_usage());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> all(argv + 1, argv + argc);
  if (all.empty()) {
    print_usage(stderr);
    return 2;
  }
  if (herd::cli::is_help_flag(all[0]) || all[0] == "help") {
    if (all.size() > 1) {  // herd help <command>
      auto it = find_command(all, 1);
      if (it == herd::cli::commands().end()) {
        std::fprintf(stderr, "herd: unknown command '%s'\n", all[1].c_str());
        print_usage(stderr);
        return 2;
      }
      return print_command_help(it->second);
    }
    print_usage(stdout);
    return 0;
  }
  const auto& cmds = herd::cli::commands();
  auto it = cmds.find(all[0]);
  if (it == cmds.end()) {
    std::fprintf(stderr, "herd: unknown command '%s'\n", all[0].c_str());
    print_usage(stderr);
    return 2;
  }
  // The command whose help a --help shows: a registered "<command> <kind>" when one is named.
  CommandIt shown = find_command(all, 0);
  const size_t shown_words = shown->first == it->first ? 1 : 2;
  // --help right after the command answers before the command runs (and reads stdin, binds a
  // port, ...); one further on is found by the command's Flags parser (HelpRequested), which
  // knows which arguments are values: `--prompt --help` is a prompt.
  if (all.size() > shown_words && herd::cli::is_help_flag(all[shown_words]))
    return print_command_help(shown->second);
  std::vector<std::string> args(all.begin() + 1, all.end());
  try {
    return it->second.run(args);
  } catch (const herd::cli::HelpRequested&) {
    return print_command_help(shown->second);
  } catch (const herd::InvalidArgument& e) {
    std::fprintf(stderr, "herd %s: %s\nusage: herd %s %s\n", argv[1], e.what(),
                 shown->first.c_str(), shown->second.usage.c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "herd %s: error: %s\n", argv[1], e.what());
    return 1;
  }
}
