// Tile constants, per-block context and the row loader of the fused topk_propagate kernel.
#pragma once

#include "tp_select.cuh"
#include "tp_tile.cuh"

namespace dinotools {
namespace cuda {

constexpr int kQRows = 4;                       // query tile: 4 frame rows ...
constexpr int kQCols = 16;                      // ... x 16 columns; one m-tile per row
constexpr int kQueries = kQRows * kQCols;       // 64 queries per block
constexpr int kMT = 2;                          // m-tiles (query rows) per warp: a row pair
constexpr int kSegs = 4;                        // segments (candidate row pieces) in flight per stage
constexpr int kSegCols = 48;                    // candidate columns per segment
constexpr int kNT = kSegCols / 8;               // n-tiles per segment
constexpr int kWarps = (kQRows / kMT) * kSegs;  // warp (pair, seg): 2 row pairs x 4 segments
constexpr int kThreads = 32 * kWarps;
constexpr int kBuf = 8;                         // register top-k buffer per (lane, query)
constexpr int kHolders = kSegs * 4;             // buffers per query: 4 segment warps x 4 lanes of a quad
constexpr int kCandRows = kSegs * kSegCols;     // staged candidate rows per stage
constexpr int kMR = 4;                          // output: M values per lane per pass (128 per warp)
static_assert(kQCols == 16, "a query row is exactly one m16 tile");
static_assert(kQRows % kMT == 0 && kWarps == 8 && kThreads == 256, "8 warps: 2 row pairs x 4 segments");
static_assert(kSegCols % 16 == 0, "segments are whole ldmatrix.x4 pairs of n-tiles");
static_assert(kMT * kNT <= 32, "need bits fit one word");
static_assert(kSegCols >= kQCols, "a segment covers at least the query columns");
static_assert(kBuf >= 1 && kBuf <= 16, "register buffer stays in registers");
static_assert(kQueries % kWarps == 0, "per-query phases give every warp the same number of queries");

enum : int { kOk = 0, kTies = 1, kUnknown = 2 };  // what the merged buffers say about a query

template <typename T>
struct Block {
  const T* cur;        // [h,w,D]
  const T* ctx;        // [t,h,w,D]
  const float* probs;  // [t,h,w,M]
  float* out;          // [h,w,M]
  int t, h, w, d, m, k;
  Geometry geo;
  float temp;
  int nd;              // channel chunks: D padded to a multiple of Tile<T>::kDK
  bool vec;            // rows are 16-byte aligned and D*sizeof(T) % 16 == 0: cp.async
  int i0, j0;          // first query row and column of the block
  const T* sq;         // resident queries [64][ldq] (nullptr: streamed with each stage)
  int ldq;
};

template <typename T>
__device__ __forceinline__ T zero_of();
template <>
__device__ __forceinline__ float zero_of<float>() { return 0.f; }
template <>
__device__ __forceinline__ __half zero_of<__half>() { return __float2half(0.f); }
template <>
__device__ __forceinline__ __nv_bfloat16 zero_of<__nv_bfloat16>() { return __float2bfloat16(0.f); }

// dst[row][0..kDK) = channels [d0, d0+kDK) of row_ptr(row) (zeros past D or for a null row), for
// rows [0, rows), spread over `nthreads` threads starting at `first`. The caller commits and waits.
template <typename T, class RowPtr>
__device__ __forceinline__ void load_rows(const Block<T>& b, T* dst, int ld, int rows, int first, int nthreads,
                                          int d0, RowPtr row_ptr) {
  constexpr int kEpc = 16 / static_cast<int>(sizeof(T)), kCpr = Tile<T>::kDK / kEpc;
  for (int e = first; e < rows * kCpr; e += nthreads) {
    const int row = e / kCpr, part = e % kCpr, dd = d0 + part * kEpc;
    const T* p = row_ptr(row);
    int n = p ? b.d - dd : 0;
    n = n < 0 ? 0 : (n > kEpc ? kEpc : n);
    T* o = dst + row * ld + part * kEpc;
    if (b.vec) {
      cp_async_16(o, n > 0 ? p + dd : b.ctx, n * static_cast<int>(sizeof(T)));
    } else {
      for (int x = 0; x < kEpc; ++x) o[x] = x < n ? p[dd + x] : zero_of<T>();
    }
  }
}

}  // namespace cuda
}  // namespace dinotools
