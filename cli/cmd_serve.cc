// `herd serve`: the OpenAI-compatible HTTP server (and gRPC, when built in) over one Engine.
// SIGINT/SIGTERM drain gracefully: stop accepting, let in-flight requests finish until
// --shutdown-timeout, abort the rest, exit 0. A second signal cuts the drain short.
// An engine that turns unhealthy (a step failed on the backend: see Engine::health) is
// noticed within kHealthPollMs: the server drains the same way (the engine has already ended
// every live request with an error) and exits with status kExitEngineFailed (3), so that an
// orchestrator restarts it. Test hook: HERD_TEST_FAIL_STEP_AFTER=N in the environment makes
// every engine step after N fail as a device fault would (tests/cli/serve_engine_fault.sh).
#ifdef HERD_HAVE_SERVER

#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <thread>

#include "cli/command.h"
#include "cli/engine_flags.h"
#include "cli/flags.h"
#include "engine/api/engine.h"
#include "engine/api/parallel_engine.h"
#include "engine/common/error.h"
#include "server/engine_client.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/request_log.h"
#include "server/server_options.h"
#ifdef HERD_HAVE_GRPC
#include "server/grpc_server.h"
#endif

namespace herd::cli {
namespace {

constexpr const char* kUsage =
    "--model DIR [--host 127.0.0.1] [--port 8000] [--grpc-port 50051 (-1: off)] "
    "[--api-key KEY | env HERD_API_KEY] [--served-model-name NAME] [--metrics-public] "
    "[--max-body-bytes N] [--shutdown-timeout SEC] [--max-connections N] [--http-threads N] "
    "[--http-workers N] [--state-dir DIR (enables /v1/files, /v1/batches)] "
    "[--batch-max-in-flight N (32)] [--batch-expiry SEC (86400)] [--header-timeout SEC] "
    "[--body-timeout SEC] "
    "[--keep-alive-timeout SEC] "
    "[--kv-cache-gb GB] "
    "[--max-num-seqs N] [--max-num-batched-tokens N] [--max-model-len N] [--block-size N] "
    "[--policy reserve|optimistic] [--no-prefix-caching] [--threads N] [--max-waiting N] "
    "[--device cpu|cuda|auto] [--prefix-cache-salt STR (default: random per process)] "
    "[--long-prefill-token-threshold N (-1 auto, 0 off)] "
    "[--tensor-parallel-size|-tp T] [--pipeline-parallel-size|-pp P] [--micro-batches M] "
    "[--comm-timeout SEC] (T*P > 1: mpirun -np T*P herd serve ...)";

constexpr int kHealthPollMs = 200;
constexpr int kExitEngineFailed = 3;

int int_flag(const Flags& f, const std::string& name, int64_t def, int64_t lo, int64_t hi) {
  int64_t v = f.i64(name, def);
  if (v < lo || v > hi)
    throw InvalidArgument(name, "flag --" + name + " must be between " + std::to_string(lo) +
                                    " and " + std::to_string(hi));
  return static_cast<int>(v);
}

double seconds_flag(const Flags& f, const std::string& name, double def) {
  double v = f.f64(name, def);
  if (!(v > 0) || v > 86400)
    throw InvalidArgument(name, "flag --" + name + " must be > 0 and <= 86400 seconds");
  return v;
}

EngineOptions engine_options(const Flags& f) {
  EngineOptions o;
  o.model_dir = f.required("model");
  o.device = f.str("device", o.device);
  o.threads = int_flag(f, "threads", o.threads, 0, 4096);
  o.kv_cache_gb = f.f64("kv-cache-gb", o.kv_cache_gb);
  if (!(o.kv_cache_gb > 0)) throw InvalidArgument("kv-cache-gb", "flag --kv-cache-gb must be > 0");
  o.block_size = int_flag(f, "block-size", o.block_size, 1, 1024);
  o.max_num_seqs = int_flag(f, "max-num-seqs", o.max_num_seqs, 1, 1 << 20);
  o.max_num_batched_tokens =
      int_flag(f, "max-num-batched-tokens", o.max_num_batched_tokens, 1, 1 << 24);
  o.max_model_len = int_flag(f, "max-model-len", o.max_model_len, 0, 1 << 24);
  o.max_waiting = int_flag(f, "max-waiting", o.max_waiting, 0, 1 << 24);
  o.enable_prefix_caching = !f.has("no-prefix-caching");
  if (f.has("prefix-cache-salt")) o.cache_salt = f.str("prefix-cache-salt", "");
  o.long_prefill_token_threshold =
      int_flag(f, "long-prefill-token-threshold", o.long_prefill_token_threshold, -1, 1 << 24);
  if (const char* fail = std::getenv("HERD_TEST_FAIL_STEP_AFTER")) {
    char* end = nullptr;
    o.test_fail_step_after = std::strtoll(fail, &end, 10);
    if (*fail == '\0' || *end != '\0' || o.test_fail_step_after < 0)
      throw InvalidArgument("HERD_TEST_FAIL_STEP_AFTER",
                            "HERD_TEST_FAIL_STEP_AFTER must be a step count >= 0");
    std::fprintf(stderr,
                 "herd serve: test hook HERD_TEST_FAIL_STEP_AFTER=%lld: engine steps "
                 "after that fail as a device fault would\n",
                 (long long)o.test_fail_step_after);
  }
  std::string policy = f.str("policy", "optimistic");
  if (policy == "reserve")
    o.policy = AdmissionPolicy::kReserve;
  else if (policy == "optimistic")
    o.policy = AdmissionPolicy::kOptimistic;
  else
    throw InvalidArgument("policy", "flag --policy must be reserve or optimistic");
  parallel_options_from_flags(f, o);
  quantization_from_flags(f, o);
  return o;
}

server::ServerOptions server_options(const Flags& f, const std::string& model_dir) {
  server::ServerOptions o;
  o.host = f.str("host", o.host);
  o.port = int_flag(f, "port", o.port, 0, 65535);
  o.grpc_port = int_flag(f, "grpc-port", o.grpc_port, -1, 65535);
  if (f.has("api-key")) {
    o.api_key = f.str("api-key", "");
    // An empty key would silently turn authentication off: refuse it.
    if (o.api_key.empty())
      throw InvalidArgument("api-key",
                            "flag --api-key is empty; give a non-empty key, or leave the flag "
                            "out to serve without authentication");
  } else if (const char* env = std::getenv("HERD_API_KEY")) {
    o.api_key = env;
    if (o.api_key.empty())
      throw InvalidArgument("api-key",
                            "HERD_API_KEY is set but empty; give a non-empty key, or unset it "
                            "to serve without authentication");
  }
  o.served_model_name = f.str("served-model-name", server::default_model_name(model_dir));
  o.metrics_public = f.has("metrics-public");
  o.max_body_bytes =
      static_cast<size_t>(f.i64("max-body-bytes", static_cast<int64_t>(o.max_body_bytes)));
  o.shutdown_timeout_s = f.f64("shutdown-timeout", o.shutdown_timeout_s);
  if (o.shutdown_timeout_s < 0)
    throw InvalidArgument("shutdown-timeout", "flag --shutdown-timeout must be >= 0");
  o.max_connections = int_flag(f, "max-connections", o.max_connections, 1, 1 << 20);
  o.http_threads = int_flag(f, "http-threads", o.http_threads, 1, 256);
  o.http_workers = int_flag(f, "http-workers", o.http_workers, 1, 1024);
  o.header_timeout_s = seconds_flag(f, "header-timeout", o.header_timeout_s);
  o.body_timeout_s = seconds_flag(f, "body-timeout", o.body_timeout_s);
  o.keep_alive_timeout_s = seconds_flag(f, "keep-alive-timeout", o.keep_alive_timeout_s);
  o.state_dir = f.str("state-dir", "");
  o.batch_max_in_flight = int_flag(f, "batch-max-in-flight", o.batch_max_in_flight, 1, 1 << 20);
  o.batch_expiry_s = int_flag(f, "batch-expiry", int(o.batch_expiry_s), 1, 366 * 24 * 3600);
  return o;
}

int run_serve(const std::vector<std::string>& args) {
  Flags f(args,
          {"model",
           "host",
           "port",
           "grpc-port",
           "api-key",
           "served-model-name",
           "max-body-bytes",
           "shutdown-timeout",
           "max-connections",
           "http-threads",
           "http-workers",
           "header-timeout",
           "body-timeout",
           "keep-alive-timeout",
           "kv-cache-gb",
           "max-num-seqs",
           "max-num-batched-tokens",
           "max-model-len",
           "block-size",
           "policy",
           "threads",
           "max-waiting",
           "device",
           "prefix-cache-salt",
           "long-prefill-token-threshold",
           "tensor-parallel-size",
           "pipeline-parallel-size",
           "micro-batches",
           "comm-timeout",
           "quantization",
           "state-dir",
           "batch-max-in-flight",
           "batch-expiry"},
          {"metrics-public", "no-prefix-caching"});
  EngineOptions eo = engine_options(f);
  server::ServerOptions so = server_options(f, eo.model_dir);

  // Block the shutdown signals before any thread starts, so that every thread inherits the
  // mask and only this one receives them (through sigwait below).
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  std::unique_ptr<Engine> engine = Engine::create(eo);
  server::Metrics metrics(so.served_model_name);
  server::EngineClient client(*engine, metrics);
  server::RequestLog log(stderr);
  server::HttpServer http(client, so, so.served_model_name, log);
  int port = http.start();
#ifdef HERD_HAVE_GRPC
  std::unique_ptr<server::GrpcServer> grpc;
  if (so.grpc_port >= 0) {
    grpc = std::make_unique<server::GrpcServer>(client, so, so.served_model_name);
    int gport = grpc->start();
    std::printf("grpc listening on %s:%d\n", so.host.c_str(), gport);
  }
#endif
  std::printf("listening on http://%s:%d\n", so.host.c_str(), port);
  std::fflush(stdout);

  // Wait for a shutdown signal, polling the engine's health in between.
  int sig = 0;
  int exit_status = 0;
  while (true) {
    timespec poll{0, kHealthPollMs * 1000000L};
    const int s = sigtimedwait(&sigs, nullptr, &poll);
    if (s > 0) {
      sig = s;
      break;
    }
    const EngineHealth h = engine->health();
    if (!h.healthy) {
      std::fprintf(stderr,
                   "herd serve: engine unhealthy (%s); draining (up to %.0f s), then "
                   "exiting with status %d\n",
                   h.reason.c_str(), so.shutdown_timeout_s, kExitEngineFailed);
      exit_status = kExitEngineFailed;
      break;
    }
  }
  if (sig != 0)
    std::fprintf(stderr, "herd serve: %s received, draining (up to %.0f s)\n",
                 sig == SIGINT ? "SIGINT" : "SIGTERM", so.shutdown_timeout_s);
  // A second signal during the drain aborts what is left at once.
  std::thread second([&] {
    int s2 = 0;
    sigwait(&sigs, &s2);
    client.abort_all();
  });
  second.detach();
  auto deadline = std::chrono::milliseconds(static_cast<int64_t>(so.shutdown_timeout_s * 1000));
  // Both front ends drain at once, against the same deadline.
#ifdef HERD_HAVE_GRPC
  std::thread grpc_drain([&] {
    if (grpc) grpc->shutdown(deadline);
  });
  http.shutdown(deadline);
  grpc_drain.join();
#else
  http.shutdown(deadline);
#endif
  engine->shutdown();
  std::fprintf(stderr, "herd serve: stopped\n");
  std::fflush(stdout);
  std::fflush(stderr);
  finalize_parallel();      // an MPI job: every rank has stopped (engine shutdown told them)
  std::_Exit(exit_status);  // the detached signal waiter must not hold the process open
}

HERD_COMMAND("serve", kUsage, run_serve);

}  // namespace
}  // namespace herd::cli

#endif  // HERD_HAVE_SERVER
