// Byte encodings of ExecPlan and ExecResult for the ranks of a parallel job (rank 0 sends each
// plan to every rank; the sampling rank sends the result back). Fixed little-endian layout
// with a leading tag and version; decoding checks every length against the bytes left and
// throws herd::Error on a malformed message (a peer speaking another herd version).
#pragma once

#include <cstdint>
#include <vector>

#include "engine/exec/exec_plan.h"

namespace herd {

enum class RankMessage : uint8_t { kPlan = 1, kResult = 2, kStop = 3 };

// Message tags between ranks (world ranks): plans and stop from rank 0, results to rank 0,
// hidden states from stage s to stage s+1.
enum RankTag : int { kTagPlan = 1, kTagResult = 2, kTagHidden = 3 };

std::vector<uint8_t> encode_plan(const ExecPlan& plan);
std::vector<uint8_t> encode_result(const ExecResult& result);
std::vector<uint8_t> encode_stop();

// The kind of a message (its first byte); throws on an empty or unknown one.
RankMessage message_kind(const std::vector<uint8_t>& bytes);
ExecPlan decode_plan(const std::vector<uint8_t>& bytes);
ExecResult decode_result(const std::vector<uint8_t>& bytes);

}  // namespace herd
