#include "engine/api/llm_engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <stdexcept>

#include "engine/api/step_input_builder.h"
#include "engine/common/error.h"
#include "engine/exec/local_executor.h"
#include "engine/model/weights.h"
#include "engine/sample/validate.h"

namespace herd {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

}  // namespace

std::vector<int32_t> eos_ids_of(const ModelConfig& cfg, const Tokenizer& tok) {
  std::vector<int32_t> ids;
  for (int64_t id : cfg.eos_token_ids) ids.push_back(int32_t(id));
  if (ids.empty() && tok.eos_id() >= 0) ids.push_back(tok.eos_id());
  return ids;
}

SchedulerConfig make_scheduler_config(const EngineOptions& o, const ModelConfig& cfg,
                                      size_t kv_block_bytes) {
  SchedulerConfig s;
  s.block_size = o.block_size;
  const double per_block = double(kv_block_bytes);
  const double blocks =
      o.kv_blocks_override > 0 ? double(o.kv_blocks_override) : o.kv_cache_gb * kGiB / per_block;
  if (blocks < 1)
    throw InvalidArgument("kv-cache-gb", "--kv-cache-gb " + std::to_string(o.kv_cache_gb) +
                                             " holds no KV block of this model (one block takes " +
                                             std::to_string(int64_t(per_block)) + " bytes)");
  s.num_blocks = int(std::min(blocks, 2e9));
  const int64_t pool_tokens = int64_t(s.num_blocks) * o.block_size;
  int64_t len = o.max_model_len > 0 ? o.max_model_len : cfg.max_position_embeddings;
  if (o.max_model_len > cfg.max_position_embeddings)
    throw InvalidArgument("max-model-len", "--max-model-len " + std::to_string(o.max_model_len) +
                                               " exceeds the model's max_position_embeddings " +
                                               std::to_string(cfg.max_position_embeddings));
  if (len > pool_tokens) {
    if (o.max_model_len > 0)
      throw InvalidArgument("max-model-len", "--max-model-len " + std::to_string(len) +
                                                 " does not fit the KV pool (" +
                                                 std::to_string(pool_tokens) +
                                                 " tokens); raise --kv-cache-gb");
    std::fprintf(stderr, "[herd] max_model_len %lld -> %lld: the KV pool holds %lld tokens\n",
                 (long long)len, (long long)pool_tokens, (long long)pool_tokens);
    len = pool_tokens;
  }
  s.max_model_len = int(len);
  s.max_num_seqs = o.max_num_seqs;
  s.max_num_batched_tokens = o.max_num_batched_tokens;
  s.enable_chunked_prefill = o.enable_chunked_prefill;
  if (!o.enable_chunked_prefill && s.max_num_batched_tokens < s.max_model_len) {
    // Without chunking a whole prompt must fit one step.
    std::fprintf(stderr,
                 "[herd] chunked prefill off: max_num_batched_tokens %d -> max_model_len %d\n",
                 s.max_num_batched_tokens, s.max_model_len);
    s.max_num_batched_tokens = s.max_model_len;
  }
  s.enable_prefix_caching = o.enable_prefix_caching;
  // Plans in flight split the running batch between them (each micro-batch ~1/M of it).
  s.micro_batches = o.parallel.plans_in_flight();
  s.policy = o.policy;
  s.cache_salt = o.cache_salt;
  if (o.long_prefill_token_threshold < -1)
    throw InvalidArgument("long-prefill-token-threshold",
                          "--long-prefill-token-threshold must be -1 (auto), 0 (off) or > 0");
  s.long_prefill_token_threshold = o.long_prefill_token_threshold >= 0
                                       ? o.long_prefill_token_threshold
                                       : std::max(64, s.max_num_batched_tokens / 8);
  return s;
}

