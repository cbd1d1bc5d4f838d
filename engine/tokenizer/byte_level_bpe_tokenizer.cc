#include "engine/tokenizer/byte_level_bpe_tokenizer.h"

#include "engine/common/error.h"
#include "engine/tokenizer/byte_level.h"
#include "engine/tokenizer/utf8.h"

namespace herd {

namespace {

constexpr size_t kCacheMaxEntries = 1 << 16;
constexpr size_t kCacheMaxPieceBytes = 256;

// The pattern of the first "Split" pre-tokenizer (alone or inside a Sequence).
std::optional<std::string> find_split_pattern(const nlohmann::json& pt, const std::string& path) {
  if (!pt.is_object()) return std::nullopt;
  std::string type = pt.value("type", "");
  if (type == "Sequence" && pt.contains("pretokenizers")) {
    for (const auto& p : pt["pretokenizers"])
      if (auto r = find_split_pattern(p, path)) return r;
    return std::nullopt;
  }
  if (type != "Split") return std::nullopt;
  if (pt.value("behavior", "Isolated") != "Isolated" || pt.value("invert", false))
    throw Error(path + ": only Split pre-tokenizers with behavior Isolated are supported");
  const auto& pat = pt.at("pattern");
  if (pat.contains("Regex")) return pat["Regex"].get<std::string>();
  throw Error(path + ": Split pre-tokenizer has no Regex pattern");
}

}  // namespace

ByteLevelBpeTokenizer::ByteLevelBpeTokenizer(const nlohmann::json& tj, const std::string& path,
                                             const std::string& dir) {
  const auto& model = tj.at("model");
  if (!model.contains("vocab") || !model["vocab"].is_object())
    throw Error(path + ": model.vocab is missing or not an object");
  reserve_tokens(model["vocab"].size());
  StringIdMap vocab_by_name;
  vocab_by_name.reserve(model["vocab"].size());
  vocab_by_bytes_.reserve(model["vocab"].size());
  for (const auto& [name, idj] : model["vocab"].items()) {
    if (!idj.is_number_integer()) throw Error(path + ": model.vocab['" + name + "'] is no id");
    int32_t id = idj.get<int32_t>();
    auto bytes = byte_level::text_to_bytes(name);
    if (!bytes) throw Error(path + ": model.vocab token '" + name + "' is not byte-level text");
    vocab_by_name[name] = id;
    vocab_by_bytes_[*bytes] = id;
    set_token(id, name, *bytes);
  }
  byte_id_.fill(-1);
  for (int b = 0; b < 256; ++b) {
    auto it = vocab_by_name.find(byte_level::byte_to_text(static_cast<uint8_t>(b)));
    if (it == vocab_by_name.end())
      throw Error(path + ": byte-level vocab lacks the token for byte " + std::to_string(b));
    byte_id_[b] = it->second;
  }
  load_merges(model, vocab_by_name, path, merges_);
  ignore_merges_ = model.value("ignore_merges", false);

  std::string pattern = kLlama3SplitPattern;
  if (tj.contains("pre_tokenizer"))
    if (auto p = find_split_pattern(tj["pre_tokenizer"], path)) pattern = *p;
  regex_ = std::make_unique<SplitRegex>(pattern, path);

  load_added_tokens(tj, path);
  finish(dir, {"<|begin_of_text|>", "<s>"}, {"<|end_of_text|>", "</s>"});
}

void ByteLevelBpeTokenizer::encode_text(std::string_view text, std::vector<int32_t>& out) const {
  // Valid UTF-8 runs go through the regex; each invalid byte is its own pretoken.
  size_t run = 0, i = 0;
  while (i < text.size()) {
    if (static_cast<uint8_t>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t n = utf8::valid_seq_len(text, i);
    if (n != 0) {
      i += n;
      continue;
    }
    if (i > run) encode_valid(text.substr(run, i - run), out);
    out.push_back(byte_id_[static_cast<uint8_t>(text[i])]);
    run = ++i;
  }
  if (i > run) encode_valid(text.substr(run, i - run), out);
}

void ByteLevelBpeTokenizer::encode_valid(std::string_view text, std::vector<int32_t>& out) const {
  regex_->split(text, [&](std::string_view piece) { encode_pretoken(piece, out); });
}

void ByteLevelBpeTokenizer::encode_pretoken(std::string_view piece,
                                            std::vector<int32_t>& out) const {
  if (piece.size() == 1) {
    out.push_back(byte_id_[static_cast<uint8_t>(piece[0])]);
    return;
  }
  if (ignore_merges_) {
    auto it = vocab_by_bytes_.find(piece);
    if (it != vocab_by_bytes_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  const bool cacheable = piece.size() <= kCacheMaxPieceBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(piece);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids(piece.size());
  for (size_t k = 0; k < piece.size(); ++k) ids[k] = byte_id_[static_cast<uint8_t>(piece[k])];
  merges_.apply(ids);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cache_.size() >= kCacheMaxEntries) cache_.clear();
    cache_.emplace(std::string(piece), std::move(ids));
  }
}

}  // namespace herd
