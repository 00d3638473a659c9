// Fused CUDA kernel of dinotools::topk_propagate (design and roofline model: csrc/cuda/README.md).
//
// One block owns a 4 x 16 tile of queries and streams the union of their windows, frame by frame,
// as segments (a piece of one candidate row, <= 48 columns), 4 segments x 64 channels per pipeline
// stage (cp.async, 2-3 stages). Warp (pair, seg) scores its 2 query rows against segment `seg` of
// each stage on tensor cores (mma.sync m16n8k16, bf16/fp16 -> fp32) or with fp32 FMAs, and after the
// last channel chunk pushes the in-window scores into per-lane register top-k buffers. At the end the
// 16 buffers of each query are merged in shared memory: the exact k-th value and every survivor are
// there unless a buffer dropped a value >= that k-th value; such queries (and k > kBuf) take the exact
// slow paths of tp_epilogue.cuh. No global scratch, no float atomics: the same input gives the same bits.
#include "topk_propagate_kernel.h"

#include <cstdint>

// cp.async and bf16 mma.sync exist from sm_80: an older arch in the build's list (e.g.
// TORCH_CUDA_ARCH_LIST="7.5;8.0") stops here with this message instead of a ptxas error. setup.py
// refuses such a list before compiling; this is the backstop for any other build (.ci/kernel_checks.sh).
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#error "dinotools: the topk_propagate CUDA kernel needs compute capability 8.0 or newer (cp.async, bf16 mma.sync); build for 8.0, 8.6, 8.7, 8.9, 9.0 or later, e.g. TORCH_CUDA_ARCH_LIST=\"8.0;9.0\", or set DINOTOOLS_NO_CUDA=1"
#endif

#include "tp_epilogue.cuh"

