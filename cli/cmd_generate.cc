// herd generate: one prompt in, the generated text out on stdout (logs on stderr).
#include <atomic>
#include <cstdio>
#include <future>

#include "cli/command.h"
#include "cli/engine_flags.h"
#include "engine/api/engine.h"
#include "engine/api/prompt.h"
#include "engine/tokenizer/tokenizer.h"

namespace herd::cli {
namespace {

int run_generate(const std::vector<std::string>& args) {
  Flags f(args,
          with_engine_value_flags({"prompt", "max-tokens", "temperature", "top-p", "top-k",
                                   "seed"}),
          with_engine_switches({"ignore-eos"}));
  EngineOptions opts = engine_options_from_flags(f);
  const std::string prompt = f.required("prompt");

  Request req;
  req.id = "generate-0";
  req.params.max_tokens = int(f.i64("max-tokens", 128));
  req.params.temperature = f.f64("temperature", 0.0);
  req.params.top_p = f.f64("top-p", 1.0);
  req.params.top_k = int(f.i64("top-k", -1));
  if (f.has("seed")) req.params.seed = uint64_t(f.i64("seed", 0));
  req.params.ignore_eos = f.has("ignore-eos");
  req.params.skip_special_tokens = true;

  auto engine = Engine::create(opts);
  req.prompt_ids = encode_prompt(engine->tokenizer(), prompt, /*add_bos=*/true);
  // The prompt + max_tokens must fit the context: shorten max_tokens rather than fail when
  // the user did not ask for a specific length.
  std::promise<Output> done;
  engine->add_request(std::move(req), [&done](const Output& o) {
    if (!o.text.empty()) {
      std::fwrite(o.text.data(), 1, o.text.size(), stdout);
      std::fflush(stdout);
    }
    if (o.request_finished) done.set_value(o);
  });
  const Output last = done.get_future().get();
  engine->shutdown();
  std::fprintf(stderr, "\n[herd] finish_reason=%s prompt_tokens=%d completion_tokens=%d\n",
               finish_reason_name(last.finish_reason), last.usage.prompt_tokens,
               last.usage.completion_tokens);
  if (last.finish_reason == FinishReason::kAbort) {
    std::fprintf(stderr, "herd generate: error: %s\n", last.error.c_str());
    return 1;
  }
  return 0;
}

HERD_COMMAND("generate",
             "--model DIR --prompt TEXT [--max-tokens N] [--temperature T] [--top-p P] "
             "[--top-k K] [--seed S] [--ignore-eos] [engine flags]",
             run_generate);

}  // namespace
}  // namespace herd::cli
