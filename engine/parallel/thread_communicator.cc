#include "engine/parallel/thread_communicator.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

namespace herd {
namespace {

using Clock = std::chrono::steady_clock;

// State shared by the n threads of one group.
struct Group {
  explicit Group(int n, int64_t timeout) : size(n), timeout_ms(timeout), posted(size_t(n)) {}

  const int size;
  const int64_t timeout_ms;
  std::mutex mu;
  std::condition_variable cv;
  // Generation barrier.
  int arrived = 0;
  uint64_t generation = 0;
  bool broken = false;
  std::string broken_by;
  // What each rank posted for the collective in progress.
  std::vector<const void*> posted;
  std::vector<std::pair<int, int>> split_args;  // (color, key) per rank
  std::map<int, std::shared_ptr<Group>> split_groups;
  // Point-to-point mailboxes keyed by (src, dst, tag); fixed-size and byte messages apart so
  // that a send() can never be taken by a recv_bytes() or the other way round.
  using Key = std::tuple<int, int, int>;
  std::map<Key, std::deque<std::vector<uint8_t>>> fixed, bytes;
};

class ThreadCommunicator final : public Communicator {
 public:
  ThreadCommunicator(std::shared_ptr<Group> g, int rank) : g_(std::move(g)), rank_(rank) {}

  int rank() const override { return rank_; }
  int size() const override { return g_->size; }
  int64_t timeout_ms() const override { return g_->timeout_ms; }

  void all_reduce_sum(void* data, size_t count, DType dtype) override {
    check_float(dtype, "all_reduce_sum");
    post(data, "all_reduce_sum");
    // Every rank sums all contributions in rank order into its own fp32 buffer (identical
    // results everywhere), and writes back only after all ranks have read (second barrier).
    std::vector<float> sum(count, 0.0f);
    for (int r = 0; r < g_->size; ++r) {
      const void* src = g_->posted[size_t(r)];
      for (size_t i = 0; i < count; ++i) sum[i] += load(src, i, dtype);
    }
    wait("all_reduce_sum");
    for (size_t i = 0; i < count; ++i) store(data, i, dtype, sum[i]);
  }

  void all_gather(const void* send, void* recv, size_t count, DType dtype) override {
    const size_t chunk = count * dtype_size(dtype);
    post(send, "all_gather");
    for (int r = 0; r < g_->size; ++r)
      std::memcpy(static_cast<char*>(recv) + size_t(r) * chunk, g_->posted[size_t(r)], chunk);
    wait("all_gather");
  }

  void broadcast(void* data, size_t bytes, int root) override {
    check_peer(root, "broadcast");
    post(data, "broadcast");
    if (rank_ != root) std::memcpy(data, g_->posted[size_t(root)], bytes);
    wait("broadcast");
  }

  void send(const void* data, size_t bytes, int peer, int tag) override {
    check_peer(peer, "send");
    const auto* p = static_cast<const uint8_t*>(data);
    deliver(g_->fixed, std::vector<uint8_t>(p, p + bytes), peer, tag);
  }

  void recv(void* data, size_t bytes, int peer, int tag) override {
    check_peer(peer, "recv");
    std::vector<uint8_t> m = take(g_->fixed, peer, tag, false, "recv");
    if (m.size() != bytes)
      throw CommError("recv from rank " + std::to_string(peer) + " tag " + std::to_string(tag) +
                      ": expected " + std::to_string(bytes) + " bytes, the message has " +
                      std::to_string(m.size()));
    std::memcpy(data, m.data(), bytes);
  }

  void send_bytes(const std::vector<uint8_t>& bytes, int peer, int tag) override {
    check_peer(peer, "send_bytes");
    deliver(g_->bytes, bytes, peer, tag);
  }

  std::vector<uint8_t> recv_bytes(int peer, int tag, bool wait_forever) override {
    check_peer(peer, "recv_bytes");
    return take(g_->bytes, peer, tag, wait_forever, "recv_bytes");
  }
  bool poll_bytes(int peer, int tag) override {
    check_peer(peer, "poll_bytes");
    std::lock_guard<std::mutex> lock(g_->mu);
    const auto it = g_->bytes.find({peer, rank_, tag});
    return it != g_->bytes.end() && !it->second.empty();
  }

  void barrier() override { wait("barrier"); }

  std::unique_ptr<Communicator> split(int color, int key) override {
    {
      std::lock_guard<std::mutex> lock(g_->mu);
      if (g_->split_args.empty()) g_->split_args.resize(size_t(g_->size));
      g_->split_args[size_t(rank_)] = {color, key};
    }
    wait("split");
    // Members of my color ordered by (key, old rank); the first creates the new group.
    std::vector<std::pair<int, int>> members;  // (key, old rank)
    for (int r = 0; r < g_->size; ++r)
      if (g_->split_args[size_t(r)].first == color)
        members.emplace_back(g_->split_args[size_t(r)].second, r);
    std::sort(members.begin(), members.end());
    int new_rank = 0;
    while (members[size_t(new_rank)].second != rank_) ++new_rank;
    if (new_rank == 0) {
      std::lock_guard<std::mutex> lock(g_->mu);
      g_->split_groups[color] = std::make_shared<Group>(int(members.size()), g_->timeout_ms);
    }
    wait("split");
    std::shared_ptr<Group> child;
    {
      std::lock_guard<std::mutex> lock(g_->mu);
      child = g_->split_groups.at(color);
    }
    wait("split");
    // Everyone has its group: clear for the next split (nobody touches these until the next
    // split's first barrier, which this rank has not reached yet).
    if (rank_ == 0) {
      std::lock_guard<std::mutex> lock(g_->mu);
      g_->split_groups.clear();
    }
    return std::make_unique<ThreadCommunicator>(std::move(child), new_rank);
  }