namespace dinotools {
namespace cuda {
namespace {

struct Params {
  const void* cur;
  const void* ctx;
  const float* probs;
  float* out;
  int t, h, w, d, m, k;
  Geometry geo;
  float temp;
  bool resident, vec;
  int stages;
};

template <typename T>
constexpr int kLds = Tile<T>::kDK + Tile<T>::kPad;  // staged row stride (elements)

template <typename T>
__host__ __device__ constexpr size_t stage_rows(bool resident) {
  return kCandRows + (resident ? 0 : kQueries);
}

// Bytes of the merge area (buffers of all queries) and of the per-warp rescan areas.
constexpr size_t kMergeBytes = static_cast<size_t>(kQueries) * kHolders * (kBuf * 8 + 4);
template <typename T>
__host__ __device__ constexpr size_t warp_area_bytes() {
  return (8 + 16) * kLds<T> * sizeof(T) + 256 * sizeof(int) + 8 * sizeof(float);
}
static_assert(warp_area_bytes<float>() % 16 == 0 && warp_area_bytes<__half>() % 16 == 0, "16-byte aligned areas");

template <typename T>
size_t smem_bytes(int d, bool resident, int stages) {
  const size_t stage = static_cast<size_t>(stages) * stage_rows<T>(resident) * kLds<T> * sizeof(T);
  size_t area = stage > kMergeBytes ? stage : kMergeBytes;
  area = area > kWarps * warp_area_bytes<T>() ? area : kWarps * warp_area_bytes<T>();
  const int dp = (d + Tile<T>::kDK - 1) / Tile<T>::kDK * Tile<T>::kDK;
  return area + (resident ? static_cast<size_t>(kQueries) * (dp + Tile<T>::kPad) * sizeof(T) : 0);
}

template <typename T>
__global__ void __launch_bounds__(kThreads, 1) topk_propagate_kernel(Params p) {
  DT_DYN_SHARED(F4, smem4);  // 16-byte aligned, as cp.async, ldmatrix and F4 loads need
  DT_SHARED(float, s_kth, [kQueries]);
  DT_SHARED(float, s_mx, [kQueries]);
  DT_SHARED(int, s_flag, [kQueries]);
  DT_SHARED(int, s_count, [kQueries]);
  constexpr int DK = Tile<T>::kDK, LD = kLds<T>;
  char* smem = reinterpret_cast<char*>(smem4);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, pair = warp / kSegs, seg = warp % kSegs;
  const int g = lane >> 2, qd = lane & 3;

  Block<T> b;
  b.cur = static_cast<const T*>(p.cur), b.ctx = static_cast<const T*>(p.ctx), b.probs = p.probs, b.out = p.out;
  b.t = p.t, b.h = p.h, b.w = p.w, b.d = p.d, b.m = p.m, b.k = p.k, b.geo = p.geo, b.temp = p.temp;
  b.nd = (p.d + DK - 1) / DK, b.vec = p.vec;
  b.i0 = blockIdx.y * kQRows, b.j0 = blockIdx.x * kQCols;
  const int rows = static_cast<int>(stage_rows<T>(p.resident));
  T* stage = reinterpret_cast<T*>(smem);
  size_t qoff = static_cast<size_t>(p.stages) * rows * LD * sizeof(T);
  qoff = qoff > kMergeBytes ? qoff : kMergeBytes;  // the stages, then the merge and rescan areas, share it
  qoff = qoff > kWarps * warp_area_bytes<T>() ? qoff : kWarps * warp_area_bytes<T>();
  b.ldq = b.nd * DK + Tile<T>::kPad;
  b.sq = p.resident ? reinterpret_cast<const T*>(smem + qoff) : nullptr;

  // The union of the tile's windows: rows [rlo, rhi], columns [clo, chi], in segments of 48 columns.
  const int ilast = imin(b.i0 + kQRows, b.h) - 1, jlast = imin(b.j0 + kQCols, b.w) - 1;
  const int rlo = imax(0, b.i0 - b.geo.ry), rhi = imin(b.h - 1, ilast + b.geo.ry);
  const int clo = imax(0, b.j0 - b.geo.rx), chi = imin(b.w - 1, jlast + b.geo.rx);
  const int nch = (chi - clo + kSegCols) / kSegCols, per_frame = (rhi - rlo + 1) * nch;
  const int nseg = b.t * per_frame, ngroups = (nseg + kSegs - 1) / kSegs, nsteps = ngroups * b.nd;
  auto segment = [&](int s, int& tau, int& u, int& v0) {  // returns the segment's width (0: none)
    if (s >= nseg) return 0;
    tau = s / per_frame;
    const int rem = s % per_frame;
    u = rlo + rem / nch, v0 = clo + (rem % nch) * kSegCols;
    return imin(kSegCols, chi - v0 + 1);
  };
  auto query_row = [&](int slot) -> const T* {
    const int i = b.i0 + slot / kQCols, j = b.j0 + slot % kQCols;
    return i < b.h && j < b.w ? b.cur + (static_cast<int64_t>(i) * b.w + j) * b.d : nullptr;
  };
  auto load_stage = [&](int step, int buf) {
    const int grp = step / b.nd, d0 = (step % b.nd) * DK;
    T* dst = stage + static_cast<size_t>(buf) * rows * LD;
    load_rows(b, dst, LD, rows, tid, kThreads, d0, [&](int r) -> const T* {
      if (r >= kCandRows) return query_row(r - kCandRows);
      int tau = 0, u = 0, v0 = 0;
      const int width = segment(grp * kSegs + r / kSegCols, tau, u, v0), col = r % kSegCols;
      return col < width ? b.ctx + ((static_cast<int64_t>(tau) * b.h + u) * b.w + v0 + col) * b.d : nullptr;
    });
  };

  if (p.resident) {  // all D of the 64 queries, part of the first committed group
    for (int dc = 0; dc < b.nd; ++dc)
      load_rows(b, const_cast<T*>(b.sq) + dc * DK, b.ldq, kQueries, tid, kThreads, dc * DK, query_row);
  }
  for (int s = 0; s < p.stages - 1; ++s) {
    if (s < nsteps) load_stage(s, s);
    cp_async_commit();
  }

  float acc[kMT][kNT][4];
  TopBuf<kBuf> top[kMT][2];
#pragma unroll
  for (int r = 0; r < kMT; ++r) top[r][0].clear(), top[r][1].clear();
  int tau = 0, u = 0, v0 = 0, width = 0, half[kMT];
  unsigned need = 0;
  for (int step = 0; step < nsteps; ++step) {
    if (p.stages == 3) cp_async_wait<1>(); else cp_async_wait<0>();
    __syncthreads();  // stage `step` landed for every thread; stage step-1's buffer is free
    if (step + p.stages - 1 < nsteps) load_stage(step + p.stages - 1, (step + p.stages - 1) % p.stages);
    cp_async_commit();
    const int dc = step % b.nd, buf = step % p.stages;
    if (dc == 0) {  // a new segment for this warp: which (row, n-tile) pairs hold window cells
      width = segment((step / b.nd) * kSegs + seg, tau, u, v0);
      need = 0;
#pragma unroll
      for (int r = 0; r < kMT; ++r) {
        const int i = b.i0 + pair * kMT + r;
        half[r] = width > 0 && i < b.h ? row_half(u - i, b.geo) : -1;
        for (int n = 0; n < kNT && half[r] >= 0; ++n) {
          const int a = v0 + 8 * n, e = imin(v0 + width - 1, a + 7);
          if (a <= e && a <= jlast + half[r] && e >= b.j0 - half[r]) need |= 1u << (r * kNT + n);
        }
      }
#pragma unroll
      for (int r = 0; r < kMT; ++r)
#pragma unroll
        for (int n = 0; n < kNT; ++n)
#pragma unroll
          for (int e = 0; e < 4; ++e) acc[r][n][e] = 0.f;
    }
    if (need) {
      const T* sb = stage + (static_cast<size_t>(buf) * rows + seg * kSegCols) * LD;
      const T* sa = p.resident ? b.sq + (pair * kMT * 16) * b.ldq + dc * DK
                               : stage + (static_cast<size_t>(buf) * rows + kCandRows + pair * kMT * 16) * LD;
      tile_chunk<T, kMT, kNT>(acc, sa, p.resident ? b.ldq : LD, sb, LD, need);
    }
    if (dc == b.nd - 1 && need) {  // segment done: in-window scores into the register buffers
      const int base = (tau * b.h + u) * b.w;
#pragma unroll
      for (int r = 0; r < kMT; ++r)
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) {
          const int j = b.j0 + g + 8 * hh;
#pragma unroll
          for (int n = 0; n < kNT; ++n)
#pragma unroll
            for (int c = 0; c < 2; ++c) {
              const int v = v0 + 8 * n + 2 * qd + c;
              if ((need >> (r * kNT + n) & 1u) && j < b.w && v < v0 + width && (v > j ? v - j : j - v) <= half[r])
                top[r][hh].push(acc[r][n][2 * hh + c], base + v);
            }
        }
    }
  }
  cp_async_wait<0>();
  __syncthreads();  // the stages are done: their memory becomes the merge area

