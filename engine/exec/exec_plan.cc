#include "engine/exec/exec_plan.h"

namespace herd {

SampleSpec make_sample_spec(const std::string& request_id, const SamplingParams& params,
                            uint64_t seed, uint32_t sample_index,
                            const std::vector<int32_t>& prompt,
                            const std::vector<int32_t>& output) {
  SampleSpec s;
  s.request_id = request_id;
  s.params = params;
  s.params.stop.clear();
  s.seed = seed;
  s.sample_index = sample_index;
  s.num_generated = uint32_t(output.size());
  // The penalties read the history (processors.h): repetition marks prompt and output tokens,
  // frequency/presence count output tokens. Without them nothing but the length is needed, so
  // a long prompt is not copied into every step's plan.
  const bool repetition = params.repetition_penalty != 1.0;
  if (repetition) s.prompt_ids = prompt;
  if (repetition || params.frequency_penalty != 0.0 || params.presence_penalty != 0.0)
    s.output_ids = output;
  return s;
}

}  // namespace herd
