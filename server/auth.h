// API-key check: `Authorization: Bearer KEY` (HTTP) or `authorization` metadata (gRPC).
#pragma once

#include <string>
#include <string_view>

namespace herd::server {

// True when `header` is "Bearer <key>" (scheme case-insensitive) and the key matches. The
// comparison takes the same time wherever the first difference is.
bool bearer_matches(std::string_view header, std::string_view key);

// Routes that stay open without a key: /health always, /metrics when metrics_public.
bool route_is_public(std::string_view path, bool metrics_public);

}  // namespace herd::server
