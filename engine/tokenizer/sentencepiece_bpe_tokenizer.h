// Sentencepiece-style BPE as Hugging Face expresses it for Llama 2 / TinyLlama: normalizer
// Prepend("▁") + Replace(" " -> "▁") (or the older Metaspace pre-tokenizer), BPE over
// characters with byte fallback (<0xHH> tokens for characters missing from the vocab), and a
// decoder that maps "▁" back to spaces and strips the one leading space.
#pragma once

#include <array>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/tokenizer/bpe_merges.h"
#include "engine/tokenizer/tokenizer_base.h"

namespace herd {

class SentencepieceBpeTokenizer final : public TokenizerBase {
 public:
  SentencepieceBpeTokenizer(const nlohmann::json& tj, const std::string& path,
                            const std::string& dir);
  // encode() never prepends BOS (the caller does, as for Llama 3); see Tokenizer::adds_bos.
  bool adds_bos() const override { return false; }
  std::string decode(const std::vector<int32_t>& ids) const override;

 protected:
  void encode_text(std::string_view text, std::vector<int32_t>& out) const override;

 private:
  void read_normalizer(const nlohmann::json& n, const std::string& path);
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  BpeMerges merges_;
  StringIdMap vocab_;                   // piece ("▁the") -> id
  std::array<int32_t, 256> byte_id_{};  // <0xHH> tokens; -1 when absent
  bool byte_fallback_ = false;
  int32_t unk_id_ = -1;
  bool fuse_unk_ = false;
  std::string prepend_;              // prepended to every non-empty text run
  std::string space_replacement_;    // what " " becomes; empty: unchanged
  bool split_on_space_ = false;      // Metaspace pre-tokenizer: BPE each "▁word" alone
  size_t strip_leading_spaces_ = 0;  // decoder Strip(" ", start=n)
};

}  // namespace herd
