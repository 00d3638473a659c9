// Self-test kernels of the emulator's memory model and launch checks: poisoned and guarded shared
// memory, shared-memory limits, launch configuration limits, __launch_bounds__, fp16/bf16.
// Lines marked `// @name` are located by tests/test_cuda_emu.py to check the file:line in errors.
#include <string>

#include "../../cuda/dt_cuda.h"
#include "selftest_kernels.h"

namespace dt_emu_selftest {
namespace {

// Writes `tile` only at even threads, then reads all: odd entries were never written (NaN). Block 1
// reads what block 0 left if shared memory were not reset per block.
__global__ void poison(double* out) {
  DT_SHARED(float, tile, [64]);  // @poison_tile
  DT_DYN_SHARED(float, dyn);
  if (threadIdx.x % 2 == 0) tile[threadIdx.x] = threadIdx.x;
  if (blockIdx.x == 0) dyn[threadIdx.x] = 7;
  __syncthreads();
  out[blockIdx.x * 128 + threadIdx.x] = tile[threadIdx.x];
  out[blockIdx.x * 128 + 64 + threadIdx.x] = dyn[threadIdx.x];
}

// Missing __syncthreads between writing `tile` and reading a neighbour's entry: a data race.
__global__ void missing_barrier(double* out) {
  DT_SHARED(float, tile, [64]);
  tile[threadIdx.x] = threadIdx.x;
  out[threadIdx.x] = tile[(threadIdx.x + 1) % 64];  // @racy_read
}

__global__ void static_overflow(double*, int past) {
  DT_SHARED(float, tile, [32]);  // @overflow_tile
  DT_SHARED(int, after, [8]);
  tile[threadIdx.x] = 1.f;
  after[threadIdx.x % 8] = 2;
  if (threadIdx.x == 0) tile[32 + past] = 3.f;  // one element past the end, or further
}

__global__ void dynamic_overflow(double*, int n) {
  DT_DYN_SHARED(int, buf);  // @overflow_dyn
  if (threadIdx.x < n) buf[threadIdx.x] = 1;
  if (threadIdx.x == 0) buf[n] = 5;
}

__global__ void underflow(double*, int back) {
  DT_SHARED(float, first, [16]);
  DT_SHARED(float, second, [16]);  // @underflow_second
  first[threadIdx.x % 16] = 0.f;
  if (threadIdx.x == 0) second[-back] = 1.f;  // `back` elements before the start
}

__global__ void dynamic_only(double* out) {
  DT_DYN_SHARED(char, bytes);
  bytes[threadIdx.x] = 1;
  out[0] = 1;
}

__global__ void static_8k(double* out) {  // 8 KiB static, then the launch's dynamic bytes
  DT_SHARED(float, tile, [2048]);
  tile[threadIdx.x] = 1.f;
  out[0] = 1;
}

__global__ void static_8k_fresh(double* out) {  // same, never launched before the check
  DT_SHARED(float, tile, [2048]);
  tile[threadIdx.x] = 1.f;
  out[0] += 1;
}

__global__ void static_over_48k(double*) {
  DT_SHARED(float, huge, [12289]);  // @huge_tile
  huge[threadIdx.x] = 0.f;
}

__global__ void __launch_bounds__(128) bounded(double* out) { out[threadIdx.x] = 1; }

// Not a tail call, 1 KiB per frame: `depth` frames need depth KiB of stack.
__device__ int deep(int n) {
  volatile char frame[1024];
  frame[n % 1024] = static_cast<char>(n);
  return n == 0 ? 0 : deep(n - 1) + frame[(n * 7) % 1024];
}

__global__ void recursion(double* out, int depth) { out[threadIdx.x] = deep(depth); }

__global__ void trivial(double* out) { out[0] = 1; }

__global__ void global_write(double* out, long long index) {
  if (threadIdx.x == 0) out[index] = 1;  // past the buffer when index >= its size
}

// mode 0: float -> half and bf16 bits; mode 1: half bits -> float; mode 2: bf16 bits -> float.
__global__ void convert(const double* in, double* out, long long n, int mode) {
  for (long long i = threadIdx.x; i < n; i += blockDim.x) {
    if (mode == 0) {
      const float f = static_cast<float>(in[i]);
      out[2 * i] = __half_as_ushort(__float2half(f));
      out[2 * i + 1] = __bfloat16_as_ushort(__float2bfloat16(f));
    } else if (mode == 1) {
      out[i] = __half2float(__ushort_as_half(static_cast<unsigned short>(in[i])));
    } else {
      out[i] = __bfloat162float(__ushort_as_bfloat16(static_cast<unsigned short>(in[i])));
    }
  }
}

// Records the error of each launch attempt in out[k], in order (see the test for the expected codes).
int limits(double* out) {
  int k = 0;
  auto rec = [&] { out[k++] = static_cast<int>(cudaGetLastError()); };
  DT_LAUNCH(dynamic_only, 1, 32, 48 * 1024, 0)(out + 100); rec();                    // 0: exactly 48 KiB
  DT_LAUNCH(dynamic_only, 1, 32, 48 * 1024 + 4, 0)(out + 100); rec();                // 1: over
  out[k++] = static_cast<int>(DT_SET_MAX_DYN_SMEM(dynamic_only, 100000));          // 2: opt in
  DT_LAUNCH(dynamic_only, 1, 32, 100000, 0)(out + 100); rec();                       // 3: fits now
  DT_LAUNCH(dynamic_only, 1, 32, 100004, 0)(out + 100); rec();                       // 4: over the attribute
  int optin = 0;
  cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0);
  out[k++] = optin;                                                                  // 5
  out[k++] = static_cast<int>(DT_SET_MAX_DYN_SMEM(dynamic_only, optin + 1));       // 6: past the device
  DT_LAUNCH(static_8k, 1, 32, 40 * 1024, 0)(out + 100); rec();                       // 7: 8 + 40 KiB
  DT_LAUNCH(static_8k, 1, 32, 40 * 1024 + 4, 0)(out + 100); rec();                   // 8: known static: refused
  out[100] = 0;
  DT_LAUNCH(static_8k_fresh, 1, 32, 40 * 1024 + 4, 0)(out + 100); rec();             // 9: found while running
  out[k++] = out[100];                                                               // 10: stopped at DT_SHARED
  DT_LAUNCH(trivial, 1, 1025, 0, 0)(out + 100); rec();                               // 11: > 1024 threads
  DT_LAUNCH(trivial, 1, dim3(1, 1, 65), 0, 0)(out + 100); rec();                     // 12: block.z > 64
  DT_LAUNCH(trivial, 1, dim3(32, 32, 2), 0, 0)(out + 100); rec();                    // 13: 2048 threads
  DT_LAUNCH(trivial, dim3(1, 65536), 1, 0, 0)(out + 100); rec();                     // 14: grid.y
  DT_LAUNCH(trivial, dim3(1, 1, 65536), 1, 0, 0)(out + 100); rec();                  // 15: grid.z
  DT_LAUNCH(trivial, 0, 1, 0, 0)(out + 100); rec();                                  // 16: empty grid
  DT_LAUNCH(trivial, dim3(1, 65535, 1), 1, 0, 0)(out + 100); rec();                  // 17: 65535 rows: fine
  DT_LAUNCH(bounded, 1, 128, 0, 0)(out + 100); rec();                                // 18: at the bound
  DT_LAUNCH(bounded, 1, 129, 0, 0)(out + 100); rec();                                // 19: over it
  return 0;
}

}  // namespace

