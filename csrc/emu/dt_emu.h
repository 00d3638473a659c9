// The CUDA emulator's device-side vocabulary, included by csrc/cuda/dt_cuda.h in emulated builds
// (DINOTOOLS_CUDA_EMU); see csrc/emu/README.md.
#pragma once

#include <cmath>
#include <cstdint>

#include "cuda_api.h"
#include "device_math.h"
#include "half.h"
#include "intrinsics.h"
#include "launch.h"
#include "types.h"