 private:
  static void check_float(DType dt, const char* op) {
    if (dt != DType::kF32 && dt != DType::kF16 && dt != DType::kBF16)
      throw CommError(std::string(op) + ": dtype must be F32, F16 or BF16, got " +
                      std::string(dtype_name(dt)));
  }
  static float load(const void* p, size_t i, DType dt) {
    switch (dt) {
      case DType::kF16:
        return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
      case DType::kBF16:
        return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
      default:
        return static_cast<const float*>(p)[i];
    }
  }
  static void store(void* p, size_t i, DType dt, float v) {
    switch (dt) {
      case DType::kF16:
        static_cast<uint16_t*>(p)[i] = f32_to_f16(v);
        break;
      case DType::kBF16:
        static_cast<uint16_t*>(p)[i] = f32_to_bf16(v);
        break;
      default:
        static_cast<float*>(p)[i] = v;
        break;
    }
  }

  void check_peer(int peer, const char* op) const {
    if (peer < 0 || peer >= g_->size)
      throw CommError(std::string(op) + ": peer " + std::to_string(peer) +
                      " outside the group of " + std::to_string(g_->size));
  }

  [[noreturn]] void fail(std::unique_lock<std::mutex>&, const std::string& what) {
    if (!g_->broken) {
      g_->broken = true;
      g_->broken_by = what;
    }
    g_->cv.notify_all();
    throw CommError(what);
  }

  void throw_if_broken(std::unique_lock<std::mutex>& lock, const char* op) {
    if (g_->broken)
      fail(lock, std::string(op) + " on rank " + std::to_string(rank_) + ": the group is broken (" +
                     g_->broken_by + ")");
  }

  // Posts this rank's buffer for the collective and waits until every rank has posted.
  void post(const void* data, const char* op) {
    {
      std::lock_guard<std::mutex> lock(g_->mu);
      g_->posted[size_t(rank_)] = data;
    }
    wait(op);
  }

  // Generation barrier with a deadline.
  void wait(const char* op) {
    std::unique_lock<std::mutex> lock(g_->mu);
    throw_if_broken(lock, op);
    const uint64_t gen = g_->generation;
    if (++g_->arrived == g_->size) {
      g_->arrived = 0;
      ++g_->generation;
      g_->cv.notify_all();
      return;
    }
    const auto deadline = Clock::now() + std::chrono::milliseconds(g_->timeout_ms);
    if (!g_->cv.wait_until(lock, deadline, [&] { return g_->generation != gen || g_->broken; })) {
      fail(lock, std::string(op) + " on rank " + std::to_string(rank_) + ": timed out after " +
                     std::to_string(g_->timeout_ms) + " ms waiting for the other " +
                     std::to_string(g_->size - g_->arrived) + " rank(s) of " +
                     std::to_string(g_->size));
    }
    if (g_->generation == gen) throw_if_broken(lock, op);
  }

  void deliver(std::map<Group::Key, std::deque<std::vector<uint8_t>>>& box,
               std::vector<uint8_t> msg, int peer, int tag) {
    std::unique_lock<std::mutex> lock(g_->mu);
    throw_if_broken(lock, "send");
    box[{rank_, peer, tag}].push_back(std::move(msg));
    g_->cv.notify_all();
  }

  std::vector<uint8_t> take(std::map<Group::Key, std::deque<std::vector<uint8_t>>>& box, int peer,
                            int tag, bool wait_forever, const char* op) {
    std::unique_lock<std::mutex> lock(g_->mu);
    auto& q = box[{peer, rank_, tag}];
    auto ready = [&] { return !q.empty() || g_->broken; };
    if (wait_forever) {
      g_->cv.wait(lock, ready);
    } else if (!g_->cv.wait_for(lock, std::chrono::milliseconds(g_->timeout_ms), ready)) {
      fail(lock, std::string(op) + " on rank " + std::to_string(rank_) + ": timed out after " +
                     std::to_string(g_->timeout_ms) + " ms waiting for rank " +
                     std::to_string(peer) + " tag " + std::to_string(tag));
    }
    if (q.empty()) throw_if_broken(lock, op);
    std::vector<uint8_t> m = std::move(q.front());
    q.pop_front();
    return m;
  }

  std::shared_ptr<Group> g_;
  int rank_;
};

}  // namespace

std::vector<std::unique_ptr<Communicator>> make_thread_group(int n, int64_t timeout_ms) {
  if (n < 1) throw CommError("make_thread_group: n must be >= 1, got " + std::to_string(n));
  auto g = std::make_shared<Group>(n, timeout_ms);
  std::vector<std::unique_ptr<Communicator>> out;
  for (int r = 0; r < n; ++r) out.push_back(std::make_unique<ThreadCommunicator>(g, r));
  return out;
}

}  // namespace herd