LlmEngine::LlmEngine(EngineParts parts, const EngineOptions& opts)
    : config_(std::move(parts.config)),
      weights_(std::move(parts.weights)),
      tokenizer_(std::move(parts.tokenizer)),
      backend_(std::move(parts.backend)),
      opts_(opts),
      sched_config_(make_scheduler_config(
          opts, config_,
          parts.kv_block_bytes > 0
              ? parts.kv_block_bytes
              : KvCache::bytes_per_block(config_, opts.block_size, backend_->kv_dtype()))),
      eos_ids_(eos_ids_of(config_, *tokenizer_)),
      executor_(std::move(parts.executor)),
      max_in_flight_(opts.parallel.plans_in_flight()) {
  if (opts.max_waiting < 0) throw InvalidArgument("max-waiting", "--max-waiting must be >= 0");
  const char* trace = std::getenv("HERD_TRACE_STEPS");
  trace_ = trace && *trace && std::string(trace) != "0";
  sched_ = std::make_unique<Scheduler>(sched_config_);
  if (!executor_) {
    RunnerShape shape;
    shape.num_blocks = sched_config_.num_blocks;
    shape.block_size = sched_config_.block_size;
    shape.max_tokens = sched_config_.max_num_batched_tokens;
    shape.max_seqs = sched_config_.max_num_seqs;
    executor_ = std::make_unique<LocalExecutor>(
        std::make_unique<ModelRunner>(config_, weights_, *backend_, shape, eos_ids_));
  }
  thread_ = std::thread([this] { loop(); });
}

LlmEngine::~LlmEngine() { shutdown(); }

void LlmEngine::add_request(Request req, OutputSink sink) {
  add_locked(std::move(req), std::move(sink), /*bypass_queue_limit=*/false);
}

void LlmEngine::add_locked(Request req, OutputSink sink, bool bypass_queue_limit) {
  if (req.id.empty()) throw InvalidArgument("request_id", "a request needs a non-empty id");
  for (int32_t id : req.prompt_ids)
    if (id < 0 || id >= config_.vocab_size)
      throw InvalidArgument("prompt", "prompt token id " + std::to_string(id) +
                                          " is outside the vocabulary [0, " +
                                          std::to_string(config_.vocab_size) + ")");
  // A reward model scores prompts (sampling parameters do not apply; the scheduler checks the
  // prompt length and n == 1).
  const bool score = config_.is_reward_model();
  if (!score)
    validate_sampling_params(req.params, int(config_.vocab_size), int(req.prompt_ids.size()),
                             sched_config_.max_model_len);

  const std::shared_ptr<grammar::TokenMasker> constraint = constraint_for(req.params);
  auto rs = std::make_unique<RequestState>();
  rs->seed = effective_seed(req.params);
  const int prompt_len = int(req.prompt_ids.size());
  const int max_tokens = req.params.max_tokens.value_or(sched_config_.max_model_len - prompt_len);
  for (int i = 0; i < req.params.n; ++i)
    rs->samples.push_back(SampleState{
        std::make_unique<StopChecker>(*tokenizer_, req.params, eos_ids_, prompt_len,
                                      sched_config_.max_model_len),
        constraint ? std::make_unique<grammar::SequenceConstraint>(constraint) : nullptr});

  NewRequest nr;
  nr.request_id = req.id;
  nr.prompt = std::make_shared<const std::vector<int32_t>>(req.prompt_ids);
  nr.n = req.params.n;
  nr.max_tokens = max_tokens;
  nr.priority = req.priority;
  nr.cache_salt = req.cache_salt;
  nr.handle = rs.get();
  nr.prefill_only = score;
  if (score) nr.max_tokens = 0;

  std::lock_guard<std::mutex> lock(mu_);
  if (!healthy_) throw EngineUnavailable("the engine is unavailable: " + unhealthy_reason_);
  if (stopping_) throw QueueFull("the engine is shutting down");
  if (!bypass_queue_limit && num_unstarted_ >= opts_.max_waiting)
    throw QueueFull("too many requests waiting (" + std::to_string(num_unstarted_) +
                    "); try again later");
  if (requests_.count(req.id))
    throw InvalidArgument("request_id", "request_id '" + req.id +
                                            "' is already in use by a live request (ids must be "
                                            "unique among queued and running requests)");
  rs->group = sched_->add_request(std::move(nr));  // throws InvalidArgument on bad requests
  for (int i = 0; i < rs->group->n(); ++i) rs->group->seq(i).handle = &rs->samples[size_t(i)];
  rs->req = std::move(req);
  rs->sink = std::move(sink);
  rs->serial = next_serial_++;
  prompt_tokens_ += prompt_len;
  ++num_unstarted_;
  requests_[rs->req.id] = std::move(rs);
  new_work_ = true;
  cv_.notify_all();
}

