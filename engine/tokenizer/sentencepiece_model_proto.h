// Reads a sentencepiece tokenizer.model (a serialized sentencepiece ModelProto) — only the
// fields herd's tokenizer needs: the pieces (text, score, type), the trainer's model type,
// byte_fallback and special ids, and the normalizer's whitespace options.
//
// A small protobuf wire-format reader rather than libprotobuf + a copy of
// sentencepiece_model.proto: the engine and CLI libraries do not link protobuf (only the gRPC
// server does), there is no generated-code step in the tokenizer's build, and eight fields of a
// stable, documented schema (field numbers below, from sentencepiece_model.proto) are ~150
// lines that reject truncated or malformed input with the byte offset at fault. Unknown fields
// are skipped by wire type, so newer files with more fields still load.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace herd {

struct SentencepieceModelProto {
  // ModelProto.SentencePiece.Type
  enum PieceType : int {
    kNormal = 1,
    kUnknown = 2,
    kControl = 3,
    kUserDefined = 4,
    kUnused = 5,
    kByte = 6
  };
  // TrainerSpec.ModelType
  enum ModelType : int { kUnigram = 1, kBpe = 2, kWord = 3, kChar = 4 };

  struct Piece {
    std::string piece;   // field 1
    float score = 0;     // field 2
    int type = kNormal;  // field 3
  };
  std::vector<Piece> pieces;  // ModelProto field 1

  // TrainerSpec (ModelProto field 2); defaults as in the .proto.
  int model_type = kUnigram;                // 3
  bool treat_whitespace_as_suffix = false;  // 24
  bool byte_fallback = false;               // 35
  int32_t unk_id = 0;                       // 40
  int32_t bos_id = 1;                       // 41
  int32_t eos_id = 2;                       // 42
  int32_t pad_id = -1;                      // 43

  // NormalizerSpec (ModelProto field 3).
  std::string normalizer_name;           // 1
  std::string precompiled_charsmap;      // 2
  bool add_dummy_prefix = true;          // 3
  bool remove_extra_whitespaces = true;  // 4
  bool escape_whitespaces = true;        // 5
};

// Parses the bytes of a tokenizer.model; throws herd::Error naming `path` and the offset of
// the first malformed field.
SentencepieceModelProto parse_sentencepiece_model(std::string_view bytes, const std::string& path);

}  // namespace herd
