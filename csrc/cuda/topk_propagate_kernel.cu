// CUDA kernels of dinotools::topk_propagate. Only CUDA headers (through dt_cuda.h): the torch binding
// lives in topk_propagate_binding.cpp, so this file compiles with plain nvcc on a CPU-only machine,
// and with g++ under the CPU emulator of csrc/emu (tests).
//
// 1. score_kernel: one block per (16 consecutive queries of one row, context frame). For every
//    window row dy it stages the band of candidate columns of context row i+dy in shared memory,
//    32 channels at a time (converted to fp32), and every candidate is reused by the 16 queries;
//    each thread keeps 3 (query, candidate) dot products in fp32 registers across all of D.
//    Scores land in a [h*w, t, K] scratch (O(window), never the dense [h*w, t*h*w] matrix).
// 2. mix_kernel: one warp per query: joint top-k over its t*K scores by walking distinct values
//    downwards (exact k-th value with multiplicity, so ties to it survive), softmax over the
//    survivors and the weighted sum of probabilities, fused; then the notebook's renormalisation.
#include <cmath>
#include <cstdint>

#include "dt_cuda.h"
#include "topk_propagate_kernel.h"

namespace dinotools {
namespace cuda {
namespace {

constexpr int kQueries = 16;                      // queries per score block (one row segment)
constexpr int kCols = 48;                         // candidate columns staged per pass
constexpr int kChunk = 32;                        // channels staged per pass
constexpr int kThreads = 256;                     // threads per block (both kernels)
constexpr int kPairs = kQueries * kCols / kThreads;  // dot products per thread: 3
constexpr int kWarps = kThreads / 32;

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T>
__global__ void __launch_bounds__(kThreads) score_kernel(PropagateArgs a, const T* __restrict__ cur,
                                                         const T* __restrict__ ctx) {
  // +1 column of padding: the 16 queries of a warp read 16 different rows without bank conflicts.
  DT_SHARED(float, sq, [kQueries][kChunk + 1]);
  DT_SHARED(float, sc, [kCols][kChunk + 1]);
  const int j0 = blockIdx.x * kQueries;
  const int i = blockIdx.y;
  const int tau = blockIdx.z;
  const int tid = threadIdx.x;
  const int64_t n = a.t * a.window;
  const T* frame = ctx + static_cast<int64_t>(tau) * a.h * a.w * a.d;

  for (int dy = -a.ry; dy <= a.ry; ++dy) {
    const int u = i + dy;
    const int c = a.row_half[dy + a.ry];
    if (u < 0 || u >= a.h || c < 0) continue;  // uniform across the block
    const int vlo = max(0, j0 - c);
    const int vhi = min(static_cast<int>(a.w) - 1, j0 + kQueries - 1 + c);
    for (int v0 = vlo; v0 <= vhi; v0 += kCols) {
      float acc[kPairs];
#pragma unroll
      for (int r = 0; r < kPairs; ++r) acc[r] = 0.f;
      for (int d0 = 0; d0 < a.d; d0 += kChunk) {
        // Stage 16 queries and 48 candidates x 32 channels; consecutive threads read consecutive channels.
        for (int e = tid; e < kQueries * kChunk; e += kThreads) {
          const int q = e / kChunk, dd = e % kChunk, j = j0 + q;
          sq[q][dd] = (j < a.w && d0 + dd < a.d) ? to_float(cur[(static_cast<int64_t>(i) * a.w + j) * a.d + d0 + dd])
                                                 : 0.f;
        }
        for (int e = tid; e < kCols * kChunk; e += kThreads) {
          const int col = e / kChunk, dd = e % kChunk, v = v0 + col;
          sc[col][dd] = (v <= vhi && d0 + dd < a.d)
                            ? to_float(frame[(static_cast<int64_t>(u) * a.w + v) * a.d + d0 + dd])
                            : 0.f;
        }
        __syncthreads();
#pragma unroll
        for (int r = 0; r < kPairs; ++r) {
          const int p = tid + r * kThreads, q = p % kQueries, col = p / kQueries;
#pragma unroll 8
          for (int dd = 0; dd < kChunk; ++dd) acc[r] = fmaf(sq[q][dd], sc[col][dd], acc[r]);
        }
        __syncthreads();
      }
#pragma unroll
      for (int r = 0; r < kPairs; ++r) {
        const int p = tid + r * kThreads, q = p % kQueries, col = p / kQueries;
        const int j = j0 + q, v = v0 + col, dx = v - j;
        if (j < a.w && v <= vhi && dx >= -c && dx <= c) {
          a.scores[(static_cast<int64_t>(i) * a.w + j) * n + static_cast<int64_t>(tau) * a.window +
                   a.row_start[dy + a.ry] + dx + c] = acc[r];
        }
      }
    }
  }
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ int warp_sum(int v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__global__ void __launch_bounds__(kThreads) mix_kernel(PropagateArgs a) {
  DT_DYN_SHARED(float, acc_all);  // [kWarps][M] weighted sums, one row per warp
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t query = static_cast<int64_t>(blockIdx.x) * kWarps + warp;
  if (query >= a.h * a.w) return;  // whole warps leave together
  const int64_t n = a.t * a.window;
  const float* s = a.scores + query * n;
  float* acc = acc_all + warp * a.m;
  for (int64_t c = lane; c < a.m; c += 32) acc[c] = 0.f;

  // k-th largest with multiplicity: walk distinct values downwards, counting copies of each.
  const float neg_inf = -INFINITY;
  float hi = INFINITY, kth = neg_inf, mx = neg_inf;
  int64_t remaining = a.k;
  for (bool first = true;; first = false) {
    float v = neg_inf;
    for (int64_t idx = lane; idx < n; idx += 32) {
      const float x = s[idx];
      if (x < hi) v = fmaxf(v, x);
    }
    v = warp_max(v);
    if (first) mx = v;
    if (v == neg_inf) break;  // fewer than k finite candidates: every finite one survives
    int cnt = 0;
    for (int64_t idx = lane; idx < n; idx += 32) cnt += (s[idx] == v);
    cnt = warp_sum(cnt);
    if (cnt >= remaining) {
      kth = v;
      break;
    }
    remaining -= cnt;
    hi = v;
  }
  __syncwarp();

  const float mx_t = mx / a.temperature;  // softmax(s / T): divide first, as the notebook does
  float sum_w = 0.f;
  const int64_t q_i = query / a.w, q_j = query % a.w;
  for (int64_t idx = lane; idx < n; idx += 32) {
    const float x = s[idx];
    if (!(x >= kth) || x == neg_inf) continue;  // -inf: outside the frame
    const float wt = expf(x / a.temperature - mx_t);
    sum_w += wt;
    // Recover (tau, dy, dx) of the slot: rows are few, so a linear walk is cheap.
    const int64_t tau = idx / a.window;
    const int slot = static_cast<int>(idx % a.window);
    int dy = -a.ry;
    while (dy < a.ry && a.row_start[dy + 1 + a.ry] <= slot) ++dy;
    const int dx = slot - a.row_start[dy + a.ry] - a.row_half[dy + a.ry];
    const float* p = a.probs + ((tau * a.h + q_i + dy) * a.w + q_j + dx) * a.m;
    for (int64_t c = 0; c < a.m; ++c) atomicAdd(&acc[c], wt * p[c]);
  }
  sum_w = warp_sum(sum_w);
  __syncwarp();
  float total = 0.f;
  for (int64_t c = lane; c < a.m; c += 32) total += acc[c] / sum_w;
  total = warp_sum(total);
  for (int64_t c = lane; c < a.m; c += 32) a.out[query * a.m + c] = acc[c] / sum_w / total;
}

template <typename T>
int launch(const PropagateArgs& a, cudaStream_t stream) {
  const dim3 grid((a.w + kQueries - 1) / kQueries, a.h, a.t);
  DT_LAUNCH(score_kernel<T>, grid, kThreads, 0, stream)(a, static_cast<const T*>(a.current),
                                                      static_cast<const T*>(a.context));
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return static_cast<int>(err);
  const int64_t blocks = (a.h * a.w + kWarps - 1) / kWarps;
  DT_LAUNCH(mix_kernel, static_cast<unsigned>(blocks), kThreads, kWarps * a.m * sizeof(float), stream)(a);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace

int launch_topk_propagate(const PropagateArgs& args, void* stream) {
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  switch (args.type) {
    case FeatureType::kFloat16:
      return launch<__half>(args, s);
    case FeatureType::kBFloat16:
      return launch<__nv_bfloat16>(args, s);
    default:
      return launch<float>(args, s);
  }
}

}  // namespace cuda
}  // namespace dinotools
