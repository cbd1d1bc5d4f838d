#include "engine/tokenizer/added_tokens.h"

#include <algorithm>

namespace herd {

void AddedTokenMatcher::add(std::string content, int32_t id, bool special) {
  if (content.empty()) return;
  entries_.push_back({std::move(content), id, special});
  reindex();
}

void AddedTokenMatcher::remove_id(int32_t id) {
  std::erase_if(entries_, [&](const Entry& e) { return e.id == id; });
  reindex();
}

void AddedTokenMatcher::reindex() {
  for (auto& v : by_first_byte_) v.clear();
  any_plain_ = false;
  for (uint32_t i = 0; i < entries_.size(); ++i) {
    by_first_byte_[static_cast<uint8_t>(entries_[i].content[0])].push_back(i);
    any_plain_ |= !entries_[i].special;
  }
  for (auto& v : by_first_byte_)
    std::stable_sort(v.begin(), v.end(), [&](uint32_t a, uint32_t b) {
      return entries_[a].content.size() > entries_[b].content.size();
    });
}

std::vector<AddedTokenMatcher::Piece> AddedTokenMatcher::split(std::string_view text,
                                                               bool allow_special) const {
  std::vector<Piece> out;
  if (!allow_special && !any_plain_) {
    if (!text.empty()) out.push_back({text, -1});
    return out;
  }
  size_t run_start = 0;
  size_t i = 0;
  while (i < text.size()) {
    const Entry* hit = nullptr;
    for (uint32_t k : by_first_byte_[static_cast<uint8_t>(text[i])]) {
      const Entry& e = entries_[k];
      if ((allow_special || !e.special) && text.compare(i, e.content.size(), e.content) == 0) {
        hit = &e;
        break;
      }
    }
    if (!hit) {
      ++i;
      continue;
    }
    if (i > run_start) out.push_back({text.substr(run_start, i - run_start), -1});
    out.push_back({text.substr(i, hit->content.size()), hit->id});
    i += hit->content.size();
    run_start = i;
  }
  if (run_start < text.size()) out.push_back({text.substr(run_start), -1});
  return out;
}

}  // namespace herd