int run_memory(const std::string& name, const double* in, long long n_in, double* out, long long capacity,
               long long arg) {
  if (name == "poison") DT_LAUNCH(poison, 2, 64, 64 * sizeof(float), 0)(out);
  else if (name == "missing_barrier") DT_LAUNCH(missing_barrier, 1, 64, 0, 0)(out);
  else if (name == "static_overflow") DT_LAUNCH(static_overflow, 1, 32, 0, 0)(out, static_cast<int>(arg));
  else if (name == "dynamic_overflow") DT_LAUNCH(dynamic_overflow, 1, 32, arg * sizeof(int), 0)(out, static_cast<int>(arg));
  else if (name == "underflow") DT_LAUNCH(underflow, 1, 32, 0, 0)(out, static_cast<int>(arg));
  else if (name == "static_over_48k") DT_LAUNCH(static_over_48k, 1, 32, 0, 0)(out);
  else if (name == "limits") return limits(out);
  else if (name == "global_write") DT_LAUNCH(global_write, 1, 32, 0, 0)(out, capacity + arg);
  else if (name == "recursion") DT_LAUNCH(recursion, 1, 32, 0, 0)(out, static_cast<int>(arg));
  else if (name == "convert") DT_LAUNCH(convert, 1, 64, 0, 0)(in, out, n_in, static_cast<int>(arg));
  else return -1;
  return static_cast<int>(cudaGetLastError());
}

}  // namespace dt_emu_selftest
