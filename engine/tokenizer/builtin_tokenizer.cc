#include "engine/tokenizer/builtin_tokenizer.h"

#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/common/error.h"
#include "engine/tokenizer/byte_level.h"
#include "engine/tokenizer/pretokenizer_regex.h"

namespace herd {

namespace {

// Frequent English words (as TinyStories-like text uses them); each is added with and without
// a leading space, built left to right from its letters.
const char* const kWords[] = {
    "the",    "and",    "to",     "a",     "was",  "he",   "she",   "it",    "of",   "in",   "they",
    "her",    "his",    "that",   "said",  "with", "you",  "for",   "on",    "is",   "had",  "day",
    "big",    "little", "play",   "happy", "saw",  "very", "went",  "one",   "time", "upon", "Once",
    "there",  "were",   "not",    "but",   "be",   "at",   "so",    "all",   "up",   "Tom",  "Lily",
    "friend", "mom",    "wanted", "named", "what", "when", "we",    "have",  "are",  "from", "this",
    "can",    "do",     "good",   "like",  "go",   "out",  "about", "would", "them", "then", "some",
    "no",     "which",  "their",  "will",  "an",   "by",   "is",    "as",    "if",   "into", "see",
    "look",   "get",    "made",   "make",  "new",  "my",   "me",
};

// Frequent letter pairs, before the words so that words reuse them.
const char* const kPairs[] = {"th", "he", "in", "er", "an", "re", "on", "at", "en", "nd",
                              "ti", "es", "or", "te", "of", "ed", "is", "it", "al", "ar",
                              "st", "to", "nt", "ng", "se", "ha", "as", "ou", "io", "le",
                              "ve", "co", "me", "de", "hi", "ri", "ro", "ic", "ne", "ea"};

class Builder {
 public:
  explicit Builder(int target) : target_(target) {
    for (int b = 0; b < 256; ++b) add_token(byte_level::byte_to_text(static_cast<uint8_t>(b)));
  }
  bool full() const { return static_cast<int>(tokens_.size()) >= target_; }

  // Adds the merge "a b" (a new token a+b unless some earlier merge already made it).
  // Returns false once the vocabulary is full.
  bool merge(const std::string& a, const std::string& b) {
    if (full()) return false;
    if (!ids_.count(a) || !ids_.count(b) || ranks_.count({a, b})) return true;
    ranks_[{a, b}] = static_cast<int>(merges_.size());
    merges_.push_back(nlohmann::json::array({a, b}));
    if (!ids_.count(a + b)) add_token(a + b);
    return !full();
  }

  // Makes `raw` (bytes) one token: BPE it with the merges so far, as the tokenizer will, then
  // add merges that join what is left from left to right.
  bool word(const std::string& raw) {
    std::vector<std::string> syms;
    for (char c : raw) syms.push_back(byte_level::byte_to_text(static_cast<uint8_t>(c)));
    while (syms.size() > 1) {
      size_t best = 0;
      int best_rank = -1;
      for (size_t i = 0; i + 1 < syms.size(); ++i) {
        auto it = ranks_.find({syms[i], syms[i + 1]});
        if (it != ranks_.end() && (best_rank < 0 || it->second < best_rank)) {
          best = i;
          best_rank = it->second;
        }
      }
      if (best_rank < 0) break;
      syms[best] += syms[best + 1];
      syms.erase(syms.begin() + static_cast<std::ptrdiff_t>(best) + 1);
    }
    std::string acc = syms[0];
    for (size_t i = 1; i < syms.size(); ++i) {
      if (!merge(acc, syms[i])) return false;
      acc += syms[i];
    }
    return true;
  }

  size_t size() const { return tokens_.size(); }
  const std::string& token(size_t i) const { return tokens_[i]; }
  nlohmann::json vocab() const {
    nlohmann::json v = nlohmann::json::object();
    for (size_t i = 0; i < tokens_.size(); ++i) v[tokens_[i]] = i;
    return v;
  }
  const nlohmann::json& merges() const { return merges_; }

