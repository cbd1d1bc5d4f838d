// The /v1/files and /v1/batches routes (OpenAI's Files and Batch APIs) over a BatchService;
// with no --state-dir (service == nullptr) every such route answers 404 saying how to enable
// them.
#pragma once

#include <string>

#include "server/http_context.h"

namespace herd::server {

class BatchService;

bool is_batch_api_path(const std::string& path);
void handle_batch_api(HttpContext& ctx, BatchService* service, const HttpRequest& req,
                      HttpResponse& res);

}  // namespace herd::server
