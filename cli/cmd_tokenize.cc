// herd tokenize --tokenizer DIR [--special] [--decode] [--split SEP]
// Encode: stdin text -> JSON array of ids on stdout. Decode: stdin JSON array -> text.
// --split SEP (encode only): stdin holds several texts, each followed by SEP (a last piece
// after the final SEP is encoded only when non-empty); prints a JSON array of id arrays, one
// per text — many cases for one tokenizer load.
// --special makes special tokens text-visible both ways: on encode their literal strings
// (e.g. "<|eot_id|>") map to their ids; on decode they are printed (otherwise dropped).
#include <cstdio>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/command.h"
#include "cli/flags.h"
#include "engine/common/error.h"
#include "engine/tokenizer/tokenizer.h"

namespace herd::cli {

namespace {

std::string read_stdin() {
  std::string s((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  return s;
}

int run_tokenize(const std::vector<std::string>& args) {
  Flags flags(args, {"tokenizer", "split"}, {"special", "decode"});
  if (!flags.positional().empty())
    throw InvalidArgument(flags.positional()[0], "unexpected argument '" + flags.positional()[0] +
                                                     "' (text is read from stdin)");
  auto tok = load_tokenizer(flags.required("tokenizer"));
  const bool special = flags.has("special");
  std::string input = read_stdin();
  if (flags.has("split")) {
    const std::string sep = flags.str("split", "");
    if (sep.empty()) throw InvalidArgument("split", "--split must not be empty");
    if (flags.has("decode")) throw InvalidArgument("split", "--split is for encoding only");
    nlohmann::json all = nlohmann::json::array();
    size_t pos = 0;
    while (pos < input.size()) {
      const size_t end = input.find(sep, pos);
      if (end == std::string::npos) {
        all.push_back(tok->encode(input.substr(pos), special));
        break;
      }
      all.push_back(tok->encode(input.substr(pos, end - pos), special));
      pos = end + sep.size();
    }
    std::printf("%s\n", all.dump().c_str());
    return 0;
  }
  if (!flags.has("decode")) {
    nlohmann::json ids = tok->encode(input, special);
    std::printf("%s\n", ids.dump().c_str());
    return 0;
  }
  auto j = nlohmann::json::parse(input, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_array())
    throw Error("stdin: --decode wants a JSON array of token ids");
  std::vector<int32_t> ids;
  for (const auto& v : j) {
    if (!v.is_number_integer()) throw Error("stdin: token ids must be integers");
    int64_t id = v.get<int64_t>();
    if (id < 0 || id >= tok->vocab_size())
      throw Error("stdin: token id " + std::to_string(id) + " is outside the vocab of " +
                  std::to_string(tok->vocab_size()));
    if (!special && tok->is_special(static_cast<int32_t>(id))) continue;
    ids.push_back(static_cast<int32_t>(id));
  }
  std::string text = tok->decode(ids);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

}  // namespace

HERD_COMMAND("tokenize", "--tokenizer DIR [--special] [--decode] [--split SEP]  (stdin -> stdout)",
             run_tokenize);

}  // namespace herd::cli
