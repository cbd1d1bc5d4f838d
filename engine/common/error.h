// herd reports every user-facing failure (bad checkpoint, bad request field, bad CLI flag) as a
// herd::Error whose message names the file / tensor / field at fault. Callers at the edge (CLI,
// server) catch it and turn it into an exit status or an HTTP/gRPC error; nothing below them
// prints or exits.
#pragma once

#include <stdexcept>
#include <string>

namespace herd {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// An error caused by a request's parameters: `param` names the offending field (OpenAI's
// error.param), so the server can answer 400 with it.
class InvalidArgument : public Error {
 public:
  InvalidArgument(std::string param, const std::string& message)
      : Error(message), param_(std::move(param)) {}
  const std::string& param() const { return param_; }

 private:
  std::string param_;
};

}  // namespace herd
