#include "cli/flags.h"

#include <cerrno>
#include <cstdlib>

#include "engine/common/error.h"

namespace herd::cli {

bool is_help_flag(const std::string& arg) { return arg == "--help" || arg == "-h"; }

Flags::Flags(const std::vector<std::string>& args, const std::set<std::string>& value_flags,
             const std::set<std::string>& switches) {
  for (size_t i = 0; i < args.size(); ++i) {
    // vLLM's short spellings of the parallel sizes.
    const std::string a = args[i] == "-tp"   ? std::string("--tensor-parallel-size")
                          : args[i] == "-pp" ? std::string("--pipeline-parallel-size")
                                             : args[i];
    if (is_help_flag(a)) throw HelpRequested{};
    if (a.rfind("--", 0) != 0) {
      positional_.push_back(a);
      continue;
    }
    std::string name = a.substr(2);
    std::optional<std::string> inline_value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (switches.count(name)) {
      values_[name] = inline_value.value_or("1");
    } else if (value_flags.count(name)) {
      if (inline_value) {
        values_[name] = *inline_value;
      } else if (i + 1 < args.size()) {
        values_[name] = args[++i];
      } else {
        throw InvalidArgument(name, "flag --" + name + " needs a value");
      }
    } else {
      throw InvalidArgument(name, "unknown flag --" + name);
    }
  }
}

bool Flags::has(const std::string& name) const { return values_.count(name) > 0; }

std::string Flags::str(const std::string& name, const std::string& def) const {
  auto it = values_.find(name);
  return it == values_.end() ? def : it->second;
}

std::string Flags::required(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) throw InvalidArgument(name, "missing required flag --" + name);
  return it->second;
}

int64_t Flags::i64(const std::string& name, int64_t def) const {
  auto it = values_.find(name);
  if (it == values_.end()) return def;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(it->second.c_str(), &end, 10);
  if (errno != 0 || end == it->second.c_str() || *end != '\0')
    throw InvalidArgument(name, "flag --" + name + " wants an integer, got '" + it->second + "'");
  return v;
}

double Flags::f64(const std::string& name, double def) const {
  auto it = values_.find(name);
  if (it == values_.end()) return def;
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(it->second.c_str(), &end);
  if (errno != 0 || end == it->second.c_str() || *end != '\0')
    throw InvalidArgument(name, "flag --" + name + " wants a number, got '" + it->second + "'");
  return v;
}

}  // namespace herd::cli
