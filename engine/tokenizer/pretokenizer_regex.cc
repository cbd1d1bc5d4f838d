#define PCRE2_CODE_UNIT_WIDTH 8
#include "engine/tokenizer/pretokenizer_regex.h"

#include <pcre2.h>

#include "engine/common/error.h"

namespace herd {

const char* const kLlama3SplitPattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

namespace {

// Per-thread match state: a match block and a JIT stack larger than PCRE2's 32 KiB default,
// so that long whitespace runs (\s+(?!\S) backtracks) cannot overflow it.
struct Scratch {
  pcre2_match_data* md = pcre2_match_data_create(1, nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(64 * 1024, 8 * 1024 * 1024, nullptr);
  pcre2_match_context* ctx = pcre2_match_context_create(nullptr);
  Scratch() { pcre2_jit_stack_assign(ctx, nullptr, stack); }
  ~Scratch() {
    pcre2_match_context_free(ctx);
    pcre2_jit_stack_free(stack);
    pcre2_match_data_free(md);
  }
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

}  // namespace

SplitRegex::SplitRegex(const std::string& pattern, const std::string& where) {
  int err = 0;
  PCRE2_SIZE off = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP, &err, &off, nullptr);
  if (!code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    throw Error(where + ": split regex does not compile at offset " + std::to_string(off) + ": " +
                reinterpret_cast<const char*>(msg));
  }
  jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  code_ = code;
}

SplitRegex::~SplitRegex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

bool SplitRegex::next_match(std::string_view text, size_t pos, size_t& start, size_t& end) const {
  auto* code = static_cast<pcre2_code*>(code_);
  Scratch& s = scratch();
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  while (pos < text.size()) {
    int rc = jit_ ? pcre2_jit_match(code, subject, text.size(), pos, 0, s.md, s.ctx)
                  : pcre2_match(code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, s.md, s.ctx);
    if (rc == PCRE2_ERROR_NOMATCH) return false;
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      throw Error(std::string("tokenizer split regex failed: ") +
                  reinterpret_cast<const char*>(msg));
    }
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(s.md);
    start = ov[0];
    end = ov[1];
    if (end > start) return true;
    // An empty match splits nothing: retry from the next character.
    pos = start + 1;
    while (pos < text.size() && (static_cast<uint8_t>(text[pos]) & 0xC0) == 0x80) ++pos;
  }
  return false;
}

}  // namespace herd