  float* ms = reinterpret_cast<float*>(smem);                  // [64][16 holders][kBuf] scores
  int* mi = reinterpret_cast<int*>(ms + kQueries * kHolders * kBuf);  // [64][16][kBuf] candidates
  float* md = reinterpret_cast<float*>(mi + kQueries * kHolders * kBuf);  // [64][16] dropped maxima
  const int holder = seg * 4 + qd;
#pragma unroll
  for (int r = 0; r < kMT; ++r)
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      const int slot = (pair * kMT + r) * kQCols + g + 8 * hh, at = (slot * kHolders + holder) * kBuf;
#pragma unroll
      for (int x = 0; x < kBuf; ++x) ms[at + x] = top[r][hh].s[x], mi[at + x] = top[r][hh].i[x];
      md[slot * kHolders + holder] = top[r][hh].drop;
    }
  __syncthreads();

  constexpr int kEntries = kHolders * kBuf;
  if (tid < kQueries) {  // one thread per query: merge its 16 buffers (no collectives, cheap)
    const int slot = tid;
    float* sc = ms + slot * kEntries;
    int* ix = mi + slot * kEntries;
    float mx = -INFINITY, dmax = -INFINITY, kth = -INFINITY;
    for (int e = 0; e < kEntries; ++e) mx = fmaxf(mx, sc[e]);
    for (int x = 0; x < kHolders; ++x) dmax = fmaxf(dmax, md[slot * kHolders + x]);
    int flag = kUnknown, n = 0;
    if (b.k <= kBuf) {  // the k-th largest with multiplicity: walk the distinct values downwards
      float hi = INFINITY;
      for (int remaining = b.k;;) {
        float v = -INFINITY;
        int cnt = 0;
        for (int e = 0; e < kEntries; ++e) v = sc[e] < hi ? fmaxf(v, sc[e]) : v;
        if (v == -INFINITY) break;  // fewer than k buffered: kth stays -inf
        for (int e = 0; e < kEntries; ++e) cnt += sc[e] == v;
        if (cnt >= remaining) {
          kth = v;
          break;
        }
        remaining -= cnt, hi = v;
      }
      flag = dmax > kth ? kUnknown : (dmax == kth && kth > -INFINITY ? kTies : kOk);
    }
    if (flag == kOk) {  // compact the survivors to the front, in buffer order
      for (int e = 0; e < kEntries; ++e)
        if (sc[e] >= kth && sc[e] > -INFINITY) sc[n] = sc[e], ix[n] = ix[e], ++n;
    }
    s_kth[slot] = kth, s_mx[slot] = mx, s_flag[slot] = flag, s_count[slot] = n;
  }
  __syncthreads();
  for (int slot = warp; slot < kQueries; slot += kWarps) {  // what the buffers settle: a warp per query
    const int i = b.i0 + slot / kQCols, j = b.j0 + slot % kQCols;
    if (i >= b.h || j >= b.w || s_flag[slot] != kOk) continue;
    const float* sc = ms + slot * kEntries;
    const int* ix = mi + slot * kEntries;
    write_output(b, static_cast<int64_t>(i) * b.w + j, s_mx[slot], [&](auto&& f) {
      for (int e = 0; e < s_count[slot]; ++e) f(sc[e], ix[e]);
    });
  }
  __syncthreads();  // the merge area becomes the warps' rescan areas

