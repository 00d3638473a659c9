// Kernel launches and shared memory for emulated builds: DT_LAUNCH, DT_SHARED, DT_DYN_SHARED,
// DT_SET_MAX_DYN_SMEM (see csrc/cuda/dt_cuda.h for their CUDA spellings).
#pragma once

#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

#include "cuda_api.h"
#include "runtime.h"

namespace dt_emu {

struct LaunchConfig {
  const void* kernel;  // identity of the kernel (its address)
  const char* name;    // as written at the launch, e.g. "score_kernel<T>"
  dim3 grid, block;
  size_t dynamic_smem;
  cudaStream_t stream;
  const char* file;
  int line;
};

// Runs the launch (or records why it cannot start, for cudaGetLastError). `run(ctx)` is the body of
// one emulated thread; emulation errors (divergent barrier, deadlock, shared-memory overflow) throw
// dt_emu::EmulationError, which the torch binding turns into a Python RuntimeError.
void launch(const LaunchConfig& cfg, void (*run)(const void* ctx), const void* ctx);

// Launch bounds are read from the kernel source by csrc/emu/build.py, which appends one call per
// __launch_bounds__ to the compiled translation unit; kernels are matched by name at launch.
bool register_launch_bounds(const char* kernel, const char* file, int line, long long max_threads);

template <class... P>
class Launcher {
 public:
  Launcher(void (*kernel)(P...), const LaunchConfig& cfg) : kernel_(kernel), cfg_(cfg) {}

  template <class... A>
  void operator()(A&&... args) const {
    static_assert(sizeof...(A) == sizeof...(P), "DT_LAUNCH: wrong number of kernel arguments");
    // Arguments are converted once, as CUDA copies them into the launch; every thread then gets its
    // own by-value copy of each parameter.
    const std::tuple<std::decay_t<P>...> params(std::forward<A>(args)...);
    const Bound bound{kernel_, &params};
    launch(cfg_, &Launcher::run, &bound);
  }

 private:
  struct Bound {
    void (*kernel)(P...);
    const std::tuple<std::decay_t<P>...>* params;
  };
  static void run(const void* ctx) {
    const Bound* b = static_cast<const Bound*>(ctx);
    std::apply(b->kernel, *b->params);
  }
  void (*kernel_)(P...);
  LaunchConfig cfg_;
};

template <class... P>
Launcher<P...> make_launcher(void (*kernel)(P...), const char* name, dim3 grid, dim3 block, size_t smem,
                             cudaStream_t stream, const char* file, int line) {
  return Launcher<P...>(kernel,
                        LaunchConfig{reinterpret_cast<const void*>(kernel), name, grid, block, smem, stream, file, line});
}

}  // namespace dt_emu

#define DT_EMU_CAT_(a, b) a##b
#define DT_EMU_CAT(a, b) DT_EMU_CAT_(a, b)

#define DT_LAUNCH(kernel, grid, block, smem_bytes, stream) \
  ::dt_emu::make_launcher(kernel, #kernel, grid, block, smem_bytes, stream, __FILE__, __LINE__)

#define DT_SET_MAX_DYN_SMEM(kernel, bytes)                                                            \
  ::dt_emu::set_kernel_attribute(reinterpret_cast<const void*>(kernel), #kernel,                     \
                                 cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes))

// Static shared memory: a reference into the block's arena, placed on first use in each launch.
#define DT_SHARED(type, name, dims)                                                                 \
  static ::dt_emu::SharedSite DT_EMU_CAT(dt_emu_smem_site_, name){                                  \
      __FILE__, __LINE__, "DT_SHARED(" #type ", " #name ", " #dims ")", sizeof(type dims), alignof(type dims), 0, 0}; \
  type(&name) dims = *static_cast<type(*) dims>(::dt_emu::shared_static(&DT_EMU_CAT(dt_emu_smem_site_, name)))

// Dynamic shared memory: the launch's smem_bytes, shared by every DT_DYN_SHARED of the kernel.
#define DT_DYN_SHARED(type, name)                                                                   \
  static ::dt_emu::SharedSite DT_EMU_CAT(dt_emu_smem_site_, name){                                  \
      __FILE__, __LINE__, "DT_DYN_SHARED(" #type ", " #name ")", 0, alignof(type), 0, 0};           \
  type* const name = static_cast<type*>(::dt_emu::shared_dynamic(&DT_EMU_CAT(dt_emu_smem_site_, name)))
