#include "engine/tokenizer/bpe_merges.h"

#include <limits>
#include <queue>

namespace herd {

namespace {
constexpr int32_t kNoMerge = std::numeric_limits<int32_t>::max();
constexpr size_t kScanMaxLen = 32;
}  // namespace

void BpeMerges::add(int32_t left, int32_t right, int32_t rank, int32_t merged) {
  map_[key(left, right)] = Entry{rank, merged};
}

void BpeMerges::apply(std::vector<int32_t>& ids) const {
  if (ids.size() < 2) return;
  if (ids.size() <= kScanMaxLen) {
    apply_scan(ids);
  } else {
    apply_heap(ids);
  }
}

void BpeMerges::apply_scan(std::vector<int32_t>& ids) const {
  if (ids.size() < 2) return;
  // ranks[i]: rank of the pair (ids[i], ids[i+1]).
  std::vector<int32_t> ranks(ids.size() - 1);
  std::vector<int32_t> merged(ids.size() - 1);
  auto fill = [&](size_t i) {
    const Entry* e = find(ids[i], ids[i + 1]);
    ranks[i] = e ? e->rank : kNoMerge;
    merged[i] = e ? e->merged : -1;
  };
  for (size_t i = 0; i + 1 < ids.size(); ++i) fill(i);
  while (!ranks.empty()) {
    size_t best = 0;
    for (size_t i = 1; i < ranks.size(); ++i)
      if (ranks[i] < ranks[best]) best = i;
    if (ranks[best] == kNoMerge) break;
    ids[best] = merged[best];
    ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(best) + 1);
    ranks.erase(ranks.begin() + static_cast<std::ptrdiff_t>(best));
    merged.erase(merged.begin() + static_cast<std::ptrdiff_t>(best));
    if (best > 0) fill(best - 1);
    if (best + 1 < ids.size()) fill(best);
  }
}

void BpeMerges::apply_heap(std::vector<int32_t>& ids) const {
  const size_t n = ids.size();
  if (n < 2) return;
  std::vector<int32_t> prev(n), next(n);
  std::vector<bool> alive(n, true);
  for (size_t i = 0; i < n; ++i) {
    prev[i] = static_cast<int32_t>(i) - 1;
    next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
  }
  struct Cand {
    int32_t rank;
    int32_t pos;  // index of the left symbol (original position: left-to-right order)
    int32_t merged;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  for (size_t i = 0; i + 1 < n; ++i)
    if (const Entry* e = find(ids[i], ids[i + 1]))
      heap.push({e->rank, static_cast<int32_t>(i), e->merged});
  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    if (!alive[c.pos] || next[c.pos] < 0) continue;
    int32_t r = next[c.pos];
    // Skip stale candidates: either side changed since this one was pushed.
    const Entry* e = find(ids[c.pos], ids[r]);
    if (!e || e->merged != c.merged || e->rank != c.rank) continue;
    ids[c.pos] = c.merged;
    alive[r] = false;
    next[c.pos] = next[r];
    if (next[r] >= 0) prev[next[r]] = c.pos;
    if (int32_t p = prev[c.pos]; p >= 0)
      if (const Entry* pe = find(ids[p], ids[c.pos])) heap.push({pe->rank, p, pe->merged});
    if (int32_t q = next[c.pos]; q >= 0)
      if (const Entry* ne = find(ids[c.pos], ids[q])) heap.push({ne->rank, c.pos, ne->merged});
  }
  size_t w = 0;
  for (size_t i = 0; i < n; ++i)
    if (alive[i]) ids[w++] = ids[i];
  ids.resize(w);
}

}  // namespace herd