void LlmEngine::abort(const std::string& request_id) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = requests_.find(request_id);
  if (it == requests_.end()) return;  // unknown or already retired: nothing to abort
  pending_aborts_.push_back(PendingAbort{request_id, it->second->serial});
  cv_.notify_all();
}

void LlmEngine::set_logits_hook(LogitsHook hook) { executor_->set_logits_hook(std::move(hook)); }

EngineHealth LlmEngine::health() const {
  std::lock_guard<std::mutex> lock(mu_);
  EngineHealth h;
  h.healthy = healthy_;
  h.reason = unhealthy_reason_;
  return h;
}

std::vector<std::vector<Output>> LlmEngine::generate(std::vector<Request> reqs) {
  const size_t count = reqs.size();
  std::vector<std::vector<Output>> results(count);
  for (size_t i = 0; i < count; ++i) results[i].resize(size_t(std::max(reqs[i].params.n, 1)));
  // The sinks write into this frame, so it must not be left before every request that was
  // queued has delivered its final delta (also when a later add_request throws).
  std::mutex rmu;
  std::condition_variable rcv;
  size_t finished = 0, added = 0;
  std::vector<std::string> ids;
  auto wait_for = [&](size_t n) {
    std::unique_lock<std::mutex> l(rmu);
    rcv.wait(l, [&] { return finished == n; });
  };
  try {
    for (size_t i = 0; i < count; ++i) {
      auto sink = [&, i](const Output& o) {
        std::lock_guard<std::mutex> l(rmu);
        Output& r = results[i][size_t(o.index)];
        r.request_id = o.request_id;
        r.index = o.index;
        r.text += o.text;
        r.token_ids.insert(r.token_ids.end(), o.token_ids.begin(), o.token_ids.end());
        r.logprobs.insert(r.logprobs.end(), o.logprobs.begin(), o.logprobs.end());
        if (!o.scores.empty()) r.scores = o.scores;
        if (o.finish_reason != FinishReason::kNone) {
          r.finish_reason = o.finish_reason;
          r.stop_reason = o.stop_reason;
          r.error = o.error;
        }
        if (o.request_finished) {
          for (Output& s : results[i]) s.usage = o.usage, s.request_finished = true;
          ++finished;
          rcv.notify_all();
        }
      };
      ids.push_back(reqs[i].id);
      add_locked(std::move(reqs[i]), sink, /*bypass_queue_limit=*/true);
      ++added;
    }
  } catch (...) {
    for (size_t i = 0; i < added; ++i) abort(ids[i]);
    wait_for(added);
    throw;
  }
  wait_for(count);
  return results;
}

EngineStats LlmEngine::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  const SchedulerStats s = sched_->stats();
  EngineStats e;
  e.running = s.running;
  e.waiting = s.waiting;
  e.kv_usage = s.kv.usage;
  e.num_blocks = s.kv.num_blocks;
  e.free_blocks = s.kv.free_blocks;
  e.prefix_queries_tokens = s.kv.prefix_queries_tokens;
  e.prefix_hits_tokens = s.kv.prefix_hits_tokens;
  e.preemptions = s.preemptions;
  e.prompt_tokens = prompt_tokens_;
  e.generation_tokens = generation_tokens_;
  e.steps = steps_;
  e.nonfinite_logit_errors = nonfinite_logit_errors_;
  e.healthy = healthy_;
  return e;
}

