// The vocabulary as a byte trie in preorder, so that a depth-first walk is a loop over an
// array: a refused prefix skips its whole subtree by jumping to `subtree_end`, and the tokens
// of a subtree are one contiguous range of `token_ids`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace herd {
class Tokenizer;
}

namespace herd::grammar {

class TokenTrie {
 public:
  struct Node {
    uint8_t byte = 0;       // the byte on the edge into this node (root: unused)
    uint16_t depth = 0;     // bytes from the root
    uint32_t subtree_end;   // one past the last node of this node's subtree
    uint32_t tokens_begin;  // token_ids[tokens_begin, next node's tokens_begin): end here
  };

  // token_bytes[id]; ids listed in `excluded` (special tokens) are left out of the trie.
  TokenTrie(std::vector<std::string> token_bytes, const std::vector<bool>& excluded);
  // The vocabulary of a tokenizer: every non-special token's bytes.
  static TokenTrie from_tokenizer(const Tokenizer& tok);

  int32_t vocab_size() const { return int32_t(bytes_.size()); }
  const std::string& bytes(int32_t id) const { return bytes_[size_t(id)]; }
  // nodes()[0] is the root; the last entry is a sentinel with no byte.
  const std::vector<Node>& nodes() const { return nodes_; }
  size_t num_nodes() const { return nodes_.size() - 1; }
  const std::vector<int32_t>& token_ids() const { return token_ids_; }
  // Tokens ending exactly at node i / anywhere in its subtree, as [begin, end) of token_ids().
  std::pair<uint32_t, uint32_t> tokens_at(uint32_t i) const {
    return {nodes_[i].tokens_begin, nodes_[i + 1].tokens_begin};
  }
  std::pair<uint32_t, uint32_t> tokens_under(uint32_t i) const {
    return {nodes_[i].tokens_begin, nodes_[nodes_[i].subtree_end].tokens_begin};
  }

 private:
  std::vector<std::string> bytes_;
  std::vector<Node> nodes_;
  std::vector<int32_t> token_ids_;
};

}  // namespace herd::grammar
