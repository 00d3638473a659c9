// Emulator settings, kernel records, launch bounds and the CUDA runtime's error/attribute calls.
#include "state.h"

#include <cctype>
#include <map>
#include <mutex>
#include <vector>

#include "../cuda_api.h"
#include "../launch.h"

namespace dt_emu {
namespace {

thread_local cudaError_t t_last_error = cudaSuccess;  // per host thread, as in the runtime

std::map<const void*, KernelInfo>& kernels() {
  static std::map<const void*, KernelInfo> k;
  return k;
}

std::map<std::string, long long>& bounds() {
  static std::map<std::string, long long> b;
  return b;
}

std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}

std::map<std::string, int>& knobs() {  // under registry_mutex
  static std::map<std::string, int> k;
  return k;
}

std::string& note_text() {  // under registry_mutex
  static std::string n;
  return n;
}

}  // namespace

Settings& settings() {
  static Settings s;
  return s;
}

KernelInfo& kernel_info(const void* kernel, const char* name) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  KernelInfo& k = kernels()[kernel];
  if (k.name.empty()) k.name = name;
  return k;
}

std::string base_name(const char* written) {
  std::string s(written);
  const size_t lt = s.find('<');
  if (lt != std::string::npos) s.resize(lt);
  std::string out;
  for (char c : s) {
    if (c == ':') out.clear();  // drop namespace qualifiers
    else if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') out += c;
  }
  return out;
}

bool register_launch_bounds(const char* kernel, const char* /*file*/, int /*line*/, long long max_threads) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  auto it = bounds().find(kernel);
  // Two kernels sharing a name: keep the stricter bound (a launch cannot tell them apart by name).
  if (it == bounds().end() || max_threads < it->second) bounds()[kernel] = max_threads;
  return true;
}

long long launch_bound(const std::string& name) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  auto it = bounds().find(name);
  return it == bounds().end() ? 0 : it->second;
}

void set_last_error(cudaError_t err) { t_last_error = err; }

namespace {
std::string (*g_post_launch)() = nullptr;
}  // namespace

void set_post_launch_check(std::string (*check)()) { g_post_launch = check; }
std::string post_launch_check() { return g_post_launch != nullptr ? g_post_launch() : std::string(); }

cudaError_t set_kernel_attribute(const void* kernel, const char* name, cudaFuncAttribute attr, int value) {
  if (kernel == nullptr) return cudaErrorInvalidDeviceFunction;
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return cudaSuccess;  // carveout: a hint only
  KernelInfo& k = kernel_info(kernel, name);
  const DeviceConfig& d = settings().device;
  if (value < 0 || value + static_cast<long long>(k.static_smem) > d.smem_optin) return cudaErrorInvalidValue;
  k.max_dynamic_smem = value;
  return cudaSuccess;
}

void configure_schedule(const std::string& name, int64_t seed) {
  Settings& s = settings();
  if (name == "forward") s.schedule = ScheduleKind::kForward;
  else if (name == "reverse") s.schedule = ScheduleKind::kReverse;
  else if (name == "random") s.schedule = ScheduleKind::kRandom;
  else throw std::invalid_argument("schedule must be 'forward', 'reverse' or 'random', got '" + name + "'");
  s.seed = static_cast<uint64_t>(seed);
  s.rng.seed(s.seed);
}

void configure_device(const std::string& name) {
  struct Preset { const char* name; int major, minor, sms; long long optin, per_sm; };
  // Opt-in shared memory per block and per SM (CUDA programming guide, compute capabilities table).
  static const Preset presets[] = {
      {"sm_80", 8, 0, 108, 166912, 167936}, {"sm_86", 8, 6, 84, 101376, 102400},
      {"sm_89", 8, 9, 128, 101376, 102400}, {"sm_90", 9, 0, 132, 232448, 233472},
  };
  for (const Preset& p : presets) {
    if (name != p.name) continue;
    DeviceConfig& d = settings().device;
    d = DeviceConfig{};
    d.name = p.name;
    d.cc_major = p.major;
    d.cc_minor = p.minor;
    d.sm_count = p.sms;
    d.smem_optin = p.optin;
    d.smem_per_sm = p.per_sm;
    std::lock_guard<std::mutex> lock(registry_mutex());
    for (auto& kv : kernels()) kv.second.max_dynamic_smem = -1;  // a new device: attributes start over
    return;
  }
  throw std::invalid_argument("device must be one of sm_80, sm_86, sm_89, sm_90, got '" + name + "'");
}

void set_knob(const std::string& name, int64_t value) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  if (value < 0) knobs().erase(name);
  else knobs()[name] = static_cast<int>(value);
}

int knob(const char* name) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  auto it = knobs().find(name);
  return it == knobs().end() ? -1 : it->second;
}

void note(const char* text) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  note_text() = text;
}

std::string last_note() {
  std::lock_guard<std::mutex> lock(registry_mutex());
  return note_text();
}

void configure_mode(const std::string& name) {
  if (name == "fibers") settings().mode = Mode::kFibers;
  else if (name == "threads") settings().mode = Mode::kThreads;
  else throw std::invalid_argument("mode must be 'fibers' or 'threads', got '" + name + "'");
}

}  // namespace dt_emu

cudaError_t cudaGetLastError() {
  const cudaError_t e = dt_emu::t_last_error;
  dt_emu::t_last_error = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError() { return dt_emu::t_last_error; }

const char* cudaGetErrorName(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDeviceFunction: return "cudaErrorInvalidDeviceFunction";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
  }
  return "cudaErrorUnknown";
}

// The runtime's own wording, so messages read as they would on a device.
const char* cudaGetErrorString(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorNotSupported: return "operation not supported";
  }
  return "unknown error";
}

cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (device != 0) return cudaErrorInvalidDevice;
  const dt_emu::DeviceConfig& d = dt_emu::settings().device;
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; break;
    case cudaDevAttrMaxBlockDimX: case cudaDevAttrMaxBlockDimY: *value = 1024; break;
    case cudaDevAttrMaxBlockDimZ: *value = 64; break;
    case cudaDevAttrMaxGridDimX: *value = 2147483647; break;
    case cudaDevAttrMaxGridDimY: case cudaDevAttrMaxGridDimZ: *value = 65535; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = static_cast<int>(d.smem_default); break;
    case cudaDevAttrWarpSize: *value = 32; break;
    case cudaDevAttrMultiProcessorCount: *value = d.sm_count; break;
    case cudaDevAttrComputeCapabilityMajor: *value = d.cc_major; break;
    case cudaDevAttrComputeCapabilityMinor: *value = d.cc_minor; break;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor: *value = static_cast<int>(d.smem_per_sm); break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = static_cast<int>(d.smem_optin); break;
    default: return cudaErrorInvalidValue;
  }
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
