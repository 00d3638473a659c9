// The small vocabulary that lets one kernel source build with nvcc AND run under the CPU emulator
// of csrc/emu (test infrastructure: g++ compiles the unchanged .cu with -DDINOTOOLS_CUDA_EMU).
//
//   DT_LAUNCH(kernel, grid, block, smem_bytes, stream)(args...)   a launch (<<<...>>> under nvcc)
//   DT_SHARED(type, name, dims);       static shared memory, e.g. DT_SHARED(float, sq, [16][33]);
//   DT_DYN_SHARED(type, name);         the block's dynamic shared memory as `type* const name`
//   DT_SET_MAX_DYN_SMEM(kernel, bytes) raise a kernel's dynamic shared-memory limit (cudaError_t)
//
// Everything else is standard CUDA (intrinsics, __half/__nv_bfloat16, cudaGetLastError...). A
// kernel name with a comma in its template arguments needs an alias before DT_LAUNCH. Warp-level
// primitives without a C++ equivalent (mma.sync, ldmatrix) go in a __device__ wrapper whose
// `#ifndef __CUDACC__` branch uses dt_emu_warp_gather(mine, all) / dt_emu_lane() (csrc/emu).
#pragma once

#if defined(__CUDACC__)

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#define DT_LAUNCH(kernel, grid, block, smem_bytes, stream) kernel<<<grid, block, smem_bytes, stream>>>
#define DT_SHARED(type, name, dims) __shared__ type name dims
// One raw byte array per name: `extern __shared__ T x[]` with different T in two instantiations
// of a template kernel would be a redeclaration error.
#define DT_DYN_SHARED(type, name)                                   \
  extern __shared__ __align__(16) unsigned char dt_dyn_smem_##name[]; \
  type* const name = reinterpret_cast<type*>(dt_dyn_smem_##name)
#define DT_SET_MAX_DYN_SMEM(kernel, bytes) \
  cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes))

#elif defined(DINOTOOLS_CUDA_EMU)

#include "../emu/dt_emu.h"

#else
#error "dt_cuda.h is for kernel sources: compile them with nvcc, or with -DDINOTOOLS_CUDA_EMU (csrc/emu)"
#endif