void LlmEngine::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  executor_->shutdown();  // runs what was submitted; nobody lands it any more
  in_flight_.clear();
  std::vector<Delivery> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    fail_all_locked("the engine shut down", out);
  }
  deliver(out);
}

void LlmEngine::loop() {
  std::vector<Delivery> out;
  while (true) {
    bool ran = false;
    try {
      ran = run_step(out);
    } catch (const std::exception& e) {
      // A failed step (the backend threw: on a GPU a sticky device error fails every later
      // step too) makes the engine unhealthy for good: every live request ends with the error
      // (the deltas already built, e.g. the final ones of requests aborted at the start of the
      // step, are still delivered below) and add_request refuses new ones.
      std::lock_guard<std::mutex> lock(mu_);
      std::fprintf(stderr, "[herd] engine step failed, the engine is now unhealthy: %s\n",
                   e.what());
      if (healthy_) {
        healthy_ = false;
        unhealthy_reason_ = std::string("engine step failed: ") + e.what();
      }
      fail_all_locked(unhealthy_reason_, out);
      in_flight_.clear();  // never landed: the scheduler is not used again
      ran = true;
    }
    deliver(out);  // no lock held: a sink may call abort() or add_request()
    if (ran) continue;
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock,
             [&] { return stopping_ || !pending_aborts_.empty() || sched_->has_unfinished(); });
    if (stopping_) return;
  }
}

bool LlmEngine::run_step(std::vector<Delivery>& out) {
  std::unique_lock<std::mutex> lock(mu_);
  apply_aborts_locked(out);
  if (stopping_ || !healthy_) return false;
  new_work_ = false;
  while (int(in_flight_.size()) < max_in_flight_) {
    StepPlan plan = sched_->schedule();
    if (plan.empty()) break;
    if (opts_.test_fail_step_after >= 0 && steps_submitted_ >= opts_.test_fail_step_after)
      throw std::runtime_error("injected device fault after " +
                               std::to_string(opts_.test_fail_step_after) +
                               " steps (test hook HERD_TEST_FAIL_STEP_AFTER)");
    std::vector<MaskJob> mask_jobs;
    ExecPlan exec = make_exec_plan_locked(plan, mask_jobs);
    const size_t rows = exec.samples.size();
    // Grammar masks: computed here, on the engine thread, after the plan was submitted when
    // the executor can take them late, so they overlap the forward; else before submitting.
    // Either way from the same grammar states (a sequence with a plan in flight is not
    // planned again until it lands), so the masks and the tokens do not depend on the timing.
    std::promise<TokenMasks> late;
    const bool overlap = !mask_jobs.empty() && executor_->takes_late_masks();
    if (overlap) {
      exec.late_masks = late.get_future().share();
    } else if (!mask_jobs.empty()) {
      TokenMasks masks = fill_masks(mask_jobs, rows);
      for (const MaskJob& j : mask_jobs)
        exec.samples[j.row].allowed_tokens = std::move(masks[j.row]);
    }
    std::future<ExecResult> f = executor_->submit(std::move(exec), [this] {
      std::lock_guard<std::mutex> l(mu_);
      cv_.notify_all();
    });
    // A throw here leaves `late` unset: its destructor breaks the promise, which fails the
    // step in the executor instead of leaving it waiting.
    if (overlap) late.set_value(fill_masks(mask_jobs, rows));
    if (trace_) {
      std::string what;
      for (const ScheduledSeq& e : plan.entries)
        what += " " + e.seq->request_id() + "/" + std::to_string(e.seq->index()) + "@" +
                std::to_string(e.start) + "+" + std::to_string(e.num_tokens);
      std::fprintf(stderr, "[herd trace] plan %lld submitted (%zu in flight):%s\n",
                   (long long)steps_submitted_, in_flight_.size() + 1, what.c_str());
    }
    in_flight_.push_back(InFlight{std::move(plan), std::move(f)});
    ++steps_submitted_;
  }
  if (in_flight_.empty()) return !out.empty();
  // Wait for the oldest plan — but wake for an abort, or for a new request while there is room
  // for another plan: it joins the pipeline at once instead of after the oldest plan lands.
  auto oldest_ready = [&] {
    return in_flight_.front().result.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  };
  cv_.wait(lock, [&] {
    return oldest_ready() || stopping_ || !pending_aborts_.empty() ||
           (new_work_ && int(in_flight_.size()) < max_in_flight_);
  });
  if (!oldest_ready()) return true;  // back to the top: apply aborts, plan more
  InFlight step = std::move(in_flight_.front());
  in_flight_.pop_front();
  lock.unlock();
  ExecResult r = step.result.get();  // rethrows the executor's failure
  lock.lock();
  land_locked(step.plan, r, out);
  return true;
}

