// Launcher of the CUDA topk_propagate kernels: raw pointers and sizes only, no torch, so the .cu
// file compiles with plain nvcc (CI compile-checks it on machines whose torch has no CUDA headers).
#pragma once

#include <cstdint>

namespace dinotools {
namespace cuda {

enum class FeatureType : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

struct PropagateArgs {
  const void* current;   // [h,w,D] features, contiguous, of type `type`
  const void* context;   // [t,h,w,D] features, contiguous, of type `type`
  const float* probs;    // [t,h,w,M] float32, contiguous
  float* out;            // [h,w,M] float32
  float* scores;         // scratch [h*w, t, K] float32, filled with -inf by the caller
  const int* row_half;   // [2*ry+1] on the device: half width of window row dy (-1 when empty)
  const int* row_start;  // [2*ry+1] on the device: index of the row's first window slot
  int64_t t, h, w, d, m, k;
  int ry, window;        // window = K, the number of (dy, dx) slots
  float temperature;
  FeatureType type;
};

// Enqueues both kernels on `stream` (a cudaStream_t); returns the cudaError_t as an int (0 = success).
int launch_topk_propagate(const PropagateArgs& args, void* stream);

}  // namespace cuda
}  // namespace dinotools
