// CUDA runtime host API for emulated builds: errors, device attributes, kernel attributes.
// Declared here for both the emulated kernels and the binding (through csrc/cuda/dt_host.h).
#pragma once

#include <cstddef>

#include "types.h"

cudaError_t cudaGetLastError();   // returns and clears the last launch error, as the runtime does
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorString(cudaError_t err);
const char* cudaGetErrorName(cudaError_t err);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaDeviceSynchronize();  // launches run to completion before returning: nothing to wait for
cudaError_t cudaStreamSynchronize(cudaStream_t stream);

namespace dt_emu {
cudaError_t set_kernel_attribute(const void* kernel, const char* name, cudaFuncAttribute attr, int value);

// Test hooks for emulated bindings (csrc/cuda/dt_host.h; a real build has neither): `knob(name)` is
// an integer a test set with set_knob (-1 when unset), e.g. a forced launch plan; `note(text)` leaves
// a line that a test reads back with last_note(), e.g. which plan and loader a launch used.
int knob(const char* name);
void note(const char* text);
}  // namespace dt_emu

template <class F>
cudaError_t cudaFuncSetAttribute(F* kernel, cudaFuncAttribute attr, int value) {
  return dt_emu::set_kernel_attribute(reinterpret_cast<const void*>(kernel), "kernel", attr, value);
}
