// Device checks shared by cuda_device_available() and the backend's constructor.
#pragma once

#include <string>

namespace herd::cuda {

// True when `device` exists and is compute capability 9.0; else false and the reason in *why.
bool device_usable(int device, std::string* why);

}  // namespace herd::cuda
