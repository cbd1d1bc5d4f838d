// What both tokenizer families share: the id <-> token tables, added/special tokens, BOS/EOS,
// and the encode loop that splits out added tokens before the family's own encoder runs.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/tokenizer/added_tokens.h"
#include "engine/tokenizer/tokenizer.h"

namespace herd {

// std::string keys looked up by string_view without a copy.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using StringIdMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class TokenizerBase : public Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text, bool allow_special) const final;
  std::string token_bytes(int32_t id) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(bytes_.size()); }
  std::optional<int32_t> token_id(std::string_view token_text) const override;
  bool is_special(int32_t id) const override;
  int32_t bos_id() const override { return bos_; }
  int32_t eos_id() const override { return eos_; }

 protected:
  // Appends the ids of a run of plain text (no added tokens in it).
  virtual void encode_text(std::string_view text, std::vector<int32_t>& out) const = 0;

  void reserve_tokens(size_t n) {
    bytes_.reserve(n);
    names_.reserve(n);
    special_.reserve(n);
    name_to_id_.reserve(n);
  }
  // Records token `id`: its name as tokenizer.json writes it and the bytes it decodes to.
  void set_token(int32_t id, std::string name, std::string bytes);
  // Reads "added_tokens" (they decode to their literal content).
  void load_added_tokens(const nlohmann::json& tj, const std::string& path);
  // Llama 3.1 names for ids the older files call reserved, then BOS/EOS from
  // tokenizer_config.json or the conventional names.
  void finish(const std::string& dir, const std::vector<std::string>& default_bos,
              const std::vector<std::string>& default_eos);

  std::vector<std::string> bytes_;  // id -> decoded bytes
  std::vector<std::string> names_;  // id -> name in tokenizer.json
  std::vector<uint8_t> special_;    // id -> special flag
  StringIdMap name_to_id_;
  AddedTokenMatcher added_;
  int32_t bos_ = -1;
  int32_t eos_ = -1;
};

}  // namespace herd

namespace herd {

// One entry of model.merges, written either "left right" or ["left", "right"].
std::pair<std::string, std::string> parse_merge(const nlohmann::json& m, const std::string& path,
                                                size_t index);

// Reads model.merges into `merges`, resolving names through `vocab` (name -> id).
void load_merges(const nlohmann::json& model, const StringIdMap& vocab, const std::string& path,
                 class BpeMerges& merges);

}  // namespace herd
