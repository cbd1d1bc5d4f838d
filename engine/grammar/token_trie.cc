#include "engine/grammar/token_trie.h"

#include <algorithm>
#include <numeric>

#include "engine/tokenizer/tokenizer.h"

namespace herd::grammar {

TokenTrie::TokenTrie(std::vector<std::string> token_bytes, const std::vector<bool>& excluded)
    : bytes_(std::move(token_bytes)) {
  std::vector<int32_t> order;
  for (size_t id = 0; id < bytes_.size(); ++id)
    if (!(id < excluded.size() && excluded[id]) && !bytes_[id].empty())
      order.push_back(int32_t(id));
  // Lexicographic byte order visits the trie in preorder (a prefix sorts before its
  // extensions), so nodes and token ids can be appended as they are met.
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return bytes_[size_t(a)] < bytes_[size_t(b)]; });
  nodes_.push_back(Node{0, 0, 0, 0});
  std::vector<uint32_t> path{0};  // path[d] = the node at depth d on the current branch
  std::string prev;
  for (int32_t id : order) {
    const std::string& s = bytes_[size_t(id)];
    size_t common = 0;
    while (common < s.size() && common < prev.size() && s[common] == prev[common]) ++common;
    while (path.size() > common + 1) {
      nodes_[path.back()].subtree_end = uint32_t(nodes_.size());
      path.pop_back();
    }
    for (size_t d = common; d < s.size(); ++d) {
      nodes_.push_back(Node{uint8_t(s[d]), uint16_t(std::min<size_t>(d + 1, 65535)), 0,
                            uint32_t(token_ids_.size())});
      path.push_back(uint32_t(nodes_.size() - 1));
    }
    token_ids_.push_back(id);
    prev = s;
  }
  while (!path.empty()) {
    nodes_[path.back()].subtree_end = uint32_t(nodes_.size());
    path.pop_back();
  }
  nodes_.push_back(Node{0, 0, uint32_t(nodes_.size() + 1), uint32_t(token_ids_.size())});
}

TokenTrie TokenTrie::from_tokenizer(const Tokenizer& tok) {
  const int32_t n = tok.vocab_size();
  std::vector<std::string> bytes(static_cast<size_t>(n));
  std::vector<bool> excluded(size_t(n), false);
  for (int32_t id = 0; id < n; ++id) {
    excluded[size_t(id)] = tok.is_special(id);
    if (!excluded[size_t(id)]) bytes[size_t(id)] = tok.token_bytes(id);
  }
  return TokenTrie(std::move(bytes), excluded);
}

}  // namespace herd::grammar
