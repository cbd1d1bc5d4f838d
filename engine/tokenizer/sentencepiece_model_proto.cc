#include "engine/tokenizer/sentencepiece_model_proto.h"

#include <cstring>

#include "engine/common/error.h"

namespace herd {

namespace {

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

// One message's bytes; `base` is their offset in the file, for error messages.
class Reader {
 public:
  Reader(std::string_view data, size_t base, const std::string& path)
      : data_(data), base_(base), path_(path) {}

  bool done() const { return pos_ >= data_.size(); }

  // Reads a field key; returns the field number and sets `wire`.
  uint32_t key(uint32_t& wire) {
    size_t at = pos_;
    uint64_t k = varint();
    wire = static_cast<uint32_t>(k & 7);
    uint64_t field = k >> 3;
    if (field == 0 || field > 0x1FFFFFFF) fail(at, "invalid field number");
    return static_cast<uint32_t>(field);
  }

  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      if (pos_ >= data_.size()) fail(pos_, "truncated varint");
      uint8_t b = static_cast<uint8_t>(data_[pos_++]);
      if (shift == 63 && b > 1) fail(pos_ - 1, "varint overflows 64 bits");
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    fail(pos_, "varint longer than 10 bytes");
  }

  std::string_view bytes(size_t& offset) {
    uint64_t n = varint();
    if (n > data_.size() - pos_) fail(pos_, "length-delimited field runs past its message");
    offset = base_ + pos_;
    std::string_view v = data_.substr(pos_, n);
    pos_ += n;
    return v;
  }

  float fixed32_float() {
    if (data_.size() - pos_ < 4) fail(pos_, "truncated 32-bit field");
    uint32_t u = 0;
    for (int i = 3; i >= 0; --i) u = (u << 8) | static_cast<uint8_t>(data_[pos_ + i]);
    pos_ += 4;
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
  }

  // Checks that a known field came with the wire type the schema gives it.
  void expect(uint32_t wire, uint32_t want, uint32_t field) {
    if (wire != want)
      fail(pos_, "field " + std::to_string(field) + " has wire type " + std::to_string(wire) +
                     ", expected " + std::to_string(want));
  }

  void skip(uint32_t wire) {
    size_t at = pos_;
    size_t unused;
    switch (wire) {
      case kVarint:
        varint();
        return;
      case kFixed64:
        if (data_.size() - pos_ < 8) fail(at, "truncated 64-bit field");
        pos_ += 8;
        return;
      case kLengthDelimited:
        bytes(unused);
        return;
      case kFixed32:
        if (data_.size() - pos_ < 4) fail(at, "truncated 32-bit field");
        pos_ += 4;
        return;
      default:  // groups (3, 4) are not used by sentencepiece; 6 and 7 do not exist
        fail(at, "unsupported wire type " + std::to_string(wire));
    }
  }

  size_t pos() const { return pos_; }

  [[noreturn]] void fail(size_t at, const std::string& what) const {
    throw Error(path_ + ": not a sentencepiece model (protobuf, byte " +
                std::to_string(base_ + at) + "): " + what);
  }

 private:
  std::string_view data_;
  size_t base_;
  const std::string& path_;
  size_t pos_ = 0;
};

int32_t as_int32(uint64_t v) { return static_cast<int32_t>(static_cast<uint32_t>(v)); }

SentencepieceModelProto::Piece read_piece(std::string_view data, size_t base,
                                          const std::string& path) {
  SentencepieceModelProto::Piece p;
  Reader r(data, base, path);
  while (!r.done()) {
    uint32_t wire;
    uint32_t f = r.key(wire);
    size_t off;
    if (f == 1) {
      r.expect(wire, kLengthDelimited, f);
      p.piece = std::string(r.bytes(off));
    } else if (f == 2) {
      r.expect(wire, kFixed32, f);
      p.score = r.fixed32_float();
    } else if (f == 3) {
      r.expect(wire, kVarint, f);
      p.type = as_int32(r.varint());
    } else {
      r.skip(wire);
    }
  }
  return p;
}

void read_trainer_spec(std::string_view data, size_t base, const std::string& path,
                       SentencepieceModelProto& m) {
  Reader r(data, base, path);
  while (!r.done()) {
    uint32_t wire;
    uint32_t f = r.key(wire);
    switch (f) {
      case 3:
      case 24:
      case 35:
      case 40:
      case 41:
      case 42:
      case 43: {
        r.expect(wire, kVarint, f);
        uint64_t v = r.varint();
        if (f == 3) m.model_type = as_int32(v);
        if (f == 24) m.treat_whitespace_as_suffix = v != 0;
        if (f == 35) m.byte_fallback = v != 0;
        if (f == 40) m.unk_id = as_int32(v);
        if (f == 41) m.bos_id = as_int32(v);
        if (f == 42) m.eos_id = as_int32(v);
        if (f == 43) m.pad_id = as_int32(v);
        break;
      }
      default:
        r.skip(wire);
    }
  }
}

void read_normalizer_spec(std::string_view data, size_t base, const std::string& path,
                          SentencepieceModelProto& m) {
  Reader r(data, base, path);
  while (!r.done()) {
    uint32_t wire;
    uint32_t f = r.key(wire);
    size_t off;
    if (f == 1 || f == 2) {
      r.expect(wire, kLengthDelimited, f);
      (f == 1 ? m.normalizer_name : m.precompiled_charsmap) = std::string(r.bytes(off));
    } else if (f == 3 || f == 4 || f == 5) {
      r.expect(wire, kVarint, f);
      bool v = r.varint() != 0;
      if (f == 3) m.add_dummy_prefix = v;
      if (f == 4) m.remove_extra_whitespaces = v;
      if (f == 5) m.escape_whitespaces = v;
    } else {
      r.skip(wire);
    }
  }
}

}  // namespace

SentencepieceModelProto parse_sentencepiece_model(std::string_view bytes, const std::string& path) {
  SentencepieceModelProto m;
  Reader r(bytes, 0, path);
  bool trainer_seen = false;
  while (!r.done()) {
    uint32_t wire;
    uint32_t f = r.key(wire);
    size_t off = 0;
    if (f == 1 || f == 2 || f == 3) {
      r.expect(wire, kLengthDelimited, f);
      std::string_view sub = r.bytes(off);
      if (f == 1) m.pieces.push_back(read_piece(sub, off, path));
      if (f == 2) {
        read_trainer_spec(sub, off, path, m);
        trainer_seen = true;
      }
      if (f == 3) read_normalizer_spec(sub, off, path, m);
    } else {
      r.skip(wire);
    }
  }
  if (m.pieces.empty()) throw Error(path + ": sentencepiece model has no pieces");
  if (!trainer_seen) throw Error(path + ": sentencepiece model has no trainer_spec");
  return m;
}

}  // namespace herd
