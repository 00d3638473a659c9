// CUDA runtime vocabulary for emulated builds: qualifiers, dim3/uint3, error codes, attributes.
// Numeric values of the enums are the CUDA toolkit's, so logs read the same as on a device.
#pragma once

#include <cstddef>
#include <cstdint>

#ifndef DINOTOOLS_CUDA_EMU
#error "csrc/emu is the CUDA emulator: compile with -DDINOTOOLS_CUDA_EMU (see csrc/emu/README.md)"
#endif

// Execution-space qualifiers vanish: every function is an ordinary host function.
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
// __restrict__ and __noinline__ are GCC spellings already (libstdc++ uses the latter): left alone.
#define __constant__
// Bounds are collected from the source by csrc/emu/build.py (a function attribute cannot carry a
// value g++ lets us read back), and checked at launch.
#define __launch_bounds__(...)
// Plain __shared__ cannot be emulated per block: kernels use DT_SHARED / DT_DYN_SHARED.
#define __shared__ DT_EMU_use_DT_SHARED_or_DT_DYN_SHARED_instead_of___shared__

struct uint3 {
  unsigned x, y, z;
};

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}  // NOLINT: implicit, as in CUDA
  constexpr operator uint3() const { return uint3{x, y, z}; }
};

enum cudaError_t : int {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDeviceFunction = 98,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchOutOfResources = 701,
  cudaErrorNotSupported = 801,
};
typedef cudaError_t cudaError;

enum cudaFuncAttribute : int {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
  cudaFuncAttributePreferredSharedMemoryCarveout = 9,
};

enum cudaDeviceAttr : int {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMaxBlockDimX = 2,
  cudaDevAttrMaxBlockDimY = 3,
  cudaDevAttrMaxBlockDimZ = 4,
  cudaDevAttrMaxGridDimX = 5,
  cudaDevAttrMaxGridDimY = 6,
  cudaDevAttrMaxGridDimZ = 7,
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrWarpSize = 10,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrMaxSharedMemoryPerMultiprocessor = 81,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
};

struct CUstream_st;
typedef CUstream_st* cudaStream_t;

static constexpr int warpSize = 32;