std::shared_ptr<grammar::TokenMasker> LlmEngine::constraint_for(const SamplingParams& p) {
  if (p.response_format.type == ResponseFormat::Type::kText) return nullptr;
  // A complete value must be able to end: with nothing to end it, the mask would go empty.
  if (p.ignore_eos && p.stop_token_ids.empty())
    throw InvalidArgument("ignore_eos",
                          "ignore_eos needs stop_token_ids when the output is constrained "
                          "(response_format or a forced tool call)");
  std::lock_guard<std::mutex> lock(constraints_mu_);
  if (!constraints_) {
    // The vocabulary trie is built once (about 0.1 s for 128k tokens), on first use.
    constraints_ =
        std::make_unique<grammar::ConstraintCache>(std::make_shared<const grammar::TokenTrie>(
            grammar::TokenTrie::from_tokenizer(*tokenizer_)));
  }
  return constraints_->get(p.response_format);
}

ExecPlan LlmEngine::make_exec_plan_locked(const StepPlan& plan, std::vector<MaskJob>& mask_jobs) {
  ExecPlan exec;
  exec.id = uint64_t(steps_submitted_);
  build_step_input(plan, sched_config_.block_size, exec.input);
  for (const ScheduledSeq& e : plan.entries) {
    auto* rs = static_cast<RequestState*>(e.seq->group().handle);
    if (!rs->started) rs->started = true, --num_unstarted_;
    if (!e.sample) continue;
    const Sequence& seq = *e.seq;
    exec.samples.push_back(make_sample_spec(rs->req.id, rs->req.params, rs->seed,
                                            uint32_t(seq.index()), seq.prompt(), seq.output()));
    auto* ss = static_cast<SampleState*>(seq.handle);
    if (ss && ss->constraint) {
      // The end is offered exactly when the value is complete: eos (unless ignored) and the
      // request's stop_token_ids.
      std::vector<int32_t> end_ids = rs->req.params.stop_token_ids;
      if (!rs->req.params.ignore_eos)
        end_ids.insert(end_ids.end(), eos_ids_.begin(), eos_ids_.end());
      mask_jobs.push_back(
          MaskJob{ss->constraint.get(), std::move(end_ids), exec.samples.size() - 1});
    }
  }
  return exec;
}

TokenMasks LlmEngine::fill_masks(const std::vector<MaskJob>& jobs, size_t rows) const {
  TokenMasks masks(rows);
  for (const MaskJob& j : jobs)
    j.constraint->fill_mask(int32_t(config_.vocab_size), j.end_ids, masks[j.row]);
  return masks;
}

