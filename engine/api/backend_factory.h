// Picks the compute backend for a --device value (cpu, cuda, auto); Engine::create uses it,
// and so do tools that run the model without an engine (herd logits).
#pragma once

#include <memory>
#include <string>

#include "kernels/backend.h"

namespace herd {

// "cpu": the CPU backend with `threads` threads (0 = hardware concurrency). "cuda": device 0,
// throws herd::Error saying why when there is no usable GPU or herd was built without CUDA.
// "auto": cuda when usable, else cpu (with a note on stderr). Anything else: InvalidArgument.
// cuda_device: which GPU (a parallel job gives each rank of a node its own: the local rank).
std::unique_ptr<Backend> make_backend(const std::string& device, int threads,
                                      int cuda_device = 0);

}  // namespace herd
