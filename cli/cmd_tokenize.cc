// herd tokenize --tokenizer DIR [--special] [--decode]
// Encode: stdin text -> JSON array of ids on stdout. Decode: stdin JSON array -> text.
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
  Flags flags(args, {"tokenizer"}, {"special", "decode"});
  if (!flags.positional().empty())
    throw InvalidArgument(flags.positional()[0], "unexpected argument '" + flags.positional()[0] +
                                                     "' (text is read from stdin)");
  auto tok = load_tokenizer(flags.required("tokenizer"));
  const bool special = flags.has("special");
  std::string input = read_stdin();
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

HERD_COMMAND("tokenize", "--tokenizer DIR [--special] [--decode]  (stdin -> stdout)", run_tokenize);

}  // namespace herd::cli
