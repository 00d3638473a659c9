// Self-test kernels of the emulator's synchronisation: barriers, warp collectives, schedules.
// Lines marked `// @name` are located by tests/test_cuda_emu.py to check the file:line in errors.
#include <string>

#include "../../cuda/dt_cuda.h"
#include "selftest_kernels.h"

namespace dt_emu_selftest {
namespace {

constexpr unsigned kFull = 0xffffffffu;

__global__ void divergent_barrier(double* out) {
  if (threadIdx.x < 16) {
    __syncthreads();  // @barrier_a
  } else {
    __syncthreads();  // @barrier_b
  }
  out[threadIdx.x] = 1;
}

__global__ void exit_before_barrier(double* out) {
  if (threadIdx.x >= 32) return;
  __syncthreads();  // @barrier_after_exit
  out[threadIdx.x] = 1;
}

__global__ void divergent_shuffle(double* out) {
  const int lane = threadIdx.x % 32;
  float v = lane;
  if (lane < 16) {
    v = __shfl_xor_sync(kFull, v, 1);  // @shfl_a
  } else {
    v = __shfl_xor_sync(kFull, v, 1);  // @shfl_b
  }
  out[threadIdx.x] = v;
}

__global__ void mask_disagrees(double* out) {
  const int lane = threadIdx.x % 32;
  __syncwarp(lane < 16 ? 0x0000ffffu : kFull);  // @mask_site
  out[threadIdx.x] = lane;
}

__global__ void warp_meets_barrier(double* out) {
  if (threadIdx.x % 32 == 0) {
    __syncthreads();  // @split_barrier
  } else {
    __syncwarp();  // @split_warp
  }
  out[threadIdx.x] = 1;
}

// out[case * 32 + lane] for shuffles of `lane * 10 + 0.5` at widths 32, 16, 8, 4 (see the test).
__global__ void shuffles(double* out, int partial) {
  const int lane = threadIdx.x % 32;
  const float v = lane * 10 + 0.5f;
  double* o = out + (threadIdx.x / 32) * 32 * 20;
  int c = 0;
  if (partial) {  // only lanes 0..15 take part; sources outside them are undefined (emulator: NaN)
    if (lane < 16) {
      o[c * 32 + lane] = __shfl_xor_sync(0x0000ffffu, v, 16 + (lane & 1));
      o[(c + 1) * 32 + lane] = __shfl_down_sync(0x0000ffffu, v, 4);
      o[(c + 2) * 32 + lane] = __ballot_sync(0x0000ffffu, lane % 3 == 0);
    }
    return;
  }
  for (int width = 32; width >= 4; width /= 2, c += 5) {
    o[c * 32 + lane] = __shfl_sync(kFull, v, (lane * 7 + 3) % 37 - 2, width);
    o[(c + 1) * 32 + lane] = __shfl_up_sync(kFull, v, 3, width);
    o[(c + 2) * 32 + lane] = __shfl_down_sync(kFull, v, 5, width);
    o[(c + 3) * 32 + lane] = __shfl_xor_sync(kFull, v, 6, width);
    o[(c + 4) * 32 + lane] = __shfl_xor_sync(kFull, static_cast<int>(lane) * 3, 20, width);
  }
}

__global__ void votes(double* out) {
  const int lane = threadIdx.x % 32, t = threadIdx.x;
  out[0 * 64 + t] = __ballot_sync(kFull, lane % 3 == 0);
  out[1 * 64 + t] = __any_sync(kFull, lane == 17);
  out[2 * 64 + t] = __all_sync(kFull, lane < 31);
  out[3 * 64 + t] = __all_sync(kFull, lane < 32);
  out[4 * 64 + t] = __syncthreads_count(t % 5 == 0);
  out[5 * 64 + t] = __syncthreads_and(t < 64);
  out[6 * 64 + t] = __syncthreads_or(t == 63);
}

struct Pair {
  float a;
  int b;
};

// Each lane contributes {lane * 2.5, lane * 3}; every lane receives all 32 (the mma escape hatch).
__global__ void gather(double* out) {
  const int lane = threadIdx.x % 32;
#ifndef __CUDACC__
  Pair all[32];
  dt_emu_warp_gather(Pair{lane * 2.5f, lane * 3}, all);
  for (int i = 0; i < 32; ++i) out[(threadIdx.x * 32 + i) * 2] = all[i].a, out[(threadIdx.x * 32 + i) * 2 + 1] = all[i].b;
  out[2 * 32 * blockDim.x + threadIdx.x] = dt_emu_lane();
#else
  out[threadIdx.x] = lane;
#endif
}

// Tickets in the order threads reach two phases: out[phase * n + global thread], n = threads in grid.
__global__ void order(double* out) {
  const int n = gridDim.x * blockDim.x, g = blockIdx.x * blockDim.x + threadIdx.x;
  double* counter = out + 2 * n;
  out[g] = atomicAdd(counter, 1.0);
  __syncthreads();
  out[n + g] = atomicAdd(counter, 1.0);
}

}  // namespace

int run_sync(const std::string& name, const double*, long long, double* out, long long, long long arg) {
  if (name == "divergent_barrier") DT_LAUNCH(divergent_barrier, 1, 64, 0, 0)(out);
  else if (name == "exit_before_barrier") DT_LAUNCH(exit_before_barrier, 1, 64, 0, 0)(out);
  else if (name == "divergent_shuffle") DT_LAUNCH(divergent_shuffle, 1, 32, 0, 0)(out);
  else if (name == "mask_disagrees") DT_LAUNCH(mask_disagrees, 1, 32, 0, 0)(out);
  else if (name == "warp_meets_barrier") DT_LAUNCH(warp_meets_barrier, 1, 64, 0, 0)(out);
  else if (name == "shuffles") DT_LAUNCH(shuffles, 1, static_cast<unsigned>(arg), 0, 0)(out, 0);
  else if (name == "shuffles_partial_mask") DT_LAUNCH(shuffles, 1, 32, 0, 0)(out, 1);
  else if (name == "votes") DT_LAUNCH(votes, 1, 64, 0, 0)(out);
  else if (name == "gather") DT_LAUNCH(gather, 1, static_cast<unsigned>(arg), 0, 0)(out);
  else if (name == "order") {
    out[2 * 3 * 64] = 0;  // the ticket counter (emulated device memory is host memory)
    DT_LAUNCH(order, 3, 64, 0, 0)(out);
  }
  else return -1;
  return static_cast<int>(cudaGetLastError());
}

}  // namespace dt_emu_selftest