void LlmEngine::land_locked(const StepPlan& plan, ExecResult& r, std::vector<Delivery>& out) {
  const size_t rows = size_t(plan.num_to_sample());
  if (r.tokens.size() != rows || r.logprobs.size() != rows || r.nonfinite.size() != rows)
    throw std::logic_error("executor returned " + std::to_string(r.tokens.size()) + " tokens for " +
                           std::to_string(rows) + " sampled rows");
  // Entries of requests retired while the plan was in flight (aborted, failed) are ignored:
  // their RequestState is gone (handle cleared) and the scheduler skips finished sequences.
  auto state_of = [](const ScheduledSeq& e) {
    return e.seq->finished() ? nullptr : static_cast<RequestState*>(e.seq->group().handle);
  };
  std::vector<RequestState*> live;
  live.reserve(plan.entries.size());
  for (const ScheduledSeq& e : plan.entries) live.push_back(state_of(e));

  // Poisoned requests end before on_step_done, which then skips their entries (no token
  // appended, no KV committed to the prefix cache). Which samples still owe a final delta is
  // read before the scheduler finishes them.
  std::vector<RequestState*> poisoned;
  std::vector<std::pair<RequestState*, std::vector<int>>> failed;
  for (size_t i = 0, k = 0; i < plan.entries.size(); ++i) {
    if (!plan.entries[i].sample) continue;
    RequestState* rs = live[i];
    if (r.nonfinite[k++] && rs &&
        std::find(poisoned.begin(), poisoned.end(), rs) == poisoned.end()) {
      poisoned.push_back(rs);
      std::vector<int> open;
      for (int j = 0; j < rs->group->n(); ++j)
        if (!rs->group->seq(j).finished()) open.push_back(j);
      sched_->abort(rs->req.id);
      failed.emplace_back(rs, std::move(open));
      ++nonfinite_logit_errors_;
    }
  }
  sched_->on_step_done(plan, r.tokens);
  ++steps_;

  std::vector<RequestState*> done;
  for (size_t i = 0, k = 0; i < plan.entries.size(); ++i) {
    const ScheduledSeq& e = plan.entries[i];
    if (!e.sample) continue;
    const size_t row = k++;
    RequestState* rs = live[i];
    if (!rs || std::find(poisoned.begin(), poisoned.end(), rs) != poisoned.end()) continue;
    Sequence& seq = *e.seq;
    if (rs->group->prefill_only()) {
      // A score request: the scheduler finished it with its prompt; its one delta carries
      // the scores of the last prompt token.
      out.emplace_back(rs->sink, score_output(*rs, r, row));
      if (std::find(done.begin(), done.end(), rs) == done.end()) done.push_back(rs);
      continue;
    }
    const int32_t token = r.tokens[row];
    auto* ss = static_cast<SampleState*>(seq.handle);
    if (ss->stop->finished()) continue;
    StopChecker::Step st = ss->stop->push(token);
    // End ids are not grammar input; any other sampled token was allowed by the mask.
    if (ss->constraint && st.finish == FinishReason::kNone) ss->constraint->accept(token);
    ++generation_tokens_;
    ++rs->completion_tokens;
    if (st.finish != FinishReason::kNone && !seq.finished()) sched_->finish(&seq, st.finish);
    if (st.finish == FinishReason::kNone && seq.finished()) {
      // The scheduler hit a length limit the stop checker does not know (cannot happen
      // while both use the same max_tokens and max_model_len; kept as a safety net).
      st.finish = FinishReason::kLength;
    }
    Output o;
    o.request_id = rs->req.id;
    o.index = seq.index();
    o.text = std::move(st.text);
    o.token_ids.push_back(token);
    if (r.logprobs[row]) o.logprobs.push_back(std::move(*r.logprobs[row]));
    o.finish_reason = st.finish;
    o.stop_reason = std::move(st.stop_reason);
    out.emplace_back(rs->sink, std::move(o));
    // Finished requests are retired after the loop: later entries may be their samples.
    if (rs->group->finished() && std::find(done.begin(), done.end(), rs) == done.end())
      done.push_back(rs);
  }
  for (RequestState* rs : done) finish_request_locked(*rs, out);
  for (auto& [rs, open] : failed) {
    std::fprintf(stderr, "[herd] request %s failed: non-finite logits\n", rs->req.id.c_str());
    for (int i : open)
      out.emplace_back(rs->sink, final_abort_output(*rs, i,
                                                    "the model produced a non-finite logit (NaN or "
                                                    "infinity) for this request"));
    finish_request_locked(*rs, out);
  }
  if (check_invariants_) sched_->check_invariants();
}

