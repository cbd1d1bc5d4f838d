#include "server/engine_client.h"

#include <random>

namespace herd::server {

std::string new_request_id(const std::string& prefix) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  static const char* hex = "0123456789abcdef";
  std::string id = prefix;
  for (int i = 0; i < 2; ++i) {
    uint64_t v = rng();
    for (int j = 0; j < 16; ++j, v >>= 4) id += hex[v & 15];
  }
  return id;
}

std::shared_ptr<RequestStream> EngineClient::submit(std::vector<Request> reqs) {
  std::vector<std::string> ids;
  for (auto& r : reqs) {
    r.priority = priority_;
    ids.push_back(r.id);
  }
  auto stream = std::make_shared<RequestStream>(ids, &metrics_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    live_[stream.get()] = stream;
  }
  for (size_t i = 0; i < reqs.size(); ++i) {
    try {
      engine_.add_request(std::move(reqs[i]), stream->sink_for(static_cast<int>(i)));
    } catch (...) {
      for (size_t j = i; j < reqs.size(); ++j) stream->mark_failed(static_cast<int>(j));
      for (size_t j = 0; j < i; ++j) engine_.abort(ids[j]);
      release(*stream);
      throw;
    }
  }
  return stream;
}

void EngineClient::abort(const RequestStream& stream) {
  for (const auto& id : stream.request_ids()) engine_.abort(id);
}

void EngineClient::abort_all() {
  std::vector<std::shared_ptr<RequestStream>> streams;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [p, w] : live_)
      if (auto s = w.lock()) streams.push_back(s);
  }
  for (auto& s : streams)
    if (!s->done()) abort(*s);
}

size_t EngineClient::live() const {
  std::lock_guard<std::mutex> lock(mu_);
  return live_.size();
}

void EngineClient::release(const RequestStream& stream) {
  std::lock_guard<std::mutex> lock(mu_);
  live_.erase(&stream);
}

}  // namespace herd::server
