// Host-side shims for the torch binding of the CUDA kernels, so that one binding source compiles
// into the real CUDA build (dinotools._C) and into the emulated extension (dinotools._C_emu, whose
// "device" tensors are CPU tensors and whose op lives in the dinotools_emu namespace).
#pragma once

#include <ATen/ATen.h>

#include <string>

#if defined(DINOTOOLS_CUDA_EMU)

#include "../emu/cuda_api.h"

// TORCH_LIBRARY_IMPL(DT_HOST_LIBRARY, DT_HOST_DISPATCH_KEY, m): where the binding registers.
#define DT_HOST_LIBRARY dinotools_emu
#define DT_HOST_DISPATCH_KEY CPU

namespace dinotools {
namespace host {

struct DeviceGuard {  // one emulated device: nothing to switch
  explicit DeviceGuard(c10::Device) {}
};
inline bool on_device(const at::Tensor& t) { return t.is_cpu(); }
inline void* current_stream() { return nullptr; }  // the emulator runs launches synchronously
// Test hooks (tests/test_cuda_kernel.py): a setting the test chose (-1: none), a line it reads back.
inline int test_knob(const char* name) { return dt_emu::knob(name); }
inline void test_note(const std::string& text) { dt_emu::note(text.c_str()); }

}  // namespace host
}  // namespace dinotools

#else

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime.h>

#define DT_HOST_LIBRARY dinotools
#define DT_HOST_DISPATCH_KEY CUDA

namespace dinotools {
namespace host {

using DeviceGuard = c10::cuda::CUDAGuard;
inline bool on_device(const at::Tensor& t) { return t.is_cuda(); }
inline void* current_stream() { return at::cuda::getCurrentCUDAStream().stream(); }
inline int test_knob(const char*) { return -1; }  // the emulator's test hooks do nothing here
inline void test_note(const std::string&) {}

}  // namespace host
}  // namespace dinotools

#endif

namespace dinotools {
namespace host {

// Most shared memory one block of `device` may use once a kernel opts in (sm_90: 232448 bytes).
inline int max_shared_memory_optin(const at::Tensor& on) {
  int value = 0;
  const cudaError_t err = cudaDeviceGetAttribute(&value, cudaDevAttrMaxSharedMemoryPerBlockOptin,
                                                 static_cast<int>(on.device().index() < 0 ? 0 : on.device().index()));
  TORCH_CHECK(err == cudaSuccess, "cudaDeviceGetAttribute failed: ", cudaGetErrorString(err));
  return value;
}

inline const char* error_string(int err) { return cudaGetErrorString(static_cast<cudaError_t>(err)); }

}  // namespace host
}  // namespace dinotools
