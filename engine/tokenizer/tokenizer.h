// Tokenizer: text <-> token ids. Two families behind one interface: byte-level BPE from a
// Hugging Face tokenizer.json (Llama 3) and sentencepiece-style BPE with byte fallback
// (Llama 2 / TinyLlama / llama2.c). load_tokenizer() picks the family from tokenizer.json.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace herd {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Plain text never produces special tokens unless allow_special is set, in which case
  // special-token strings in the text (e.g. "<|eot_id|>") map to their ids.
  virtual std::vector<int32_t> encode(std::string_view text, bool allow_special = false) const = 0;
  // The bytes of one token (special tokens: their text; byte-fallback tokens: the raw byte).
  // Concatenating token_bytes over a sequence and then applying decode-time cleanup gives
  // decode(); token bytes may be partial UTF-8.
  virtual std::string token_bytes(int32_t id) const = 0;
  // Full decode of a sequence, as Hugging Face decodes it with skip_special_tokens=false.
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  virtual int32_t vocab_size() const = 0;
  virtual std::optional<int32_t> token_id(std::string_view token_text) const = 0;
  virtual bool is_special(int32_t id) const = 0;
  virtual int32_t bos_id() const = 0;  // -1 when none
  virtual int32_t eos_id() const = 0;  // -1 when none
  // True when encode() itself puts BOS first, so callers must not prepend it again. No
  // tokenizer here does: Hugging Face adds BOS in a post-processor (add_special_tokens), which
  // herd leaves to the caller (the server's add_special_tokens / add_bos, encode_prompt), for
  // byte-level and sentencepiece families alike. (Sentencepiece ones add a leading "▁".)
  virtual bool adds_bos() const = 0;
};

// Loads DIR/tokenizer.json (and tokenizer_config.json when present); without tokenizer.json,
// DIR/tokenizer.model (a sentencepiece BPE ModelProto, e.g. Meta's Llama 2).
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& dir);

// Streams text for a growing sequence of ids without ever emitting a broken UTF-8 sequence:
// push(id) returns the newly completed text (possibly empty); flush() returns what is left
// (invalid trailing bytes become U+FFFD).
class IncrementalDetokenizer {
 public:
  explicit IncrementalDetokenizer(const Tokenizer& tok, bool skip_special = false);
  std::string push(int32_t id);
  std::string flush();

 private:
  const Tokenizer& tok_;
  bool skip_special_;
  std::vector<int32_t> ids_;
  size_t emitted_bytes_ = 0;  // bytes of decode(ids_) already returned
  // The first kept token is decoded alone (decode-time cleanup such as the sentencepiece
  // leading-space strip applies there); later ones add their token_bytes. pending_ holds the
  // bytes not yet returned: only a trailing incomplete UTF-8 sequence (at most 3 bytes).
  bool started_ = false;
  std::string pending_;
};

}  // namespace herd
