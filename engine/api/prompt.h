// Turning user text into prompt token ids the way each tokenizer family expects.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace herd {

class Tokenizer;

// BOS (when the tokenizer has one and add_bos) followed by the text's tokens; an empty text
// gives BOS alone. Special-token strings in the text are only honoured when allow_special.
std::vector<int32_t> encode_prompt(const Tokenizer& tok, std::string_view text, bool add_bos,
                                   bool allow_special = false);

}  // namespace herd
