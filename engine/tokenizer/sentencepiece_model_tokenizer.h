// A sentencepiece BPE model read straight from tokenizer.model (Meta's Llama 2, TinyLlama, and
// the HF directories that carry no tokenizer.json). Encodes as sentencepiece's bpe_model.cc
// does: normalize (dummy "▁" prefix, spaces -> "▁"), split into characters, then repeatedly
// merge the adjacent pair whose concatenation is a piece with the highest score (leftmost on
// ties), resegment UNUSED pieces, and fall back to <0xHH> byte pieces for what is left
// outside the vocabulary. Control pieces (<s>, </s>) and <unk> are special tokens, matched in
// text only with allow_special; USER_DEFINED pieces are always matched, as Hugging Face's
// conversion makes them non-special added tokens.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>

#include "engine/tokenizer/sentencepiece_model_proto.h"
#include "engine/tokenizer/tokenizer_base.h"

namespace herd {

class SentencepieceModelTokenizer final : public TokenizerBase {
 public:
  // `path` is the tokenizer.model the proto came from; `dir` may hold tokenizer_config.json.
  SentencepieceModelTokenizer(const SentencepieceModelProto& m, const std::string& path,
                              const std::string& dir);
  // encode() never prepends BOS (the caller does, as for Llama 3); see Tokenizer::adds_bos.
  bool adds_bos() const override { return false; }
  std::string decode(const std::vector<int32_t>& ids) const override;

 protected:
  void encode_text(std::string_view text, std::vector<int32_t>& out) const override;

 private:
  // Appends the id of a final BPE symbol: a piece, or its bytes (byte fallback), or <unk>.
  void emit_unknown(std::string_view piece, std::vector<int32_t>& out) const;

  struct PieceInfo {
    int32_t id;
    float score;
    bool unused;
  };
  std::unordered_map<std::string, PieceInfo, StringHash, std::equal_to<>> pieces_;
  std::array<int32_t, 256> byte_id_{};  // <0xHH> pieces; -1 when absent
  bool byte_fallback_ = false;
  int32_t unk_id_ = -1;
  bool add_dummy_prefix_ = true;
  bool remove_extra_whitespaces_ = false;
  bool escape_whitespaces_ = true;
  bool whitespace_as_suffix_ = false;
};

// Loads DIR/tokenizer.model (load_tokenizer calls it when DIR has no tokenizer.json).
std::unique_ptr<Tokenizer> load_sentencepiece_model(const std::string& dir);

}  // namespace herd
