#include "engine/eval/fp8_eval.h"

#include <algorithm>
#include <chrono>
#include <memory>

#include "engine/common/error.h"
#include "engine/eval/activation_cap.h"
#include "engine/eval/bf16_cast.h"
#include "engine/eval/eval_model.h"
#include "engine/eval/eval_stats.h"
#include "engine/eval/teacher_forcing.h"
#include "engine/model/config.h"
#include "engine/model/fp8_quantize.h"
#include "engine/model/weights.h"
#include "engine/quant/fp8_config.h"
#include "engine/tokenizer/tokenizer.h"

namespace herd::eval {

namespace {

using ojson = nlohmann::ordered_json;

ojson summary_json(const Summary& s) {
  return ojson{{"count", s.count}, {"mean", s.mean}, {"p50", s.p50},
               {"p99", s.p99},     {"min", s.min},   {"max", s.max}};
}

ojson cap_run_json(const CapRun& r) {
  return ojson{{"activation_scale_ub", r.ub},
               {"token_scale", r.scale},
               {"ordinary_underflow_fraction", r.ordinary_underflow},
               {"outlier_after_fp8", r.outlier_quantized},
               {"ordinary_channels_rel_error", r.ordinary_rel_error},
               {"full_rel_error", r.full_rel_error}};
}

std::vector<int32_t> encode_prompt(const Tokenizer& tok, const std::string& text) {
  std::vector<int32_t> ids;
  if (tok.bos_id() >= 0 && !tok.adds_bos()) ids.push_back(tok.bos_id());
  const auto body = tok.encode(text);
  ids.insert(ids.end(), body.begin(), body.end());
  if (ids.empty()) throw InvalidArgument("prompts", "a prompt encodes to no tokens");
  return ids;
}

// The response's text without a final stop token.
std::string response_text(const Tokenizer& tok, std::vector<int32_t> ids, int32_t stop) {
  if (!ids.empty() && ids.back() == stop) ids.pop_back();
  return tok.decode(ids);
}

void say(FILE* log, const std::string& line) {
  if (log) std::fprintf(log, "herd eval fp8: %s\n", line.c_str());
}

}  // namespace

std::vector<std::string> default_eval_prompts() {
  return {"Once upon a time, there was a little girl named Lily.",
          "Tom and his dog went to the park. The sun was",
          "One day, a big bird found a shiny stone.", "The cat was sad because"};
}

uint64_t eval_sample_seed(uint64_t seed, size_t prompt, int sample) {
  // splitmix64 of the three: distinct streams, a pure function of its inputs.
  uint64_t z = seed * 0x9e3779b97f4a7c15ull + uint64_t(prompt) * 0xbf58476d1ce4e5b9ull +
               uint64_t(sample) * 0x94d049bb133111ebull + 1;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

Fp8EvalResult run_fp8_eval(Backend& backend, const Fp8EvalOptions& o, FILE* log) {
  const auto t0 = std::chrono::steady_clock::now();
  if (o.prompts.empty()) throw InvalidArgument("prompts", "no prompts");
  if (o.max_tokens < 1) throw InvalidArgument("max-tokens", "--max-tokens must be >= 1");
  const ModelConfig cfg = load_model_config(o.model_dir);
  if (cfg.is_reward_model())
    throw InvalidArgument("model", o.model_dir + " is a reward model; --model takes a causal LM");
  const auto tok = load_tokenizer(o.model_dir);
  if (load_fp8_quant_config(o.model_dir).present)
    throw InvalidArgument("model", o.model_dir +
                                       " is already quantized; give the unquantized "
                                       "checkpoint (it is quantized at load)");

  auto whole = std::make_shared<const LlamaWeights>(load_llama_weights(o.model_dir, cfg));
  const std::string stored = std::string(dtype_name(whole->dtype));
  if (o.reference_bf16)
    whole = std::make_shared<const LlamaWeights>(cast_llama_weights_bf16(*whole));
  Fp8QuantizeOptions qo;
  qo.activation_scale_ub = o.activation_scale_ub;
  const std::vector<int64_t> qlayers = fp8_quantized_layers(cfg, qo);
  auto fp8 = std::make_shared<const LlamaWeights>(quantize_llama_weights_fp8(*whole, cfg, qo));

  std::vector<std::vector<int32_t>> prompts;
  size_t longest = 0;
  for (const auto& p : o.prompts) {
    prompts.push_back(encode_prompt(*tok, p));
    longest = std::max(longest, prompts.back().size());
  }
  const int max_len = int(longest) + o.max_tokens;
  if (cfg.max_position_embeddings > 0 && max_len > cfg.max_position_embeddings)
    throw InvalidArgument("max-tokens",
                          "the longest prompt + --max-tokens exceed the model's "
                          "max_position_embeddings");
  EvalModel ref(cfg, whole, backend, max_len);
  EvalModel cand(cfg, o.baseline_only ? whole : fp8, backend, max_len);
  const int32_t stop = tok->eos_id();

  // Teacher forcing on the reference's greedy continuation, and the two free-running greedy
  // continuations.
  TokenComparison cmp;
  std::vector<double> agree;
  int64_t full_agree = 0;
  ojson per_prompt = ojson::array();
  GenerateOptions greedy;
  greedy.max_tokens = o.max_tokens;
  greedy.stop_id = stop;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const auto ref_cont = ref.generate(prompts[i], greedy);
    const auto cand_cont = cand.generate(prompts[i], greedy);
    const size_t before = cmp.kl.size();
    teacher_force(ref, cand, prompts[i], ref_cont, cmp);
    const int64_t len = agreement_length(ref_cont, cand_cont);
    const bool same = ref_cont == cand_cont;
    agree.push_back(double(len));
    full_agree += same;
    double kl_sum = 0;
    for (size_t k = before; k < cmp.kl.size(); ++k) kl_sum += cmp.kl[k];
    per_prompt.push_back(
        ojson{{"prompt", o.prompts[i]},
              {"prompt_tokens", prompts[i].size()},
              {"reference_tokens", ref_cont.size()},
              {"agreement_length", len},
              {"identical", same},
              {"mean_kl", ref_cont.empty() ? 0.0 : kl_sum / double(ref_cont.size())},
              {"reference_text", response_text(*tok, ref_cont, stop)},
              {"candidate_text", response_text(*tok, cand_cont, stop)}});
    say(log, std::string("prompt ")
                 .append(std::to_string(i + 1))
                 .append("/")
                 .append(std::to_string(prompts.size()))
                 .append(": greedy agreement ")
                 .append(std::to_string(len))
                 .append("/")
                 .append(std::to_string(ref_cont.size())));
  }

  Fp8EvalResult res;
  ojson& r = res.report;
  r["model"] = o.model_dir;
  r["reference"] = std::string(dtype_name(whole->dtype));
  r["stored_dtype"] = stored;
  r["candidate"] = o.baseline_only ? std::string("baseline (unquantized)")
                                   : std::string("fp8 row-wise (quantized at load)");
  r["activation_scale_ub"] = o.activation_scale_ub;
  r["quantized_layers"] = o.baseline_only ? std::vector<int64_t>{} : qlayers;
  r["num_layers"] = cfg.num_hidden_layers;
  r["prompts"] = prompts.size();
  r["max_tokens"] = o.max_tokens;
  r["tokens_compared"] = cmp.tokens();
  r["kl"] = summary_json(summarize(cmp.kl));
  r["max_abs_logit_diff"] = summary_json(summarize(cmp.max_abs_logit_diff));
  r["reference_entropy"] = summary_json(summarize(cmp.reference_entropy));
  r["top1_agreement"] = cmp.tokens() ? double(cmp.top1_agree) / double(cmp.tokens()) : 1.0;
  const Summary ag = summarize(agree);
  r["greedy_agreement"] =
      ojson{{"mean", ag.mean},
            {"min", ag.min},
            {"identical_fraction", double(full_agree) / double(prompts.size())}};
  r["per_prompt"] = per_prompt;

  if (!o.reward_dir.empty()) {
    const ModelConfig rcfg = load_model_config(o.reward_dir);
    if (!rcfg.is_reward_model())
      throw InvalidArgument("reward", o.reward_dir +
                                          " is not a reward model "
                                          "(LlamaForSequenceClassification)");
    const auto rtok = load_tokenizer(o.reward_dir);
    GenerateOptions sample;
    sample.max_tokens = o.max_tokens;
    sample.temperature = o.temperature;
    sample.stop_id = stop;
    // Responses first (the reward model's length limit is known only once they are written).
    std::vector<std::vector<int32_t>> ref_in, cand_in;
    int64_t identical = 0;
    std::vector<double> sampled_agree;  // tokens until the two samples of one seed differ
    size_t rlongest = 0;
    for (size_t i = 0; i < prompts.size(); ++i)
      for (int s = 0; s < o.samples; ++s) {
        sample.seed = eval_sample_seed(o.seed, i, s);
        const auto a = ref.generate(prompts[i], sample);
        const auto b = cand.generate(prompts[i], sample);
        identical += a == b;
        sampled_agree.push_back(double(agreement_length(a, b)));
        ref_in.push_back(encode_prompt(*rtok, o.prompts[i] + response_text(*tok, a, stop)));
        cand_in.push_back(encode_prompt(*rtok, o.prompts[i] + response_text(*tok, b, stop)));
        rlongest = std::max({rlongest, ref_in.back().size(), cand_in.back().size()});
      }
    say(log, std::string("scoring ")
                 .append(std::to_string(2 * ref_in.size()))
                 .append(" responses with ")
                 .append(o.reward_dir));
    if (rcfg.max_position_embeddings > 0 && int64_t(rlongest) > rcfg.max_position_embeddings)
      throw InvalidArgument("reward", "a response is longer than the reward model's context");
    auto rweights = std::make_shared<const LlamaWeights>(load_llama_weights(o.reward_dir, rcfg));
    EvalModel rm(rcfg, rweights, backend, int(rlongest));
    auto score = [&](const std::vector<int32_t>& ids) {
      return double(rm.prefill_logits(ids, int(ids.size()) - 1)[0]);
    };
    std::vector<double> diff;
    for (size_t k = 0; k < ref_in.size(); ++k) {
      res.reference_scores.push_back(score(ref_in[k]));
      res.candidate_scores.push_back(score(cand_in[k]));
      diff.push_back(res.candidate_scores.back() - res.reference_scores.back());
    }
    r["reward"] = ojson{{"model", o.reward_dir},
                        {"label", rcfg.id2label.empty() ? std::string() : rcfg.id2label[0]},
                        {"samples_per_prompt", o.samples},
                        {"temperature", o.temperature},
                        {"seed", o.seed},
                        {"identical_responses", identical},
                        {"sampled_agreement_length", summary_json(summarize(sampled_agree))},
                        {"responses", ref_in.size()},
                        {"reference", summary_json(summarize(res.reference_scores))},
                        {"candidate", summary_json(summarize(res.candidate_scores))},
                        {"candidate_minus_reference", summary_json(summarize(diff))}};
  }

  // The cap, on a real quantized weight of this model.
  ojson cap = ojson::array();
  if (!qlayers.empty()) {
    const int64_t layer = qlayers.front();
    const auto& lw = fp8->layers[size_t(layer)];
    const float ub = o.activation_scale_ub > 0 ? o.activation_scale_ub : kDefaultActivationScaleUb;
    for (float outlier : o.cap_outliers) {
      const CapDemo d =
          demonstrate_activation_cap(backend, lw.gate_proj, lw.gate_proj_scale, outlier, ub);
      cap.push_back(ojson{{"weight", llama_layer_tensor_name(layer, "mlp.gate_proj")},
                          {"k", d.k},
                          {"outlier", d.outlier},
                          {"capped", cap_run_json(d.capped)},
                          {"uncapped", cap_run_json(d.uncapped)}});
    }
  }
  r["activation_cap"] = cap;
  r["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

}  // namespace herd::eval
