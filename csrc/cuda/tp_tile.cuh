// One warp's score tile of the fused kernel: MT m-tiles of 16 queries x NT n-tiles of 8 candidates,
// accumulated over one staged chunk of channels. bf16/fp16 go through mma.sync (fp32 accumulation);
// fp32 features use SIMT fmaf in the same register layout (c0 (g,2q), c1 (g,2q+1), c2 (g+8,2q),
// c3 (g+8,2q+1)), so the epilogue is shared. Every score is a fixed sequence of operations on its own
// query row and candidate column, over the channels in order: the rescan paths recompute bit-identical
// scores by calling this with MT = NT = 1.
#pragma once

#include "tp_primitives.cuh"

namespace dinotools {
namespace cuda {

struct alignas(16) F4 {  // four channels of fp32 features, one 16-byte shared-memory load
  float x, y, z, w;
};

template <typename T>
struct Tile {  // half types: 64 channels per stage, rows padded by 16 bytes (conflict-free ldmatrix)
  static constexpr int kDK = 64;
  static constexpr int kPad = 8;
  static constexpr bool kMma = true;
};
template <>
struct Tile<float> {  // fp32: the same 128 bytes per row chunk, rows padded by 16 bytes
  static constexpr int kDK = 32;
  static constexpr int kPad = 4;
  static constexpr bool kMma = false;
};
static_assert(Tile<__half>::kDK % 16 == 0, "half chunks are whole mma k-steps");
static_assert(Tile<float>::kDK % 4 == 0, "fp32 chunks are whole float4 steps");
static_assert((Tile<__half>::kPad * 2) % 16 == 0 && (Tile<float>::kPad * 4) % 16 == 0,
              "row padding keeps 16-byte alignment for cp.async, ldmatrix and float4");
static_assert(((Tile<__half>::kDK + Tile<__half>::kPad) * 2 / 4) % 32 == 4, "8 ldmatrix rows hit distinct banks");
static_assert(((Tile<float>::kDK + Tile<float>::kPad)) % 32 == 4, "float4 rows g=0..7 hit distinct banks");

// acc[r][n] += A(m-tile r) . B(n-tile n) over one chunk; A rows at A + row*lda, B candidates at
// B + cand*ldb (channels contiguous). need bit r*NT+n: this pair is wanted (warp-uniform).
template <typename T, int MT, int NT>
__device__ __forceinline__ void tile_chunk(float (&acc)[MT][NT][4], const T* A, int lda, const T* B, int ldb,
                                           unsigned need) {
  const int lane = threadIdx.x & 31;
  if constexpr (Tile<T>::kMma) {
#pragma unroll
    for (int ks = 0; ks < Tile<T>::kDK; ks += 16) {
      uint32_t a[MT][4], b[NT][2];
#pragma unroll
      for (int r = 0; r < MT; ++r) {
        if (need >> (r * NT) & ((1u << NT) - 1)) {
          ldmatrix_x4(a[r], A + (r * 16 + (lane & 15)) * lda + ks + (lane >> 4) * 8);
        }
      }
#pragma unroll
      for (int n = 0; n + 1 < NT; n += 2) {
        unsigned pair = 0;
#pragma unroll
        for (int r = 0; r < MT; ++r) pair |= need >> (r * NT + n) & 3u;
        if (pair) {
          uint32_t x[4];
          ldmatrix_x4(x, B + (n * 8 + ((lane >> 4) << 3) + (lane & 7)) * ldb + ks + ((lane >> 3) & 1) * 8);
          b[n][0] = x[0], b[n][1] = x[1], b[n + 1][0] = x[2], b[n + 1][1] = x[3];
        }
      }
      if constexpr (NT % 2 == 1) {
        unsigned one = 0;
#pragma unroll
        for (int r = 0; r < MT; ++r) one |= need >> (r * NT + NT - 1) & 1u;
        if (one) ldmatrix_x2(b[NT - 1], B + ((NT - 1) * 8 + (lane & 7)) * ldb + ks + ((lane >> 3) & 1) * 8);
      }
#pragma unroll
      for (int r = 0; r < MT; ++r)
#pragma unroll
        for (int n = 0; n < NT; ++n)
          if (need >> (r * NT + n) & 1u) mma_m16n8k16<T>(acc[r][n], a[r], b[n]);
    }
  } else {
    const int g = lane >> 2, q = lane & 3;
#pragma unroll 2
    for (int k = 0; k < Tile<T>::kDK; k += 4) {
      F4 a[MT][2], b[NT][2];
#pragma unroll
      for (int r = 0; r < MT; ++r)
#pragma unroll
        for (int h = 0; h < 2; ++h) a[r][h] = *reinterpret_cast<const F4*>(A + (r * 16 + g + 8 * h) * lda + k);
#pragma unroll
      for (int n = 0; n < NT; ++n)
#pragma unroll
        for (int c = 0; c < 2; ++c) b[n][c] = *reinterpret_cast<const F4*>(B + (n * 8 + 2 * q + c) * ldb + k);
#pragma unroll
      for (int r = 0; r < MT; ++r)
#pragma unroll
        for (int n = 0; n < NT; ++n) {
          if (!(need >> (r * NT + n) & 1u)) continue;
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const F4 x = a[r][e >> 1], y = b[n][e & 1];
            float s = acc[r][n][e];
            s = fmaf(x.x, y.x, s);
            s = fmaf(x.y, y.y, s);
            s = fmaf(x.z, y.z, s);
            acc[r][n][e] = fmaf(x.w, y.w, s);
          }
        }
    }
  }
}

}  // namespace cuda
}  // namespace dinotools
