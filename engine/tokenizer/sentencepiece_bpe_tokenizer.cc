#include "engine/tokenizer/sentencepiece_bpe_tokenizer.h"

#include <cstdio>

#include "engine/common/error.h"
#include "engine/tokenizer/utf8.h"

namespace herd {

namespace {

const char* const kMetaspace = "\xE2\x96\x81";  // "▁"

std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size() + s.size() / 4);
  size_t i = 0;
  while (true) {
    size_t j = s.find(from, i);
    if (j == std::string_view::npos) break;
    out.append(s.substr(i, j - i));
    out.append(to);
    i = j + from.size();
  }
  out.append(s.substr(i));
  return out;
}

// "<0xHH>" -> HH, or -1.
int byte_fallback_value(std::string_view name) {
  if (name.size() != 6 || name.substr(0, 3) != "<0x" || name[5] != '>') return -1;
  int v = 0;
  for (char c : name.substr(3, 2)) {
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= c - '0';
    else if (c >= 'A' && c <= 'F')
      v |= c - 'A' + 10;
    else if (c >= 'a' && c <= 'f')
      v |= c - 'a' + 10;
    else
      return -1;
  }
  return v;
}

}  // namespace

SentencepieceBpeTokenizer::SentencepieceBpeTokenizer(const nlohmann::json& tj,
                                                     const std::string& path,
                                                     const std::string& dir) {
  const auto& model = tj.at("model");
  if (!model.contains("vocab") || !model["vocab"].is_object())
    throw Error(path + ": model.vocab is missing or not an object");
  reserve_tokens(model["vocab"].size());
  byte_fallback_ = model.value("byte_fallback", false);
  byte_id_.fill(-1);
  vocab_.reserve(model["vocab"].size());
  for (const auto& [name, idj] : model["vocab"].items()) {
    if (!idj.is_number_integer()) throw Error(path + ": model.vocab['" + name + "'] is no id");
    int32_t id = idj.get<int32_t>();
    vocab_[name] = id;
    std::string bytes;
    int b = byte_fallback_ ? byte_fallback_value(name) : -1;
    if (b >= 0) {
      byte_id_[b] = id;
      bytes.push_back(static_cast<char>(b));
    } else {
      bytes = replace_all(name, kMetaspace, " ");
    }
    set_token(id, name, std::move(bytes));
  }
  load_merges(model, vocab_, path, merges_);
  fuse_unk_ = model.value("fuse_unk", false);
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    auto it = vocab_.find(model["unk_token"].get<std::string>());
    if (it != vocab_.end()) unk_id_ = it->second;
  }

  if (tj.contains("normalizer")) read_normalizer(tj["normalizer"], path);
  if (tj.contains("pre_tokenizer") && tj["pre_tokenizer"].is_object()) {
    const auto& pt = tj["pre_tokenizer"];
    if (pt.value("type", "") != "Metaspace")
      throw Error(path + ": unsupported pre_tokenizer '" + pt.value("type", "") +
                  "' for a sentencepiece-style tokenizer");
    space_replacement_ = pt.value("replacement", kMetaspace);
    bool prefix =
        pt.value("add_prefix_space", true) && pt.value("prepend_scheme", "always") != "never";
    if (prefix) prepend_ = space_replacement_;
    split_on_space_ = pt.value("split", true);
  }
  const auto& dec = tj.contains("decoder") ? tj["decoder"] : nlohmann::json();
  auto scan_decoder = [&](const nlohmann::json& d) {
    std::string type = d.value("type", "");
    if (type == "Strip" && d.value("content", "") == " ")
      strip_leading_spaces_ = d.value("start", 0);
    if (type == "Metaspace" && d.value("add_prefix_space", true)) strip_leading_spaces_ = 1;
  };
  if (dec.is_object()) {
    if (dec.value("type", "") == "Sequence" && dec.contains("decoders")) {
      for (const auto& d : dec["decoders"]) scan_decoder(d);
    } else {
      scan_decoder(dec);
    }
  }

  load_added_tokens(tj, path);
  finish(dir, {"<s>", "<|begin_of_text|>"}, {"</s>", "<|end_of_text|>"});
}

void SentencepieceBpeTokenizer::read_normalizer(const nlohmann::json& n, const std::string& path) {
  if (!n.is_object()) return;
  std::string type = n.value("type", "");
  if (type == "Sequence") {
    for (const auto& s : n.at("normalizers")) read_normalizer(s, path);
  } else if (type == "Prepend") {
    prepend_ = n.at("prepend").get<std::string>();
  } else if (type == "Replace") {
    const auto& pat = n.at("pattern");
    if (!pat.contains("String") || pat["String"] != " ")
      throw Error(path + ": only Replace(\" \" -> ...) normalizers are supported");
    space_replacement_ = n.at("content").get<std::string>();
  } else {
    throw Error(path + ": unsupported normalizer '" + type + "'");
  }
}

void SentencepieceBpeTokenizer::encode_text(std::string_view text,
                                            std::vector<int32_t>& out) const {
  if (text.empty()) return;
  std::string norm = prepend_;
  norm +=
      space_replacement_.empty() ? std::string(text) : replace_all(text, " ", space_replacement_);
  if (!split_on_space_ || space_replacement_.empty()) {
    encode_word(norm, out);
    return;
  }
  // Metaspace splitting: each word starts at a "▁".
  std::string_view s = norm;
  size_t start = 0;
  while (start < s.size()) {
    size_t next = s.find(space_replacement_, start + 1);
    if (next == std::string_view::npos) next = s.size();
    encode_word(s.substr(start, next - start), out);
    start = next;
  }
}

void SentencepieceBpeTokenizer::encode_word(std::string_view word,
                                            std::vector<int32_t>& out) const {
  std::vector<int32_t> ids;
  ids.reserve(word.size());
  bool last_unk = false;
  size_t i = 0;
  while (i < word.size()) {
    size_t n = utf8::valid_seq_len(word, i);
    if (n == 0) n = 1;  // an invalid byte: only byte fallback can represent it
    std::string_view ch = word.substr(i, n);
    i += n;
    auto it = vocab_.find(ch);
    if (it != vocab_.end()) {
      ids.push_back(it->second);
      last_unk = false;
      continue;
    }
    bool all_bytes = byte_fallback_;
    for (char c : ch) all_bytes = all_bytes && byte_id_[static_cast<uint8_t>(c)] >= 0;
    if (all_bytes) {
      for (char c : ch) ids.push_back(byte_id_[static_cast<uint8_t>(c)]);
      last_unk = false;
    } else if (unk_id_ >= 0) {
      if (!(fuse_unk_ && last_unk)) ids.push_back(unk_id_);
      last_unk = true;
    }
  }
  merges_.apply(ids);
  out.insert(out.end(), ids.begin(), ids.end());
}

std::string SentencepieceBpeTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out = TokenizerBase::decode(ids);
  size_t k = 0;
  while (k < strip_leading_spaces_ && k < out.size() && out[k] == ' ') ++k;
  out.erase(0, k);
  return out;
}

}  // namespace herd
