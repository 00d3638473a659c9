// Selection helpers of the fused kernel: the window row half-widths (csrc/window.h's float32 test,
// on the device), warp reductions in a fixed order, a sorted register buffer with a record of what
// it dropped, and the order-preserving float <-> uint32 keys of the radix select.
#pragma once

#include <stdint.h>
#include <string.h>

#include "dt_cuda.h"

namespace dinotools {
namespace cuda {

__device__ __forceinline__ int imin(int a, int b) { return a < b ? a : b; }
__device__ __forceinline__ int imax(int a, int b) { return a > b ? a : b; }

struct Geometry {  // the window of make_window(h, w, size, circle): rows |dy| <= ry, |dx| <= rx
  int ry, rx;
  float r;  // static_cast<float>(size)
  bool circle;
};

// Half width of window row dy (-1: empty), exactly window.h's loop: the last dx in [0, rx] whose
// float32 distance is <= r. The test is monotone in dx, so a binary search finds the same dx.
__device__ __forceinline__ int row_half(int dy, const Geometry& g) {
  if (dy < -g.ry || dy > g.ry) return -1;
  const int ady = dy < 0 ? -dy : dy;
  auto inside = [&](int dx) {
    const float d = g.circle ? sqrtf(static_cast<float>(dy * dy + dx * dx))
                             : static_cast<float>(ady > dx ? ady : dx);
    return d <= g.r;
  };
  if (!inside(0)) return -1;
  int lo = 0, hi = g.rx;  // inside(lo) holds; find the last dx that is inside
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (inside(mid)) lo = mid; else hi = mid - 1;
  }
  return lo;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

template <typename V>
__device__ __forceinline__ V warp_sum(V v) {  // butterfly: every lane ends with the same, fixed-order sum
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// The KB largest (score, index) pairs seen, sorted descending, and the largest value dropped (from
// the stream or evicted). Whatever was never kept is <= drop, which is what makes the merge exact:
// if no holder dropped a value >= the merged k-th value, every survivor is in some buffer.
template <int KB>
struct TopBuf {
  float s[KB];
  int i[KB];
  float drop;
  __device__ __forceinline__ void clear() {
#pragma unroll
    for (int j = 0; j < KB; ++j) s[j] = -INFINITY, i[j] = -1;
    drop = -INFINITY;
  }
  __device__ __forceinline__ void push(float v, int idx) {
    if (!(v > s[KB - 1])) {  // equal values are dropped too, and recorded
      drop = fmaxf(drop, v);
      return;
    }
    drop = fmaxf(drop, s[KB - 1]);
    s[KB - 1] = v, i[KB - 1] = idx;
#pragma unroll
    for (int j = KB - 1; j > 0; --j) {  // one bubble pass keeps the order (strict: earlier wins ties)
      if (s[j] > s[j - 1]) {
        const float ts = s[j]; s[j] = s[j - 1]; s[j - 1] = ts;
        const int ti = i[j]; i[j] = i[j - 1]; i[j - 1] = ti;
      }
    }
  }
};

__device__ __forceinline__ uint32_t bits_of(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);  // compiles to a register move
  return u;
}
__device__ __forceinline__ uint32_t float_key(float f) {  // a < b  <=>  key(a) < key(b), for non-NaN
  const uint32_t u = bits_of(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ float key_float(uint32_t k) {
  const uint32_t u = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

}  // namespace cuda
}  // namespace dinotools
