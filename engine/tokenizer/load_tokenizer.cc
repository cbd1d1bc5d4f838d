// load_tokenizer(): reads DIR/tokenizer.json and picks the tokenizer family from it; a
// directory with only a sentencepiece tokenizer.model loads that.
#include <filesystem>
#include <fstream>
#include <iterator>

#include "engine/common/error.h"
#include "engine/tokenizer/byte_level_bpe_tokenizer.h"
#include "engine/tokenizer/json_text.h"
#include "engine/tokenizer/sentencepiece_bpe_tokenizer.h"
#include "engine/tokenizer/sentencepiece_model_tokenizer.h"
#include "engine/tokenizer/tokenizer.h"

namespace herd {

namespace {

constexpr size_t kMaxTokenizerJsonDepth = 64;

// True when a component of this type appears in `j` (alone or inside a Sequence).
bool mentions(const nlohmann::json& j, const std::string& type) {
  if (!j.is_object()) return false;
  if (j.value("type", "") == type) return true;
  for (const char* key : {"pretokenizers", "decoders", "normalizers", "processors"})
    if (j.contains(key) && j[key].is_array())
      for (const auto& x : j[key])
        if (mentions(x, type)) return true;
  return false;
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& dir) {
  const std::string path = dir + "/tokenizer.json";
  if (!std::filesystem::is_regular_file(path)) {
    // A sentencepiece directory (Meta's Llama 2 download, llama2.c) carries only the model.
    if (std::filesystem::is_regular_file(dir + "/tokenizer.model"))
      return load_sentencepiece_model(dir);
    throw Error(path + ": no such file (nor " + dir + "/tokenizer.model)");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open");
  // Parsing from memory is several times faster than from the stream.
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  nlohmann::json tj = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  text = std::string();
  if (tj.is_discarded() || !tj.is_object()) throw Error(path + ": not a valid JSON object");
  // The component readers recurse through nested "Sequence"s (normalizers, pre-tokenizers,
  // decoders): bound the depth, without recursing, before anything walks the file. Real
  // tokenizer.json files nest about six levels.
  if (!json_depth_within(tj, kMaxTokenizerJsonDepth))
    throw Error(path + ": nested deeper than " + std::to_string(kMaxTokenizerJsonDepth) +
                " levels");
  if (!tj.contains("model") || !tj["model"].is_object())
    throw Error(path + ": no \"model\" object");
  const auto& model = tj["model"];
  std::string type = model.value("type", model.contains("merges") ? "BPE" : "");
  if (type != "BPE")
    throw Error(path + ": unsupported tokenizer model type '" + type + "' (only BPE)");
  try {
    const nlohmann::json null;
    const auto& pre = tj.contains("pre_tokenizer") ? tj["pre_tokenizer"] : null;
    const auto& dec = tj.contains("decoder") ? tj["decoder"] : null;
    if (mentions(pre, "ByteLevel") || mentions(dec, "ByteLevel"))
      return std::make_unique<ByteLevelBpeTokenizer>(tj, path, dir);
    if (model.value("byte_fallback", false) || mentions(dec, "ByteFallback") ||
        mentions(pre, "Metaspace") || mentions(dec, "Metaspace"))
      return std::make_unique<SentencepieceBpeTokenizer>(tj, path, dir);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": malformed tokenizer.json: " + e.what());
  }
  throw Error(path + ": BPE tokenizer is neither byte-level nor sentencepiece-style");
}

}  // namespace herd
