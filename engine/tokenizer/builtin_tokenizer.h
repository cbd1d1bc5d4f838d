// A deterministic byte-level BPE tokenizer.json for tiny test models that need no download.
// Layout: ids 0..255 are the 256 bytes (GPT-2 byte-level text), then merges fill ids up to
// vocab_size - 256 (common English letter pairs and words first, then further pairs, always
// in the same order), then 256 special tokens at base = vocab_size - 256 laid out like
// Llama 3.1's: base+0 <|begin_of_text|>, +1 <|end_of_text|>, +2/+3 reserved_special_token_0/1,
// +4 <|finetune_right_pad_id|>, +5 reserved_2, +6 <|start_header_id|>, +7 <|end_header_id|>,
// +8 <|eom_id|>, +9 <|eot_id|>, +10 <|python_tag|>, the rest <|reserved_special_token_N|>.
// load_tokenizer() reads the files these functions produce.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

namespace herd {

// tokenizer.json; vocab_size >= 512 or herd::InvalidArgument.
nlohmann::json make_byte_level_tokenizer_json(int vocab_size);

// tokenizer_config.json naming BOS <|begin_of_text|> and EOS <|eot_id|> (instruct) or
// <|end_of_text|> (base).
nlohmann::json make_byte_level_tokenizer_config_json(int vocab_size, bool instruct = true);

// The ids a generation_config.json "eos_token_id" list holds for this layout, as Llama 3.1
// ships it: <|end_of_text|>, <|eom_id|>, <|eot_id|>.
std::vector<int32_t> builtin_eos_token_ids(int vocab_size);

}  // namespace herd
