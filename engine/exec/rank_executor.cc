#include "engine/exec/rank_executor.h"

#include <chrono>
#include <cstdio>
#include <stdexcept>

#include "engine/exec/plan_codec.h"

namespace herd {

RankExecutor::RankExecutor(std::unique_ptr<ModelRunner> runner, Communicator& world,
                           const RankLayout& layout, FatalHandler on_fatal)
    : runner_(std::move(runner)),
      world_(world),
      layout_(layout),
      sampler_rank_((layout.pp_size - 1) * layout.tp_size),
      on_fatal_(std::move(on_fatal)) {
  if (world_.rank() != 0) throw std::logic_error("RankExecutor runs on rank 0 only");
  thread_ = std::thread([this] { loop(); });
}

RankExecutor::~RankExecutor() { shutdown(); }

std::future<ExecResult> RankExecutor::submit(ExecPlan plan, std::function<void()> on_done) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) throw std::logic_error("RankExecutor: submit after shutdown");
  if (!failed_.empty()) {
    std::promise<ExecResult> p;
    p.set_exception(std::make_exception_ptr(CommError(failed_)));
    return p.get_future();  // ready at once: the caller need not be woken
  }
  queue_.push_back(Job{std::move(plan), {}, std::move(on_done)});
  std::future<ExecResult> f = queue_.back().result.get_future();
  cv_.notify_one();
  return f;
}

void RankExecutor::set_logits_hook(LogitsHook hook) {
  if (sampler_rank_ != 0)
    throw std::logic_error("the logits hook needs the logits on rank 0 (pipeline size 1)");
  runner_->set_logits_hook(std::move(hook));
}

void RankExecutor::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void RankExecutor::fail_all(const std::string& error) {
  const auto ex = std::make_exception_ptr(CommError(error));
  std::vector<std::function<void()>> wake;
  for (Pending& p : pending_) p.result.set_exception(ex), wake.push_back(std::move(p.on_done));
  pending_.clear();
  {
    std::lock_guard<std::mutex> lock(mu_);
    failed_ = error;
    for (Job& j : queue_) j.result.set_exception(ex), wake.push_back(std::move(j.on_done));
    queue_.clear();
  }
  for (auto& w : wake)
    if (w) w();
}

void RankExecutor::loop() {
  using Clock = std::chrono::steady_clock;
  Clock::time_point oldest_sent{};
  try {
    while (true) {
      Job job;
      bool have_job = false;
      {
        std::unique_lock<std::mutex> lock(mu_);
        if (queue_.empty() && pending_.empty())
          cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (!queue_.empty()) {
          job = std::move(queue_.front());
          queue_.pop_front();
          have_job = true;
        } else if (stopping_ && pending_.empty()) {
          break;
        }
      }
      if (have_job) {
        // Pending from now on, so that a failure below fails this plan too (fail_all).
        if (pending_.empty()) oldest_sent = Clock::now();
        pending_.push_back(Pending{job.plan.id, std::move(job.result), std::move(job.on_done)});
        const std::vector<uint8_t> bytes = encode_plan(job.plan);
        for (int r = 1; r < world_.size(); ++r) world_.send_bytes(bytes, r, kTagPlan);
        std::optional<ExecResult> mine = runner_->run_stage(job.plan);
        if (mine) {  // pipeline size 1: rank 0 samples, and plans complete in order here
          Pending done = std::move(pending_.back());
          pending_.pop_back();
          done.result.set_value(std::move(*mine));
          if (done.on_done) done.on_done();
        }
        continue;
      }
      // Nothing new to send: collect the oldest plan's tokens from the sampling rank, polling
      // so that a plan submitted meanwhile is sent at once (keeps every stage busy).
      if (world_.poll_bytes(sampler_rank_, kTagResult)) {
        ExecResult r = decode_result(world_.recv_bytes(sampler_rank_, kTagResult));
        if (r.id != pending_.front().id)
          throw Error("rank " + std::to_string(sampler_rank_) + " answered plan " +
                      std::to_string(r.id) + " while plan " + std::to_string(pending_.front().id) +
                      " was due");
        Pending done = std::move(pending_.front());
        pending_.pop_front();
        done.result.set_value(std::move(r));
        if (done.on_done) done.on_done();
        oldest_sent = Clock::now();
        continue;
      }
      const auto waited =
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - oldest_sent);
      if (waited.count() > world_.timeout_ms())
        throw CommError("rank 0: no tokens from rank " + std::to_string(sampler_rank_) +
                        " (the last pipeline stage) within " + std::to_string(world_.timeout_ms()) +
                        " ms for plan " + std::to_string(pending_.front().id));
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::microseconds(200), [&] { return !queue_.empty(); });
    }
    const std::vector<uint8_t> stop = encode_stop();
    for (int r = 1; r < world_.size(); ++r) world_.send_bytes(stop, r, kTagPlan);
  } catch (const std::exception& e) {
    const std::string error = std::string("parallel step failed: ") + e.what();
    std::fprintf(stderr, "[herd] %s\n", error.c_str());
    fail_all(error);
    if (on_fatal_) on_fatal_(error);
  }
}

void run_worker_rank(ModelRunner& runner, Communicator& world, const RankLayout& layout) {
  while (true) {
    const std::vector<uint8_t> bytes = world.recv_bytes(0, kTagPlan, /*wait_forever=*/true);
    if (message_kind(bytes) == RankMessage::kStop) return;
    const ExecPlan plan = decode_plan(bytes);
    std::optional<ExecResult> r = runner.run_stage(plan);
    if (r && layout.samples()) world.send_bytes(encode_result(*r), 0, kTagResult);
  }
}

}  // namespace herd