  char* mine_area = smem + warp * warp_area_bytes<T>();
  T* area = reinterpret_cast<T*>(mine_area);
  int* hist = reinterpret_cast<int*>(mine_area + (8 + 16) * LD * sizeof(T));  // then 8 floats of scores
  for (int slot = warp; slot < kQueries; slot += kWarps) {
    const int i = b.i0 + slot / kQCols, j = b.j0 + slot % kQCols;
    if (i >= b.h || j >= b.w || s_flag[slot] == kOk) continue;
    const float kth = s_flag[slot] == kTies ? s_kth[slot] : radix_kth(b, i, j, area, hist);
    write_output(b, static_cast<int64_t>(i) * b.w + j, s_mx[slot], [&](auto&& f) {
      rescan(b, i, j, area, [&](float s, int idx) {
        if (s >= kth) f(s, idx);
      });
    });
  }
}

template <typename T>
int launch(const Params& p, size_t smem, cudaStream_t stream) {
  const cudaError_t attr = DT_SET_MAX_DYN_SMEM(topk_propagate_kernel<T>, static_cast<int>(smem));
  if (attr != cudaSuccess) return static_cast<int>(attr);
  const dim3 grid((p.w + kQCols - 1) / kQCols, (p.h + kQRows - 1) / kQRows);
  DT_LAUNCH(topk_propagate_kernel<T>, grid, dim3(kThreads), smem, stream)(p);
  return static_cast<int>(cudaGetLastError());
}

size_t smem_for(FeatureType type, int d, bool resident, int stages) {
  switch (type) {
    case FeatureType::kFloat32: return smem_bytes<float>(d, resident, stages);
    case FeatureType::kFloat16: return smem_bytes<__half>(d, resident, stages);
    default: return smem_bytes<__nv_bfloat16>(d, resident, stages);
  }
}

}  // namespace

LaunchPlan plan_topk_propagate(FeatureType type, int d, size_t smem_limit) {
  const LaunchPlan plans[4] = {{true, 3, 0}, {true, 2, 0}, {false, 3, 0}, {false, 2, 0}};
  for (LaunchPlan plan : plans) {
    plan.smem_bytes = smem_for(type, d, plan.resident, plan.stages);
    if (plan.smem_bytes <= smem_limit) return plan;
  }
  return {false, 2, 0};
}

size_t min_smem_topk_propagate(FeatureType type) { return smem_for(type, 1, false, 2); }

size_t smem_topk_propagate(FeatureType type, int d, bool resident, int stages) {
  return smem_for(type, d, resident, stages);
}

bool vector_loads_topk_propagate(const PropagateArgs& a) {
  const size_t elt = a.type == FeatureType::kFloat32 ? 4 : 2;
  return reinterpret_cast<uintptr_t>(a.current) % 16 == 0 && reinterpret_cast<uintptr_t>(a.context) % 16 == 0 &&
         (a.d * elt) % 16 == 0;
}

int launch_topk_propagate(const PropagateArgs& a, const LaunchPlan& plan, void* stream) {
  const bool aligned = vector_loads_topk_propagate(a);
  const Params p{a.current, a.context, a.probs, a.out, a.t, a.h, a.w, a.d, a.m, a.k,
                 Geometry{a.ry, a.rx, a.r, a.circle}, a.temperature, plan.resident, aligned, plan.stages};
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  switch (a.type) {
    case FeatureType::kFloat16: return launch<__half>(p, plan.smem_bytes, s);
    case FeatureType::kBFloat16: return launch<__nv_bfloat16>(p, plan.smem_bytes, s);
    default: return launch<float>(p, plan.smem_bytes, s);
  }
}

}  // namespace cuda
}  // namespace dinotools
