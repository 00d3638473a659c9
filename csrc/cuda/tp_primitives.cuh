// Warp-level primitives of the fused topk_propagate kernel: ldmatrix, mma.sync m16n8k16 (bf16/fp16,
// fp32 accumulation), cp.async. Each is a small __device__ function whose #ifndef __CUDACC__ branch is
// a CPU implementation for the emulator (csrc/emu), built on dt_emu_warp_gather, so the emulated build
// runs the real kernel code around them.
//
// Fragment layout (PTX ISA, mma.m16n8k16, g = lane/4, q = lane%4): A regs a0 (row g, k 2q..2q+1),
// a1 (row g+8, k 2q..), a2 (row g, k 2q+8..), a3 (row g+8, k 2q+8..); B regs b0 (k 2q..2q+1, col g),
// b1 (k 2q+8.., col g); C/D c0 (g, 2q), c1 (g, 2q+1), c2 (g+8, 2q), c3 (g+8, 2q+1).
#pragma once

#include <stdint.h>

#include <cstring>
#ifndef __CUDACC__
#include <cmath>
#include <deque>
#include <map>
#include <mutex>
#include <vector>
#endif

#include "dt_cuda.h"  // CUDA headers under nvcc, the emulator's vocabulary otherwise

namespace dinotools {
namespace cuda {

// ldmatrix.x4: lane l passes the address of row l%8 of 8x8 b16 matrix l/8; it receives r[i] = the
// two elements (row l/4, cols 2(l%4), 2(l%4)+1) of matrix i.
__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void* row) {
#ifdef __CUDACC__
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
#else
  const char* all[32];
  dt_emu_warp_gather(static_cast<const char*>(row), all);
  const int l = dt_emu_lane();
  for (int i = 0; i < 4; ++i) std::memcpy(&r[i], all[i * 8 + l / 4] + 4 * (l % 4), 4);
#endif
}

// ldmatrix.x2: lanes 0-15 pass row addresses of two matrices (lanes 16-31 are ignored but must be valid).
__device__ __forceinline__ void ldmatrix_x2(uint32_t r[2], const void* row) {
#ifdef __CUDACC__
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(a));
#else
  const char* all[32];
  dt_emu_warp_gather(static_cast<const char*>(row), all);
  const int l = dt_emu_lane();
  for (int i = 0; i < 2; ++i) std::memcpy(&r[i], all[i * 8 + l / 4] + 4 * (l % 4), 4);
#endif
}

#ifndef __CUDACC__
inline float emu_b16_to_float(uint16_t bits, bool bf16) {
  if (bf16) {
    const uint32_t u = static_cast<uint32_t>(bits) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  __half h;
  std::memcpy(&h, &bits, 2);
  return __half2float(h);
}

// d = a*b + c for the whole warp. Products of two b16 values are exact in fp32; the sum of the 16
// products is taken in double and added to c in double, then rounded once: a pure function of
// (A row, B column, c) like the hardware's, though its rounding differs from any given GPU's.
// Knob "mma_column_rounding" = 1 (tests): results in odd columns of the n8 tile round toward zero
// instead, a GPU whose rounding depends on the column (PTX does not rule it out), so a path that
// recomputed a score in another column would get other bits.
inline void emu_mma_m16n8k16(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4], bool bf16) {
  struct Frag {
    uint32_t a[4], b[2];
    float c[4];
  };
  Frag mine, all[32];
  std::memcpy(mine.a, a, sizeof(mine.a));
  std::memcpy(mine.b, b, sizeof(mine.b));
  std::memcpy(mine.c, c, sizeof(mine.c));
  dt_emu_warp_gather(mine, all);
  float A[16][16], B[16][8];
  for (int l = 0; l < 32; ++l) {
    const int g = l / 4, q = l % 4;
    for (int half = 0; half < 2; ++half) {
      uint16_t e[8];
      std::memcpy(e, all[l].a, 16);
      A[g][2 * q + half] = emu_b16_to_float(e[0 + half], bf16);
      A[g + 8][2 * q + half] = emu_b16_to_float(e[2 + half], bf16);
      A[g][2 * q + 8 + half] = emu_b16_to_float(e[4 + half], bf16);
      A[g + 8][2 * q + 8 + half] = emu_b16_to_float(e[6 + half], bf16);
      uint16_t f[4];
      std::memcpy(f, all[l].b, 8);
      B[2 * q + half][g] = emu_b16_to_float(f[0 + half], bf16);
      B[2 * q + 8 + half][g] = emu_b16_to_float(f[2 + half], bf16);
    }
  }
  const int l = dt_emu_lane(), g = l / 4, q = l % 4;
  const int rows[4] = {g, g, g + 8, g + 8}, cols[4] = {2 * q, 2 * q + 1, 2 * q, 2 * q + 1};
  const bool skew = dt_emu::knob("mma_column_rounding") == 1;
  for (int e = 0; e < 4; ++e) {
    double s = 0.0;
    for (int k = 0; k < 16; ++k) s += static_cast<double>(A[rows[e]][k]) * B[k][cols[e]];
    s += static_cast<double>(c[e]);
    float r = static_cast<float>(s);
    if (skew && cols[e] % 2 == 1 && std::fabs(static_cast<double>(r)) > std::fabs(s)) r = std::nextafter(r, 0.f);
    d[e] = r;
  }
}
#endif

