#include "engine/tokenizer/tokenizer_base.h"

#include <filesystem>
#include <fstream>

#include "engine/common/error.h"

namespace herd {

std::vector<int32_t> TokenizerBase::encode(std::string_view text, bool allow_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  for (const auto& piece : added_.split(text, allow_special)) {
    if (piece.id >= 0) {
      out.push_back(piece.id);
    } else {
      encode_text(piece.text, out);
    }
  }
  return out;
}

std::string TokenizerBase::token_bytes(int32_t id) const {
  if (id < 0 || id >= vocab_size())
    throw InvalidArgument("token_id", "token id " + std::to_string(id) + " is outside the vocab");
  return bytes_[id];
}

std::string TokenizerBase::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size())
      throw InvalidArgument("token_id", "token id " + std::to_string(id) + " is outside the vocab");
    out += bytes_[id];
  }
  return out;
}

std::optional<int32_t> TokenizerBase::token_id(std::string_view token_text) const {
  auto it = name_to_id_.find(token_text);
  if (it == name_to_id_.end()) return std::nullopt;
  return it->second;
}

bool TokenizerBase::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size() && special_[id] != 0;
}

void TokenizerBase::set_token(int32_t id, std::string name, std::string bytes) {
  if (id < 0) return;
  size_t need = static_cast<size_t>(id) + 1;
  if (bytes_.size() < need) {
    bytes_.resize(need);
    names_.resize(need);
    special_.resize(need, 0);
  }
  if (!names_[id].empty()) {
    auto it = name_to_id_.find(names_[id]);
    if (it != name_to_id_.end() && it->second == id) name_to_id_.erase(it);
  }
  name_to_id_[name] = id;
  names_[id] = std::move(name);
  bytes_[id] = std::move(bytes);
}

void TokenizerBase::load_added_tokens(const nlohmann::json& tj, const std::string& path) {
  auto it = tj.find("added_tokens");
  if (it == tj.end() || it->is_null()) return;
  if (!it->is_array()) throw Error(path + ": \"added_tokens\" is not an array");
  for (const auto& t : *it) {
    if (!t.is_object() || !t.contains("id") || !t.contains("content") ||
        !t["id"].is_number_integer() || !t["content"].is_string())
      throw Error(path + ": an entry of \"added_tokens\" lacks an integer id or a content");
    int32_t id = t["id"].get<int32_t>();
    std::string content = t["content"].get<std::string>();
    bool special = t.value("special", false);
    set_token(id, content, content);
    special_[id] = special ? 1 : 0;
    added_.add(content, id, special);
  }
}

namespace {

std::optional<std::string> config_token(const nlohmann::json& cfg, const char* key) {
  auto it = cfg.find(key);
  if (it == cfg.end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return (*it)["content"].get<std::string>();
  return std::nullopt;
}

}  // namespace

void TokenizerBase::finish(const std::string& dir, const std::vector<std::string>& default_bos,
                           const std::vector<std::string>& default_eos) {
  // Llama 3.1 gave three reserved ids of the 128256-token vocab their names; files made for
  // Llama 3.0 still call them reserved.
  if (vocab_size() == 128256) {
    const std::pair<int32_t, const char*> renames[] = {
        {128004, "<|finetune_right_pad_id|>"}, {128008, "<|eom_id|>"}, {128010, "<|python_tag|>"}};
    for (const auto& [id, name] : renames) {
      if (names_[id] == name || names_[id].rfind("<|reserved_special_token_", 0) != 0) continue;
      bool special = special_[id] != 0;
      added_.remove_id(id);
      set_token(id, name, name);
      special_[id] = special ? 1 : 0;
      added_.add(name, id, special);
    }
  }

  nlohmann::json cfg;
  std::string cfg_path = dir + "/tokenizer_config.json";
  if (std::filesystem::exists(cfg_path)) {
    std::ifstream in(cfg_path);
    cfg = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (cfg.is_discarded() || !cfg.is_object()) throw Error(cfg_path + ": not a valid JSON object");
  }
  auto resolve = [&](const char* key, const std::vector<std::string>& defaults) -> int32_t {
    if (auto name = config_token(cfg, key)) {
      if (auto id = token_id(*name)) return *id;
      throw Error(cfg_path + ": " + key + " '" + *name + "' is not in the vocabulary");
    }
    for (const auto& name : defaults)
      if (auto id = token_id(name)) return *id;
    return -1;
  };
  bos_ = resolve("bos_token", default_bos);
  eos_ = resolve("eos_token", default_eos);
}

}  // namespace herd

#include "engine/tokenizer/bpe_merges.h"

namespace herd {

std::pair<std::string, std::string> parse_merge(const nlohmann::json& m, const std::string& path,
                                                size_t index) {
  if (m.is_string()) {
    const std::string& s = m.get_ref<const std::string&>();
    size_t sp = s.find(' ', 1);  // a merge side is never empty; the first space separates
    if (sp != std::string::npos && sp + 1 < s.size() && s.find(' ', sp + 1) == std::string::npos)
      return {s.substr(0, sp), s.substr(sp + 1)};
  } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
    return {m[0].get<std::string>(), m[1].get<std::string>()};
  }
  throw Error(path + ": model.merges[" + std::to_string(index) + "] is not \"a b\" or [a, b]");
}

void load_merges(const nlohmann::json& model, const StringIdMap& vocab, const std::string& path,
                 BpeMerges& merges) {
  auto it = model.find("merges");
  if (it == model.end() || it->is_null()) return;
  if (!it->is_array()) throw Error(path + ": model.merges is not an array");
  merges.reserve(it->size());
  std::string joined;
  for (size_t i = 0; i < it->size(); ++i) {
    auto [a, b] = parse_merge((*it)[i], path, i);
    auto ia = vocab.find(a), ib = vocab.find(b);
    joined = a + b;
    auto im = vocab.find(joined);
    if (ia == vocab.end() || ib == vocab.end() || im == vocab.end())
      throw Error(path + ": model.merges[" + std::to_string(i) + "] '" + a + " " + b +
                  "' uses a token missing from model.vocab");
    merges.add(ia->second, ib->second, static_cast<int32_t>(i), im->second);
  }
}

}  // namespace herd
