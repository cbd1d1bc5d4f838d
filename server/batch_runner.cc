#include "server/batch_runner.h"

#include <chrono>
#include <condition_variable>
#include <list>
#include <memory>
#include <mutex>

#include "server/route_call.h"

namespace herd::server {

namespace {
// Engine threads say "something is ready"; the runner sleeps until then (or a short timeout,
// which also bounds how late it sees `stop`).
struct Wakeup {
  std::mutex mu;
  std::condition_variable cv;
  bool ready = false;
  void notify() {
    {
      std::lock_guard<std::mutex> lock(mu);
      ready = true;
    }
    cv.notify_all();
  }
  void wait() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, std::chrono::milliseconds(50), [&] { return ready; });
    ready = false;
  }
};

struct InFlight {
  BatchLine line;
  std::unique_ptr<RouteCall> call;
};
}  // namespace

bool BatchRunner::run(const std::function<std::optional<BatchLine>()>& next,
                      const std::function<void(const BatchResult&)>& on_result,
                      const std::atomic<bool>& stop) {
  auto wake = std::make_shared<Wakeup>();
  std::list<InFlight> live;
  std::list<BatchLine> retry;  // answered 429 (the engine's queue was full): run again later
  bool input_done = false;
  while (true) {
    if (stop) return false;  // `live` aborts its calls as it is destroyed
    while (static_cast<int>(live.size()) < max_in_flight_) {
      std::optional<BatchLine> line;
      if (!retry.empty()) {
        line = std::move(retry.front());
        retry.pop_front();
      } else if (!input_done) {
        line = next();
        if (!line) input_done = true;
      }
      if (!line) break;
      live.push_back(InFlight{std::move(*line), nullptr});
      InFlight& f = live.back();
      f.call =
          std::make_unique<RouteCall>(ctx_, f.line.url, f.line.body, [wake] { wake->notify(); });
    }
    if (input_done && live.empty() && retry.empty()) return true;
    bool requeued = false;
    for (auto it = live.begin(); it != live.end();) {
      if (!it->call->poll()) {
        ++it;
        continue;
      }
      const RouteCall& c = *it->call;
      if (c.status() == 429) {
        // A full queue is back-pressure, not an answer (interactive traffic has priority).
        retry.push_back(std::move(it->line));
        it = live.erase(it);
        requeued = true;
        continue;
      }
      on_result(BatchResult{
          it->line, batch_response_line(it->line.custom_id, c.status(), c.request_id(), c.body()),
          c.status() == 200});
      it = live.erase(it);
    }
    if (requeued || (!live.empty() && ((input_done && retry.empty()) ||
                                       static_cast<int>(live.size()) >= max_in_flight_)))
      wake->wait();
  }
}

}  // namespace herd::server
