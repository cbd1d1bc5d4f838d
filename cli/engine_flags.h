// Engine flags shared by every command that builds an Engine (generate, chat, serve, bench).
#pragma once

#include <set>
#include <string>

#include "cli/flags.h"
#include "engine/api/engine.h"

namespace herd::cli {

// The flag names engine_options_from_flags() reads (value flags, then switches).
const std::set<std::string>& engine_value_flags();
const std::set<std::string>& engine_switches();

// One line naming them, for `herd <command> --help` ("[engine flags]" in a command's usage).
const char* engine_flags_usage();

// Merges extra flag names into the engine's, for a command's own Flags parser.
std::set<std::string> with_engine_value_flags(std::set<std::string> own);
std::set<std::string> with_engine_switches(std::set<std::string> own);

EngineOptions engine_options_from_flags(const Flags& f);

// --tensor-parallel-size/-tp, --pipeline-parallel-size/-pp, --micro-batches, --comm-timeout
// (serve parses its engine flags itself and calls this too).
void parallel_options_from_flags(const Flags& f, EngineOptions& o);

// --quantization fp8|none (serve calls it too).
void quantization_from_flags(const Flags& f, EngineOptions& o);

}  // namespace herd::cli
