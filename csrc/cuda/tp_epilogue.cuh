// Per-query phases of the fused kernel, one warp per query: the weighted sum of the survivors'
// probabilities with the notebook's renormalisation, and the exact slow paths, which rescan the
// query's window with the same tile arithmetic (bit-identical scores) when its register buffers cannot
// settle it: ties to the k-th value beyond the buffers (one rescan), k > kBuf or a dropped value above
// the merged k-th (radix select: 4 rescans of 8 bits each, then the output rescan).
#pragma once

#include "tp_block.cuh"

namespace dinotools {
namespace cuda {

// out[q,:] = renormalised sum over survivors of expf(s/T - mx/T) * P[idx,:]. each_survivor(f) calls
// f(score, idx) on every lane for each survivor, in one fixed order (so sums are deterministic); it
// is called once per 128 objects of M.
template <typename T, class Each>
__device__ void write_output(const Block<T>& b, int64_t q, float mx, Each each_survivor) {
  const int lane = threadIdx.x & 31;
  const float mxt = mx / b.temp;  // softmax(s / T): divide first, as the notebook does
  float* o = b.out + q * b.m;
  float part = 0.f;
  for (int m0 = 0; m0 < b.m; m0 += 32 * kMR) {
    float acc[kMR], sum_w = 0.f;
#pragma unroll
    for (int r = 0; r < kMR; ++r) acc[r] = 0.f;
    each_survivor([&](float s, int idx) {
      const float e = expf(s / b.temp - mxt);
      sum_w += e;
      const float* p = b.probs + static_cast<int64_t>(idx) * b.m + m0 + lane;
#pragma unroll
      for (int r = 0; r < kMR; ++r)
        if (m0 + lane + 32 * r < b.m) acc[r] = fmaf(e, p[32 * r], acc[r]);
    });
#pragma unroll
    for (int r = 0; r < kMR; ++r) {
      if (m0 + lane + 32 * r < b.m) {
        const float v = acc[r] / sum_w;
        o[m0 + lane + 32 * r] = v;
        part += v;
      }
    }
  }
  const float total = warp_sum(part);
  for (int c = lane; c < b.m; c += 32) o[c] = o[c] / total;  // each lane rereads only its own writes
}

// Calls f(score, idx) on every lane for each candidate of query (i, j)'s window, in (tau, dy, dx)
// order; f must not write the area. `area`: this warp's private shared memory.
// Scores equal the main loop's bit for bit because every mma.sync gets the main loop's operands: the
// query's own m-tile (block rows j0..j0+15, same row of it) and the main loop's n-tile, which starts at
// the block's union start clo plus a multiple of 8 (segments are 48 = 6 x 8 columns from clo) and holds
// its candidates up to chi (zeros past it), over the same channel chunks in the same order. PTX fixes
// where an element lives in the tile, not how the accumulation rounds: tiles aligned at vlo instead
// would put a candidate in another column, and hardware whose rounding depended on the column could
// then give a rescanned score below the k-th value the main loop found (the tie path keeps s >= kth).
template <typename T, class F>
__device__ void rescan(const Block<T>& b, int i, int j, T* area, F f) {
  constexpr int kLd = Tile<T>::kDK + Tile<T>::kPad;
  const int lane = threadIdx.x & 31, rq = j - b.j0;
  const int clo = imax(0, b.j0 - b.geo.rx), chi = imin(b.w - 1, imin(b.j0 + kQCols, b.w) - 1 + b.geo.rx);
  T* sb = area;                // [8][kLd] candidates
  T* sa = area + 8 * kLd;      // [16][kLd] queries, when they are not resident
  float* row = reinterpret_cast<float*>(area + 24 * kLd) + 256;  // [8] scores, after the histogram
  const T* arow = b.cur + (static_cast<int64_t>(i) * b.w + b.j0) * b.d;
  for (int tau = 0; tau < b.t; ++tau) {
    for (int dy = -b.geo.ry; dy <= b.geo.ry; ++dy) {
      const int u = i + dy, c = row_half(dy, b.geo);
      if (u < 0 || u >= b.h || c < 0) continue;
      const int vlo = imax(0, j - c), vhi = imin(b.w - 1, j + c);
      const T* crow = b.ctx + (static_cast<int64_t>(tau) * b.h + u) * b.w * b.d;
      for (int v0 = clo + (vlo - clo) / 8 * 8; v0 <= vhi; v0 += 8) {  // vlo >= clo, vhi <= chi
        float acc[1][1][4] = {{{0.f, 0.f, 0.f, 0.f}}};
        for (int dc = 0; dc < b.nd; ++dc) {
          if (dc > 0) __syncwarp();  // chunk dc-1 is read; for dc = 0 the publish barrier below did it
          load_rows(b, sb, kLd, 8, lane, 32, dc * Tile<T>::kDK,
                    [&](int r) { return v0 + r <= chi ? crow + static_cast<int64_t>(v0 + r) * b.d : nullptr; });
          if (!b.sq) {
            load_rows(b, sa, kLd, 16, lane, 32, dc * Tile<T>::kDK,
                      [&](int r) { return b.j0 + r < b.w ? arow + static_cast<int64_t>(r) * b.d : nullptr; });
          }
          cp_async_commit();
          cp_async_wait<0>();
          __syncwarp();
          const T* A = b.sq ? b.sq + ((i - b.i0) * 16) * b.ldq + dc * Tile<T>::kDK : sa;
          tile_chunk<T, 1, 1>(acc, A, b.sq ? b.ldq : kLd, sb, kLd, 1u);
        }
        if ((lane >> 2) == (rq & 7)) {  // the quad holding the query's row publishes its 8 scores
          row[2 * (lane & 3)] = acc[0][0][(rq >> 3) * 2];
          row[2 * (lane & 3) + 1] = acc[0][0][(rq >> 3) * 2 + 1];
        }
        __syncwarp();
        for (int col = imax(0, vlo - v0); col < 8 && v0 + col <= vhi; ++col)  // the window's columns only
          f(row[col], static_cast<int>((static_cast<int64_t>(tau) * b.h + u) * b.w + v0 + col));
      }
    }
  }
  __syncwarp();
}

// The k-th largest window score of query (i, j), counted with multiplicity (-inf when the window
// holds fewer than k): an MSB-first radix select over order-preserving keys, 8 bits per rescan.
template <typename T>
__device__ float radix_kth(const Block<T>& b, int i, int j, T* area, int* hist) {
  const int lane = threadIdx.x & 31;
  uint32_t prefix = 0, mask = 0;
  int remaining = b.k;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int x = lane; x < 256; x += 32) hist[x] = 0;
    __syncwarp();
    rescan(b, i, j, area, [&](float s, int) {
      const uint32_t key = float_key(s);
      if (lane == 0 && (key & mask) == prefix) hist[(key >> shift) & 255] += 1;
    });
    int sel = -1, above = 0;
    if (lane == 0) {
      for (int x = 255; x >= 0; --x) {
        if (above + hist[x] >= remaining) {
          sel = x;
          break;
        }
        above += hist[x];
      }
    }
    sel = __shfl_sync(0xffffffffu, sel, 0);
    above = __shfl_sync(0xffffffffu, above, 0);
    __syncwarp();
    if (sel < 0) return -INFINITY;  // only on the first pass: fewer than k candidates
    remaining -= above;
    prefix |= static_cast<uint32_t>(sel) << shift;
    mask |= 255u << shift;
  }
  return key_float(prefix);
}

}  // namespace cuda
}  // namespace dinotools
