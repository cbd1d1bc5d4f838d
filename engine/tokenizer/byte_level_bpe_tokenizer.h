// Byte-level BPE (GPT-2 style, as Llama 3 uses): split regex -> bytes mapped to visible
// characters -> BPE by merge rank. Any byte string round-trips: bytes that are not valid UTF-8
// are tokenized one byte token each (the regex only ever sees valid UTF-8).
#pragma once

#include <array>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>

#include "engine/tokenizer/bpe_merges.h"
#include "engine/tokenizer/pretokenizer_regex.h"
#include "engine/tokenizer/tokenizer_base.h"

namespace herd {

class ByteLevelBpeTokenizer final : public TokenizerBase {
 public:
  // `tj` is the parsed tokenizer.json at `path`; `dir` holds tokenizer_config.json.
  ByteLevelBpeTokenizer(const nlohmann::json& tj, const std::string& path, const std::string& dir);
  bool adds_bos() const override { return false; }

 protected:
  void encode_text(std::string_view text, std::vector<int32_t>& out) const override;

 private:
  void encode_valid(std::string_view text, std::vector<int32_t>& out) const;
  void encode_pretoken(std::string_view piece, std::vector<int32_t>& out) const;

  std::unique_ptr<SplitRegex> regex_;
  BpeMerges merges_;
  StringIdMap vocab_by_bytes_;          // raw bytes -> id (model vocab only)
  std::array<int32_t, 256> byte_id_{};  // single-byte tokens
  bool ignore_merges_ = false;          // a pretoken found whole in the vocab is one token

  // Pretokens that needed BPE, so that repeated words cost one lookup. Bounded; cleared
  // when full.
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace herd
