#include "engine/tokenizer/sentencepiece_model_tokenizer.h"

#include <fstream>
#include <functional>
#include <iterator>
#include <queue>

#include "engine/common/error.h"
#include "engine/tokenizer/utf8.h"

namespace herd {

namespace {

const char* const kMetaspace = "\xE2\x96\x81";  // "▁"

std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size() + s.size() / 4);
  size_t i = 0;
  for (size_t j; (j = s.find(from, i)) != std::string_view::npos; i = j + from.size()) {
    out.append(s.substr(i, j - i));
    out.append(to);
  }
  out.append(s.substr(i));
  return out;
}

// "<0xHH>" -> HH, or -1.
int byte_value(std::string_view name) {
  if (name.size() != 6 || name.substr(0, 3) != "<0x" || name[5] != '>') return -1;
  int v = 0;
  for (char c : name.substr(3, 2)) {
    int d = (c >= '0' && c <= '9')   ? c - '0'
            : (c >= 'A' && c <= 'F') ? c - 'A' + 10
            : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                                     : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

// sentencepiece's remove_extra_whitespaces: no leading or trailing spaces, runs of spaces
// collapsed to one.
std::string squeeze_spaces(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == ' ' && (out.empty() || out.back() == ' ')) continue;
    out += c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace

SentencepieceModelTokenizer::SentencepieceModelTokenizer(const SentencepieceModelProto& m,
                                                         const std::string& path,
                                                         const std::string& dir) {
  using P = SentencepieceModelProto;
  if (m.model_type != P::kBpe)
    throw Error(path + ": sentencepiece model type " + std::to_string(m.model_type) +
                (m.model_type == P::kUnigram ? " (unigram)" : "") +
                " is not supported; only BPE (type 2) models load");
  if (!m.precompiled_charsmap.empty())
    throw Error(path + ": sentencepiece normalizer '" + m.normalizer_name +
                "' (a precompiled character map) is not supported; only 'identity'");
  if (m.pieces.size() > static_cast<size_t>(INT32_MAX)) throw Error(path + ": too many pieces");
  byte_fallback_ = m.byte_fallback;
  add_dummy_prefix_ = m.add_dummy_prefix;
  remove_extra_whitespaces_ = m.remove_extra_whitespaces;
  escape_whitespaces_ = m.escape_whitespaces;
  whitespace_as_suffix_ = m.treat_whitespace_as_suffix;
  byte_id_.fill(-1);
  const int32_t n = static_cast<int32_t>(m.pieces.size());
  reserve_tokens(m.pieces.size());
  pieces_.reserve(m.pieces.size());
  for (int32_t id = 0; id < n; ++id) {
    const P::Piece& p = m.pieces[id];
    const std::string where = path + ": piece " + std::to_string(id) + " '" + p.piece + "'";
    if (p.piece.empty()) throw Error(path + ": piece " + std::to_string(id) + " is empty");
    switch (p.type) {
      case P::kNormal:
      case P::kUserDefined:
      case P::kUnused:
        if (!pieces_.emplace(p.piece, PieceInfo{id, p.score, p.type == P::kUnused}).second)
          throw Error(where + " appears twice");
        set_token(id, p.piece,
                  escape_whitespaces_ ? replace_all(p.piece, kMetaspace, " ") : p.piece);
        if (p.type == P::kUserDefined) added_.add(p.piece, id, /*special=*/false);
        break;
      case P::kByte: {
        int b = byte_value(p.piece);
        if (b < 0) throw Error(where + " is a BYTE piece but not <0xHH>");
        byte_id_[b] = id;
        set_token(id, p.piece, std::string(1, static_cast<char>(b)));
        break;
      }
      case P::kControl:
      case P::kUnknown:
        set_token(id, p.piece, p.piece);
        special_[id] = 1;
        added_.add(p.piece, id, /*special=*/true);
        if (p.type == P::kUnknown) unk_id_ = id;
        break;
      default:
        throw Error(where + " has unknown type " + std::to_string(p.type));
    }
  }
  if (unk_id_ < 0) throw Error(path + ": sentencepiece model has no UNKNOWN piece");
  auto name_of = [&](int32_t id) {
    return id >= 0 && id < n ? std::vector<std::string>{m.pieces[id].piece}
                             : std::vector<std::string>{};
  };
  finish(dir, name_of(m.bos_id), name_of(m.eos_id));
}

void SentencepieceModelTokenizer::emit_unknown(std::string_view piece,
                                               std::vector<int32_t>& out) const {
  if (byte_fallback_) {
    for (char c : piece) {
      int32_t b = byte_id_[static_cast<uint8_t>(c)];
      out.push_back(b >= 0 ? b : unk_id_);
    }
  } else {
    out.push_back(unk_id_);
  }
}

void SentencepieceModelTokenizer::encode_text(std::string_view text,
                                              std::vector<int32_t>& out) const {
  std::string s = remove_extra_whitespaces_ ? squeeze_spaces(text) : std::string(text);
  if (s.empty()) return;
  const std::string space = escape_whitespaces_ ? kMetaspace : " ";
  std::string norm = escape_whitespaces_ ? replace_all(s, " ", space) : std::move(s);
  if (add_dummy_prefix_) norm = whitespace_as_suffix_ ? norm + space : space + norm;

  // Symbols: a doubly linked list over `norm`, one UTF-8 character each to start with (an
  // invalid byte is a symbol of its own; only byte fallback can represent it).
  struct Symbol {
    uint32_t begin, len;
    int32_t prev, next;
  };
  std::vector<Symbol> sym;
  sym.reserve(norm.size());
  for (size_t i = 0; i < norm.size();) {
    size_t len = utf8::valid_seq_len(norm, i);
    if (len == 0) len = 1;
    int32_t k = static_cast<int32_t>(sym.size());
    sym.push_back({static_cast<uint32_t>(i), static_cast<uint32_t>(len), k - 1, k + 1});
    i += len;
  }
  sym.back().next = -1;
  auto text_of = [&](const Symbol& x) { return std::string_view(norm).substr(x.begin, x.len); };

  // Candidate merges: highest score first, then leftmost (sentencepiece's comparator). An
  // entry is stale once either side has changed since it was pushed; `len` detects that.
  struct Pair {
    float score;
    int32_t left, right;
    uint32_t len;
  };
  auto lower = [](const Pair& a, const Pair& b) {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  };
  std::priority_queue<Pair, std::vector<Pair>, decltype(lower)> agenda(lower);
  // UNUSED pieces a merge produced -> the two symbols it came from (split back at the end).
  std::unordered_map<std::string, std::pair<std::string, std::string>> rev_merge;
  auto consider = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    std::string_view merged = std::string_view(norm).substr(sym[l].begin, sym[l].len + sym[r].len);
    auto it = pieces_.find(merged);
    if (it == pieces_.end()) return;
    agenda.push({it->second.score, l, r, static_cast<uint32_t>(merged.size())});
    if (it->second.unused)
      rev_merge[std::string(merged)] = {std::string(text_of(sym[l])), std::string(text_of(sym[r]))};
  };
  for (int32_t i = 1; i < static_cast<int32_t>(sym.size()); ++i) consider(i - 1, i);
  while (!agenda.empty()) {
    Pair top = agenda.top();
    agenda.pop();
    Symbol& l = sym[top.left];
    Symbol& r = sym[top.right];
    if (l.len == 0 || r.len == 0 || l.len + r.len != top.len) continue;
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = top.left;
    consider(l.prev, top.left);
    consider(top.left, l.next);
  }

  // Bounded recursion: each level splits a piece into two shorter ones.
  std::function<void(std::string_view)> resegment = [&](std::string_view w) {
    auto it = pieces_.find(w);
    if (it == pieces_.end()) return emit_unknown(w, out);
    if (it->second.unused) {
      auto rm = rev_merge.find(std::string(w));
      if (rm != rev_merge.end()) {
        resegment(rm->second.first);
        resegment(rm->second.second);
        return;
      }
    }
    out.push_back(it->second.id);
  };
  for (int32_t i = 0; i >= 0; i = sym[i].next) resegment(text_of(sym[i]));
}

std::string SentencepieceModelTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out = TokenizerBase::decode(ids);
  // sentencepiece drops the dummy prefix's space at the start of the text.
  if (add_dummy_prefix_ && !whitespace_as_suffix_ && !out.empty() && out[0] == ' ') out.erase(0, 1);
  return out;
}

std::unique_ptr<Tokenizer> load_sentencepiece_model(const std::string& dir) {
  const std::string path = dir + "/tokenizer.model";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return std::make_unique<SentencepieceModelTokenizer>(parse_sentencepiece_model(bytes, path), path,
                                                       dir);
}

}  // namespace herd