Output LlmEngine::score_output(const RequestState& rs, const ExecResult& r, size_t row) const {
  const size_t labels = size_t(config_.num_labels);
  if (r.scores.size() < (row + 1) * labels)
    throw std::logic_error("executor returned " + std::to_string(r.scores.size()) +
                           " scores for row " + std::to_string(row) + " of a reward model");
  Output o;
  o.request_id = rs.req.id;
  o.finish_reason = FinishReason::kStop;
  o.scores.assign(r.scores.begin() + long(row * labels),
                  r.scores.begin() + long((row + 1) * labels));
  return o;
}

// The last delta already in `out` for this request becomes the request's final one.
void LlmEngine::finish_request_locked(RequestState& rs, std::vector<Delivery>& out) {
  Usage u;
  u.prompt_tokens = int(rs.req.prompt_ids.size());
  u.completion_tokens = rs.completion_tokens;
  u.cached_prompt_tokens = std::max(0, rs.group->seq(0).num_cached_prompt_tokens());
  bool marked = false;
  for (auto it = out.rbegin(); it != out.rend() && !marked; ++it) {
    if (it->second.request_id == rs.req.id) {
      it->second.request_finished = true;
      it->second.usage = u;
      marked = true;
    }
  }
  if (!marked) {  // every sample had already sent its last delta: send an empty final one
    Output o;
    o.request_id = rs.req.id;
    o.request_finished = true;
    o.usage = u;
    out.emplace_back(rs.sink, std::move(o));
  }
  if (!rs.started) --num_unstarted_;
  // Plans still in flight may name its sequences: they find no state when they land.
  rs.group->handle = nullptr;
  for (int i = 0; i < rs.group->n(); ++i) rs.group->seq(i).handle = nullptr;
  requests_.erase(rs.req.id);  // destroys rs
}

Output LlmEngine::final_abort_output(const RequestState& rs, int index,
                                     const std::string& error) const {
  Output o;
  o.request_id = rs.req.id;
  o.index = index;
  o.finish_reason = FinishReason::kAbort;
  o.error = error;
  return o;
}

void LlmEngine::end_request_locked(RequestState& rs, const std::string& error,
                                   std::vector<Delivery>& out) {
  for (int i = 0; i < rs.group->n(); ++i)
    if (!rs.group->seq(i).finished()) out.emplace_back(rs.sink, final_abort_output(rs, i, error));
  sched_->abort(rs.req.id);
  finish_request_locked(rs, out);
}

void LlmEngine::apply_aborts_locked(std::vector<Delivery>& out) {
  while (!pending_aborts_.empty()) {
    const PendingAbort a = std::move(pending_aborts_.front());
    pending_aborts_.pop_front();
    auto it = requests_.find(a.id);
    // Finished since abort() was called (and maybe the id reused by a newer request): ignored.
    if (it == requests_.end() || it->second->serial != a.serial) continue;
    end_request_locked(*it->second, "", out);
  }
}

void LlmEngine::fail_all_locked(const std::string& error, std::vector<Delivery>& out) {
  std::vector<std::string> ids;
  for (const auto& [id, rs] : requests_) ids.push_back(id);
  for (const std::string& id : ids) end_request_locked(*requests_.at(id), error, out);
}

void LlmEngine::deliver(std::vector<Delivery>& out) {
  for (auto& [sink, o] : out)
    if (sink) sink(o);
  out.clear();
}

}  // namespace herd
