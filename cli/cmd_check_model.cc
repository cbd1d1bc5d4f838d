// herd check-model: validates a Hugging Face Llama checkpoint directory (config.json,
// generation_config.json, every safetensors tensor against the config) without loading it
// onto a device; prints a one-line summary, or one error line and exit status 1.
#include <cstdio>

#include "cli/command.h"
#include "cli/flags.h"
#include "engine/common/error.h"
#include "engine/model/config.h"
#include "engine/model/weights.h"

namespace herd::cli {
namespace {

int run_check_model(const std::vector<std::string>& args) {
  Flags f(args, {"model"});
  if (!f.positional().empty())
    throw InvalidArgument("", "unexpected argument '" + f.positional()[0] + "'");
  const std::string dir = f.required("model");
  ModelConfig c = load_model_config(dir);
  LlamaWeights w = load_llama_weights(dir, c);
  int64_t params =
      w.embed_tokens.numel() + w.norm.numel() + (c.tie_word_embeddings ? 0 : w.lm_head.numel());
  for (const LlamaLayerWeights& l : w.layers)
    for (const Tensor* t : {&l.input_layernorm, &l.q_proj, &l.k_proj, &l.v_proj, &l.o_proj,
                            &l.post_attention_layernorm, &l.gate_proj, &l.up_proj, &l.down_proj})
      params += t->numel();
  std::printf(
      "%s: ok: %lld layers, hidden %lld, %lld heads (%lld kv), vocab %lld, %s, %lld "
      "parameters\n",
      dir.c_str(), (long long)c.num_hidden_layers, (long long)c.hidden_size,
      (long long)c.num_attention_heads, (long long)c.num_key_value_heads, (long long)c.vocab_size,
      std::string(dtype_name(w.dtype)).c_str(), (long long)params);
  return 0;
}

HERD_COMMAND("check-model", "--model DIR", run_check_model);

}  // namespace
}  // namespace herd::cli
