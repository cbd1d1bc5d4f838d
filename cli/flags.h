// Minimal `--name value` / `--switch` parser for subcommands. Unknown flags, missing values and
// malformed numbers are herd::InvalidArgument errors naming the flag. `--help` or `-h` where a
// flag may stand (not as another flag's value) throws HelpRequested: main() prints the
// command's usage on stdout and exits 0.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace herd::cli {

// Not a std::exception: no error handler mistakes it for a failure.
struct HelpRequested {};

// True for the arguments that ask for help: "--help", "-h".
bool is_help_flag(const std::string& arg);

class Flags {
 public:
  // value_flags take a value; switches do not. Anything else is an error.
  Flags(const std::vector<std::string>& args, const std::set<std::string>& value_flags,
        const std::set<std::string>& switches = {});

  bool has(const std::string& name) const;
  std::string str(const std::string& name, const std::string& def) const;
  std::string required(const std::string& name) const;
  int64_t i64(const std::string& name, int64_t def) const;
  double f64(const std::string& name, double def) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

}  // namespace herd::cli
