#include "engine/sample/validate.h"

#include <cmath>
#include <string>

#include "engine/common/error.h"

namespace herd {
namespace {

[[noreturn]] void fail(const char* param, const std::string& message) {
  throw InvalidArgument(param, message);
}

std::string num(double v) {
  if (std::isnan(v)) return "nan";
  std::string s = std::to_string(v);
  // to_string prints 6 decimals; drop the trailing zeros so messages read "2.5", not "2.500000".
  if (s.find('.') != std::string::npos) {
    while (!s.empty() && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
  }
  return s;
}

// `lo <= v <= hi`, false for NaN.
bool in_range(double v, double lo, double hi) { return v >= lo && v <= hi; }

void check_lengths(const SamplingParams& p, int prompt_len, int max_model_len) {
  if (prompt_len < 1) fail("prompt", "the prompt must contain at least one token");
  if (prompt_len >= max_model_len) {
    fail("prompt", "the prompt has " + std::to_string(prompt_len) +
                       " tokens, but this model's maximum context length is " +
                       std::to_string(max_model_len) + " tokens: no room left to generate");
  }
  const int room = max_model_len - prompt_len;
  if (p.max_tokens) {
    if (*p.max_tokens < 1) {
      fail("max_tokens", "max_tokens must be at least 1, got " + std::to_string(*p.max_tokens));
    }
    if (*p.max_tokens > room) {
      fail("max_tokens", "the prompt has " + std::to_string(prompt_len) +
                             " tokens and max_tokens is " + std::to_string(*p.max_tokens) +
                             ", together " + std::to_string(int64_t{prompt_len} + *p.max_tokens) +
                             ", more than this model's maximum context length of " +
                             std::to_string(max_model_len) + " tokens");
    }
  }
  const int max_tokens = p.max_tokens.value_or(room);
  if (p.min_tokens < 0 || p.min_tokens > max_tokens) {
    fail("min_tokens", "min_tokens must be in [0, max_tokens = " + std::to_string(max_tokens) +
                           "], got " + std::to_string(p.min_tokens));
  }
}

void check_stop(const SamplingParams& p, int vocab_size) {
  if (p.stop.size() > size_t(kMaxStopStrings)) {
    fail("stop", "at most " + std::to_string(kMaxStopStrings) + " stop strings are allowed, got " +
                     std::to_string(p.stop.size()));
  }
  for (size_t i = 0; i < p.stop.size(); ++i) {
    if (p.stop[i].empty()) fail("stop", "stop string " + std::to_string(i) + " is empty");
    if (p.stop[i].size() > size_t(kMaxStopStringBytes)) {
      fail("stop", "stop string " + std::to_string(i) + " has " + std::to_string(p.stop[i].size()) +
                       " bytes; at most " + std::to_string(kMaxStopStringBytes) + " are allowed");
    }
    if (!is_valid_utf8(p.stop[i])) {
      fail("stop", "stop string " + std::to_string(i) + " is not valid UTF-8");
    }
  }
  if (p.stop_token_ids.size() > size_t(kMaxStopTokenIds)) {
    fail("stop_token_ids", "at most " + std::to_string(kMaxStopTokenIds) +
                               " stop token ids are allowed, got " +
                               std::to_string(p.stop_token_ids.size()));
  }
  for (int32_t id : p.stop_token_ids) {
    if (id < 0 || id >= vocab_size) {
      fail("stop_token_ids", "stop token id " + std::to_string(id) +
                                 " is outside the vocabulary [0, " + std::to_string(vocab_size) +
                                 ")");
    }
  }
}

}  // namespace

bool is_valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = s[i];
    int len;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07;
    } else {
      return false;  // continuation byte without a lead, or 0xF8..0xFF
    }
    if (i + len > s.size()) return false;
    for (int k = 1; k < len; ++k) {
      const unsigned char cc = s[i + k];
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr uint32_t kMinForLen[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLen[len]) return false;          // overlong
    if (cp > 0x10FFFF) return false;                 // beyond Unicode
    if (cp >= 0xD800 && cp <= 0xDFFF) return false;  // UTF-16 surrogate
    i += len;
  }
  return true;
}

void validate_sampling_params(const SamplingParams& p, int vocab_size, int prompt_len,
                              int max_model_len) {
  if (p.n < 1 || p.n > kMaxSamplesPerRequest) {
    fail("n", "n must be in [1, " + std::to_string(kMaxSamplesPerRequest) + "], got " +
                  std::to_string(p.n));
  }
  if (!in_range(p.temperature, 0.0, 2.0)) {
    fail("temperature", "temperature must be in [0, 2], got " + num(p.temperature));
  }
  if (!(p.top_p > 0.0 && p.top_p <= 1.0)) {
    fail("top_p", "top_p must be in (0, 1], got " + num(p.top_p));
  }
  if (p.top_k < -1) {
    fail("top_k", "top_k must be -1 (off), 0 (off) or positive, got " + std::to_string(p.top_k));
  }
  if (!in_range(p.min_p, 0.0, 1.0)) fail("min_p", "min_p must be in [0, 1], got " + num(p.min_p));
  if (!in_range(p.presence_penalty, -2.0, 2.0)) {
    fail("presence_penalty", "presence_penalty must be in [-2, 2], got " + num(p.presence_penalty));
  }
  if (!in_range(p.frequency_penalty, -2.0, 2.0)) {
    fail("frequency_penalty",
         "frequency_penalty must be in [-2, 2], got " + num(p.frequency_penalty));
  }
  if (!(p.repetition_penalty > 0.0 && std::isfinite(p.repetition_penalty))) {
    fail("repetition_penalty",
         "repetition_penalty must be a finite number > 0, got " + num(p.repetition_penalty));
  }
  for (const auto& [id, bias] : p.logit_bias) {
    if (id < 0 || id >= vocab_size) {
      fail("logit_bias", "logit_bias token id " + std::to_string(id) +
                             " is outside the vocabulary [0, " + std::to_string(vocab_size) + ")");
    }
    if (!in_range(bias, -kMaxAbsLogitBias, kMaxAbsLogitBias)) {
      fail("logit_bias", "logit_bias for token " + std::to_string(id) +
                             " must be in [-100, 100], got " + num(bias));
    }
  }
  if (p.logprobs && (*p.logprobs < 0 || *p.logprobs > kMaxTopLogprobs)) {
    fail("logprobs", "logprobs must be in [0, " + std::to_string(kMaxTopLogprobs) + "], got " +
                         std::to_string(*p.logprobs));
  }
  if (p.prompt_logprobs != -1) {
    fail("prompt_logprobs", "prompt_logprobs is not supported");
  }
  check_stop(p, vocab_size);
  check_lengths(p, prompt_len, max_model_len);
}

}  // namespace herd
