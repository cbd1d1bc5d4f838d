// herd chat: a terminal conversation. Streams the reply as it comes, keeps the conversation,
// Ctrl-C stops the current reply (not the program), Ctrl-D or /exit leaves.
#include <csignal>
#include <cstdio>
#include <future>
#include <iostream>
#include <string>

#include "cli/command.h"
#include "engine/common/error.h"
#include "cli/engine_flags.h"
#include "engine/api/engine.h"
#include "engine/api/prompt.h"
#include "engine/tokenizer/chat_format.h"
#include "engine/tokenizer/tokenizer.h"

namespace herd::cli {
namespace {

volatile std::sig_atomic_t g_interrupted = 0;
void on_sigint(int) { g_interrupted = 1; }

int run_chat(const std::vector<std::string>& args) {
  Flags f(args,
          with_engine_value_flags({"system", "max-tokens", "temperature", "top-p", "seed"}),
          with_engine_switches({}));
  EngineOptions opts = engine_options_from_flags(f);
  auto engine = Engine::create(opts);
  const Tokenizer& tok = engine->tokenizer();
  if (!tok.token_id("<|start_header_id|>") || !tok.token_id("<|eot_id|>"))
    throw Error("herd chat needs a Llama 3 chat tokenizer (<|start_header_id|>, <|eot_id|>); "
                "this model's tokenizer has none — use herd generate");

  std::vector<ChatMessage> messages;
  if (f.has("system")) messages.push_back({"system", f.str("system", ""), {}, ""});

  struct sigaction sa = {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);

  int turn = 0;
  std::string line;
  while (true) {
    std::fprintf(stderr, "\n> ");
    g_interrupted = 0;
    if (!std::getline(std::cin, line)) {
      if (g_interrupted) {  // Ctrl-C at the prompt: new prompt, keep going
        std::cin.clear();
        continue;
      }
      break;  // Ctrl-D
    }
    if (line == "/exit" || line == "/quit") break;
    if (line.empty()) continue;
    messages.push_back({"user", line, {}, ""});

    Request req;
    req.id = "chat-" + std::to_string(turn++);
    req.params.max_tokens = int(f.i64("max-tokens", 512));
    req.params.temperature = f.f64("temperature", 0.7);
    req.params.top_p = f.f64("top-p", 0.9);
    if (f.has("seed")) req.params.seed = uint64_t(f.i64("seed", 0));
    req.prompt_ids = encode_llama31_chat(tok, messages);
    const int ctx = engine->max_model_len();
    const int room = ctx - int(req.prompt_ids.size());
    if (room < 1) {
      std::fprintf(stderr, "[herd] the conversation no longer fits the context (%d tokens)\n",
                   ctx);
      messages.pop_back();
      continue;
    }
    if (*req.params.max_tokens > room) req.params.max_tokens = room;

    std::string reply;
    std::promise<Output> done;
    auto fut = done.get_future();
    const std::string id = req.id;
    engine->add_request(std::move(req), [&](const Output& o) {
      if (!o.text.empty()) {
        reply += o.text;
        std::fwrite(o.text.data(), 1, o.text.size(), stdout);
        std::fflush(stdout);
      }
      if (o.request_finished) done.set_value(o);
    });
    bool aborted = false;
    while (fut.wait_for(std::chrono::milliseconds(20)) != std::future_status::ready) {
      if (g_interrupted && !aborted) {
        engine->abort(id);
        aborted = true;
      }
    }
    const Output last = fut.get();
    std::printf("\n");
    if (last.finish_reason == FinishReason::kAbort) std::fprintf(stderr, "[herd] stopped\n");
    messages.push_back({"assistant", reply, {}, ""});
  }
  engine->shutdown();
  return 0;
}

HERD_COMMAND("chat",
             "--model DIR [--system TEXT] [--max-tokens N] [--temperature T] [--top-p P] "
             "[--seed S] [engine flags]",
             run_chat);

}  // namespace
}  // namespace herd::cli