 private:
  void add_token(const std::string& t) {
    ids_[t] = static_cast<int>(tokens_.size());
    tokens_.push_back(t);
  }
  int target_;
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int> ids_;
  std::map<std::pair<std::string, std::string>, int> ranks_;
  nlohmann::json merges_ = nlohmann::json::array();
};

std::string special_name(int offset) {
  switch (offset) {
    case 0:
      return "<|begin_of_text|>";
    case 1:
      return "<|end_of_text|>";
    case 2:
      return "<|reserved_special_token_0|>";
    case 3:
      return "<|reserved_special_token_1|>";
    case 4:
      return "<|finetune_right_pad_id|>";
    case 5:
      return "<|reserved_special_token_2|>";
    case 6:
      return "<|start_header_id|>";
    case 7:
      return "<|end_header_id|>";
    case 8:
      return "<|eom_id|>";
    case 9:
      return "<|eot_id|>";
    case 10:
      return "<|python_tag|>";
    default:
      return "<|reserved_special_token_" + std::to_string(offset - 8) + "|>";
  }
}

void check_vocab_size(int vocab_size) {
  if (vocab_size < 512)
    throw InvalidArgument("vocab_size", "built-in tokenizer needs vocab_size >= 512, got " +
                                            std::to_string(vocab_size));
}

}  // namespace

nlohmann::json make_byte_level_tokenizer_json(int vocab_size) {
  check_vocab_size(vocab_size);
  const int base = vocab_size - 256;
  Builder b(base);
  const std::string space = byte_level::byte_to_text(' ');
  auto bl = [](const std::string& raw) {
    std::string s;
    for (char c : raw) s += byte_level::byte_to_text(static_cast<uint8_t>(c));
    return s;
  };
  bool more = true;
  for (const char* p : kPairs)
    more = more && b.merge(bl(std::string(1, p[0])), bl(std::string(1, p[1])));
  // The split regex gives " the" mid-sentence and "the" at the start of a line: make both.
  for (const char* w : kWords) more = more && b.word(std::string(" ") + w) && b.word(w);
  // Then: space + letter, letter pairs, and at last every byte pair, in a fixed order; after
  // that, pairs of earlier tokens (only reached by vocabularies above ~66k).
  for (int c = 'a'; more && c <= 'z'; ++c) more = b.merge(space, bl(std::string(1, char(c))));
  for (int x = 'a'; more && x <= 'z'; ++x)
    for (int y = 'a'; more && y <= 'z'; ++y)
      more = b.merge(bl(std::string(1, char(x))), bl(std::string(1, char(y))));
  for (int x = 0; more && x < 256; ++x)
    for (int y = 0; more && y < 256; ++y)
      more = b.merge(byte_level::byte_to_text(uint8_t(x)), byte_level::byte_to_text(uint8_t(y)));
  for (size_t i = 256; more && i < b.size(); ++i)
    for (size_t j = 0; more && j <= i && j < b.size(); ++j) more = b.merge(b.token(i), b.token(j));

  nlohmann::json added = nlohmann::json::array();
  for (int k = 0; k < 256; ++k)
    added.push_back({{"id", base + k},
                     {"content", special_name(k)},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  nlohmann::json tj;
  tj["version"] = "1.0";
  tj["truncation"] = nullptr;
  tj["padding"] = nullptr;
  tj["added_tokens"] = added;
  tj["normalizer"] = nullptr;
  tj["pre_tokenizer"] = {{"type", "Sequence"},
                         {"pretokenizers",
                          {{{"type", "Split"},
                            {"pattern", {{"Regex", kLlama3SplitPattern}}},
                            {"behavior", "Isolated"},
                            {"invert", false}},
                           {{"type", "ByteLevel"},
                            {"add_prefix_space", false},
                            {"trim_offsets", true},
                            {"use_regex", false}}}}};
  tj["post_processor"] = nullptr;
  tj["decoder"] = {{"type", "ByteLevel"},
                   {"add_prefix_space", true},
                   {"trim_offsets", true},
                   {"use_regex", true}};
  tj["model"] = {{"type", "BPE"},
                 {"dropout", nullptr},
                 {"unk_token", nullptr},
                 {"continuing_subword_prefix", nullptr},
                 {"end_of_word_suffix", nullptr},
                 {"fuse_unk", false},
                 {"byte_fallback", false},
                 {"ignore_merges", false},
                 {"vocab", b.vocab()},
                 {"merges", b.merges()}};
  return tj;
}

nlohmann::json make_byte_level_tokenizer_config_json(int vocab_size, bool instruct) {
  check_vocab_size(vocab_size);
  return {{"bos_token", "<|begin_of_text|>"},
          {"eos_token", instruct ? "<|eot_id|>" : "<|end_of_text|>"},
          {"clean_up_tokenization_spaces", true},
          {"model_max_length", 131072},
          {"tokenizer_class", "PreTrainedTokenizerFast"}};
}

std::vector<int32_t> builtin_eos_token_ids(int vocab_size) {
  check_vocab_size(vocab_size);
  const int32_t base = vocab_size - 256;
  return {base + 1, base + 8, base + 9};
}

}  // namespace herd
