// multipart/form-data bodies (RFC 7578), as the openai clients send files.create: the parts'
// names, optional filenames and raw bytes. Only what an upload needs: no nested multiparts,
// no transfer encodings (clients send binary parts as is).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace herd::server {

struct FormPart {
  std::string name;
  std::optional<std::string> filename;
  std::string content_type;
  std::string data;
};

// The boundary of a "multipart/form-data; boundary=..." Content-Type; nullopt when the type
// is something else or names no boundary.
std::optional<std::string> multipart_boundary(std::string_view content_type);

// Splits `body` into its parts. Throws herd::InvalidArgument (param "file") when the body is
// not well-formed multipart with that boundary.
std::vector<FormPart> parse_multipart(std::string_view body, const std::string& boundary);

}  // namespace herd::server
