#include "engine/api/prompt.h"

#include "engine/tokenizer/tokenizer.h"

namespace herd {

std::vector<int32_t> encode_prompt(const Tokenizer& tok, std::string_view text, bool add_bos,
                                   bool allow_special) {
  std::vector<int32_t> ids;
  if (add_bos && tok.bos_id() >= 0) ids.push_back(tok.bos_id());
  if (text.empty()) return ids;
  std::vector<int32_t> body = tok.encode(text, allow_special);
  // A chat prompt already starts with <|begin_of_text|>: never send BOS twice.
  if (!ids.empty() && !body.empty() && body.front() == ids.front()) ids.clear();
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

}  // namespace herd