template <typename T>
__device__ __forceinline__ void mma_m16n8k16(float c[4], const uint32_t a[4], const uint32_t b[2]);

template <>
__device__ __forceinline__ void mma_m16n8k16<__nv_bfloat16>(float c[4], const uint32_t a[4], const uint32_t b[2]) {
#ifdef __CUDACC__
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
               "{%0,%1,%2,%3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  emu_mma_m16n8k16(c, a, b, c, true);
#endif
}

template <>
__device__ __forceinline__ void mma_m16n8k16<__half>(float c[4], const uint32_t a[4], const uint32_t b[2]) {
#ifdef __CUDACC__
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
               "{%0,%1,%2,%3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  emu_mma_m16n8k16(c, a, b, c, false);
#endif
}

#ifndef __CUDACC__
// Emulated cp.async: each CUDA thread's copies wait in groups and land only at cp_async_wait, as late
// as a GPU may land them, so reading a stage before waiting sees the emulator's poisoned (NaN) memory.
struct EmuCopy {
  char* dst;
  const char* src;
  int bytes;
};
struct EmuAsync {
  std::vector<EmuCopy> open;                  // issued since the last commit
  std::deque<std::vector<EmuCopy>> committed;  // oldest first
};
inline std::mutex& emu_async_mutex() {
  static std::mutex m;
  return m;
}
inline EmuAsync& emu_async_state() {  // caller holds the mutex
  static std::map<long long, EmuAsync> states;
  const long long block = (static_cast<long long>(blockIdx.z) * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
  const long long thread = (static_cast<long long>(threadIdx.z) * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
  return states[block * 4096 + thread];
}
#endif

// cp.async of 16 bytes global -> shared; src_bytes < 16 zero-fills the rest (0: all zeros, src unread).
__device__ __forceinline__ void cp_async_16(void* dst, const void* src, int src_bytes) {
#ifdef __CUDACC__
  const unsigned d = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(src_bytes));
#else
  const std::lock_guard<std::mutex> lock(emu_async_mutex());
  emu_async_state().open.push_back({static_cast<char*>(dst), static_cast<const char*>(src), src_bytes});
#endif
}

__device__ __forceinline__ void cp_async_commit() {
#ifdef __CUDACC__
  asm volatile("cp.async.commit_group;\n" ::);
#else
  const std::lock_guard<std::mutex> lock(emu_async_mutex());
  EmuAsync& st = emu_async_state();
  st.committed.push_back(std::move(st.open));
  st.open.clear();
#endif
}

// Waits until at most N committed groups of this thread are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
#ifdef __CUDACC__
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#else
  const std::lock_guard<std::mutex> lock(emu_async_mutex());
  EmuAsync& st = emu_async_state();
  while (st.committed.size() > static_cast<size_t>(N)) {
    for (const EmuCopy& c : st.committed.front()) {
      if (c.bytes > 0) std::memcpy(c.dst, c.src, c.bytes);
      std::memset(c.dst + c.bytes, 0, 16 - c.bytes);
    }
    st.committed.pop_front();
  }
#endif
}

}  // namespace cuda
}  // namespace dinotools
