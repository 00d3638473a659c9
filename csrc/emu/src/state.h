// Process-wide emulator settings (device, schedule, execution mode) and per-kernel records.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>

#include "../types.h"

namespace dt_emu {

// An error of the emulated program (divergent barrier, deadlock, shared-memory overflow): the
// binding lets it propagate, so Python sees a RuntimeError with this message.
struct EmulationError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct DeviceConfig {
  std::string name = "sm_90";
  int cc_major = 9, cc_minor = 0;
  int sm_count = 132;
  long long smem_default = 48 * 1024;  // per block without cudaFuncSetAttribute
  long long smem_optin = 232448;       // per block with it (sm_90: 227 KiB)
  long long smem_per_sm = 233472;
};

enum class ScheduleKind { kForward, kReverse, kRandom };
enum class Mode { kFibers, kThreads };

struct Settings {
  DeviceConfig device;
  ScheduleKind schedule = ScheduleKind::kForward;
  uint64_t seed = 0;
  std::mt19937_64 rng{0};
  Mode mode = Mode::kFibers;
  size_t stack_bytes = 256 * 1024;  // per emulated thread
  uint64_t launches = 0;
};
Settings& settings();

struct KernelInfo {
  std::string name;
  long long max_dynamic_smem = -1;  // cudaFuncAttributeMaxDynamicSharedMemorySize, -1: never set
  size_t static_smem = 0;           // largest static shared memory seen in a launch of it
};
KernelInfo& kernel_info(const void* kernel, const char* name);

// Smallest __launch_bounds__ registered under the kernel's base name (see launch.h); 0 when none.
long long launch_bound(const std::string& base_name);
std::string base_name(const char* written);  // "ns::score_kernel<T>" -> "score_kernel"

void set_last_error(cudaError_t err);

// Run after every launch (global-memory guards, module side); a non-empty result fails the launch.
void set_post_launch_check(std::string (*check)());
std::string post_launch_check();

// Configuration entry points of the Python module (csrc/emu/module.cpp). Bad names throw
// std::invalid_argument with the accepted values.
void configure_schedule(const std::string& name, int64_t seed);
void configure_device(const std::string& name);
void configure_mode(const std::string& name);
void set_global_guards(bool on);  // csrc/emu/global_guard.cpp
void set_knob(const std::string& name, int64_t value);  // -1 unsets (see cuda_api.h knob)
std::string last_note();

}  // namespace dt_emu
