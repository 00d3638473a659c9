// Launcher of the fused CUDA topk_propagate kernel: raw pointers and sizes only, no torch, so the .cu
// file compiles with plain nvcc (and with g++ under the emulator).
#pragma once

#include <cstddef>
#include <cstdint>

namespace dinotools {
namespace cuda {

enum class FeatureType : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

struct PropagateArgs {
  const void* current;  // [h,w,D] features, contiguous, of type `type`
  const void* context;  // [t,h,w,D] features, contiguous, of type `type`
  const float* probs;   // [t,h,w,M] float32, contiguous
  float* out;           // [h,w,M] float32
  int t, h, w, d, m, k;
  int ry, rx;           // the window's row and column reach (csrc/window.h make_window)
  float r;              // static_cast<float>(size): the window test of window.h, done on the device
  bool circle;
  float temperature;
  FeatureType type;
};

// How one launch uses shared memory: queries resident for all D (when they fit) and 2 or 3 stages.
struct LaunchPlan {
  bool resident;
  int stages;
  size_t smem_bytes;  // dynamic shared memory of the launch
};

// The first plan (resident 3 stages, resident 2, streamed 3, streamed 2) whose dynamic shared memory
// fits `smem_limit` bytes; smem_bytes == 0 when none does.
LaunchPlan plan_topk_propagate(FeatureType type, int d, size_t smem_limit);

// Dynamic shared memory of one plan (resident queries or not, 2 or 3 stages) at this dtype and D.
size_t smem_topk_propagate(FeatureType type, int d, bool resident, int stages);

// Whether the launch stages rows with 16-byte cp.async (both feature pointers 16-byte aligned and
// D * element size a multiple of 16) or with the scalar loader.
bool vector_loads_topk_propagate(const PropagateArgs& args);

// Smallest dynamic shared memory any plan needs for this dtype and D (the Python check's limit).
size_t min_smem_topk_propagate(FeatureType type);

// Enqueues the kernel on `stream` (a cudaStream_t) with `plan`; returns the cudaError_t as an int.
int launch_topk_propagate(const PropagateArgs& args, const LaunchPlan& plan, void* stream);

}  // namespace cuda
}  // namespace dinotools
