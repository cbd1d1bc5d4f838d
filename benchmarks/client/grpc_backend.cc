#include "benchmarks/client/grpc_backend.h"

#include <grpcpp/grpcpp.h>

#include "engine/common/error.h"
#include "herd/v1/herd.grpc.pb.h"

namespace herd::bench {

namespace pb = ::herd::v1;

struct GrpcBackend::Impl {
  std::string target;
  std::string api_key;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::Herd::Stub> stub;

  void authorize(grpc::ClientContext& ctx) const {
    if (!api_key.empty()) ctx.AddMetadata("authorization", "Bearer " + api_key);
  }
  std::string describe(const grpc::Status& s) const {
    return "gRPC " + std::to_string(static_cast<int>(s.error_code())) + " from " + target + ": " +
           s.error_message();
  }
};

GrpcBackend::GrpcBackend(const std::string& target, std::string api_key)
    : impl_(std::make_unique<Impl>()) {
  if (target.empty() || target.find(':') == std::string::npos ||
      target.find("://") != std::string::npos)
    throw InvalidArgument("grpc", "--grpc wants HOST:PORT, got '" + target + "'");
  impl_->target = target;
  impl_->api_key = std::move(api_key);
  grpc::ChannelArguments args;
  // Replies of long prompts or outputs stay far below this, but the default 4 MiB is not a
  // limit a benchmark should trip over.
  args.SetMaxReceiveMessageSize(-1);
  impl_->channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  impl_->stub = pb::Herd::NewStub(impl_->channel);
}

GrpcBackend::~GrpcBackend() = default;

std::vector<int32_t> GrpcBackend::tokenize(const std::string& text) {
  grpc::ClientContext ctx;
  impl_->authorize(ctx);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  pb::TokenizeRequest req;
  req.set_text(text);
  req.set_add_bos(false);
  pb::TokenizeResponse res;
  grpc::Status s = impl_->stub->Tokenize(&ctx, req, &res);
  if (!s.ok()) throw Error("Tokenize failed: " + impl_->describe(s));
  return {res.ids().begin(), res.ids().end()};
}

std::string GrpcBackend::model_name() {
  grpc::ClientContext ctx;
  impl_->authorize(ctx);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  pb::ModelInfoResponse res;
  grpc::Status s = impl_->stub->ModelInfo(&ctx, pb::ModelInfoRequest(), &res);
  if (!s.ok()) throw Error("ModelInfo failed: " + impl_->describe(s));
  return res.model_name();
}

RequestOutput GrpcBackend::send(const BenchRequest& req) {
  pb::GenerateRequest g;
  if (!req.ids.empty())
    g.mutable_token_ids()->mutable_ids()->Add(req.ids.begin(), req.ids.end());
  else
    g.set_text(req.text);
  g.mutable_params()->set_max_tokens(req.output_len);
  g.mutable_params()->set_ignore_eos(true);
  g.mutable_params()->set_temperature(0.0);

  grpc::ClientContext ctx;
  impl_->authorize(ctx);
  const double start = now_s();
  StreamRecorder rec(start);
  auto reader = impl_->stub->Generate(&ctx, g);
  pb::GenerateResponse r;
  while (reader->Read(&r)) {
    const double t = now_s();
    if (r.token_ids_size() > 0 || !r.text().empty()) rec.on_content(t, r.text());
    if (r.has_usage()) rec.on_usage(r.usage().prompt_tokens(), r.usage().completion_tokens());
  }
  grpc::Status s = reader->Finish();
  const double end = now_s();
  if (!s.ok()) rec.on_error(impl_->describe(s));
  return rec.finish(end);
}

}  // namespace herd::bench
