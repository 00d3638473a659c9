// Module entry point of dinotools._C_emu, the CUDA emulator extension (tests only; never built by a
// user install): the emulated operator's schema and the emulator's configuration ops.
#include <Python.h>
#include <torch/library.h>

#include <string>

#include "../schema.h"
#include "src/state.h"

extern "C" PyMODINIT_FUNC PyInit__C_emu(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C_emu", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}

TORCH_LIBRARY(dinotools_emu, m) {
  // The CUDA operator compiled against the emulator: CPU tensors stand for device tensors, and the
  // binding of csrc/cuda runs unchanged (its registration is in csrc/cuda/*_binding.cpp).
  m.def(DINOTOOLS_TOPK_PROPAGATE_SCHEMA);
  // Order in which runnable threads (at every switch) and blocks run: forward, reverse or random.
  m.def("set_schedule(str name, int seed=0) -> ()",
        +[](std::string name, int64_t seed) { dt_emu::configure_schedule(name, seed); });
  // Emulated device (shared-memory limits, SM count, compute capability): sm_80/86/89/90.
  m.def("set_device(str name) -> ()", +[](std::string name) { dt_emu::configure_device(name); });
  // "fibers" (default; deterministic per schedule) or "threads" (one OS thread per CUDA thread,
  // for ThreadSanitizer/AddressSanitizer builds).
  m.def("set_mode(str name) -> ()", +[](std::string name) { dt_emu::configure_mode(name); });
  // Guarded, NaN-poisoned CPU allocations (emulated global memory), checked after every launch.
  m.def("set_global_guards(bool on) -> ()", +[](bool on) { dt_emu::set_global_guards(on); });
  // Test hooks of the emulated bindings (cuda_api.h): an integer setting (-1 unsets), e.g. "topk_plan"
  // forces topk_propagate's launch plan, and the line the last launch left, e.g. its plan and loader.
  m.def("set_knob(str name, int value) -> ()", +[](std::string name, int64_t value) { dt_emu::set_knob(name, value); });
  m.def("last_note() -> str", +[]() { return dt_emu::last_note(); });
  // Kernel launches emulated since load: proves a test really ran the kernels.
  m.def("launches() -> int", +[]() -> int64_t { return static_cast<int64_t>(dt_emu::settings().launches); });
}
