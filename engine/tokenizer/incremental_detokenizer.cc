// IncrementalDetokenizer: streams text as tokens arrive. Decoding is "concatenate token bytes,
// then clean up the start" (the sentencepiece decoder strips one leading space), so the first
// kept token is decoded alone through Tokenizer::decode and every later one contributes its
// token_bytes. Only undecided bytes (a trailing, still-incomplete UTF-8 sequence: at most 3)
// are held back, so each push costs O(token length).
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/utf8.h"

namespace herd {

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tok, bool skip_special)
    : tok_(tok), skip_special_(skip_special) {}

std::string IncrementalDetokenizer::push(int32_t id) {
  if (skip_special_ && tok_.is_special(id)) return {};
  if (!started_) {
    pending_ += tok_.decode({id});
    started_ = true;
  } else {
    pending_ += tok_.token_bytes(id);
  }
  size_t n = utf8::decided_prefix(pending_);
  std::string out = utf8::lossy(std::string_view(pending_).substr(0, n));
  pending_.erase(0, n);
  emitted_bytes_ += out.size();
  return out;
}

std::string IncrementalDetokenizer::flush() {
  std::string out = utf8::lossy(pending_);
  pending_.clear();
  emitted_bytes_ += out.size();
  return out;
}

}  // namespace herd
