// Guarded global memory for the emulated device: while enabled (set_global_guards), every CPU tensor
// allocation gets 0xFF poison (NaN) in its payload and in 64-byte guards on both sides, and after
// each emulated launch the guards of live allocations are checked, so a kernel writing past a
// buffer (a missing bounds guard) fails with the launch's name instead of corrupting the heap.
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <string>

#include "src/state.h"

namespace dt_emu {
namespace {

constexpr size_t kGuard = 64;  // keeps the payload 64-byte aligned, as c10's CPU allocator does
constexpr unsigned char kPoison = 0xff;

std::mutex g_mu;
std::map<unsigned char*, size_t> g_live;  // payload -> bytes, for every live guarded allocation
c10::Allocator* g_previous = nullptr;

void free_guarded(void* base) {
  {
    std::lock_guard<std::mutex> lock(g_mu);
    g_live.erase(static_cast<unsigned char*>(base) + kGuard);
  }
  std::free(base);
}

struct GuardedCpuAllocator final : c10::Allocator {
  c10::DataPtr allocate(size_t n) override {
    void* base = nullptr;
    if (posix_memalign(&base, 64, n + 2 * kGuard) != 0) throw std::bad_alloc();
    std::memset(base, kPoison, n + 2 * kGuard);  // uninitialised device memory reads as NaN
    auto* data = static_cast<unsigned char*>(base) + kGuard;
    {
      std::lock_guard<std::mutex> lock(g_mu);
      g_live[data] = n;
    }
    return {data, base, &free_guarded, c10::Device(c10::DeviceType::CPU)};
  }
  void copy_data(void* dest, const void* src, std::size_t count) const override { std::memcpy(dest, src, count); }
};

GuardedCpuAllocator g_guarded;

// First damaged guard of a live allocation, repaired so it is reported once; "" when all intact.
std::string check_global_guards() {
  std::lock_guard<std::mutex> lock(g_mu);
  for (auto& [data, n] : g_live) {
    for (int side = 0; side < 2; ++side) {
      unsigned char* g = side == 0 ? data - kGuard : data + n;
      size_t first = kGuard, last = 0;
      for (size_t i = 0; i < kGuard; ++i) {
        if (g[i] == kPoison) continue;
        first = std::min(first, i);
        last = i;
      }
      if (first == kGuard) continue;
      std::memset(g, kPoison, kGuard);
      const std::string what = "a " + std::to_string(n) + "-byte global buffer";
      if (side == 1) {
        return "global-memory overflow: bytes " + std::to_string(first) + ".." + std::to_string(last) +
               " past the end of " + what + " were written";
      }
      return "global-memory underflow: bytes " + std::to_string(kGuard - last) + ".." +
             std::to_string(kGuard - first) + " before the start of " + what + " were written";
    }
  }
  return "";
}

}  // namespace

void set_global_guards(bool on) {
  if (on && g_previous == nullptr) {
    g_previous = c10::GetCPUAllocator();
    c10::SetCPUAllocator(&g_guarded, /*priority=*/255);
    set_post_launch_check(&check_global_guards);
  } else if (!on && g_previous != nullptr) {
    c10::SetCPUAllocator(g_previous, /*priority=*/255);
    g_previous = nullptr;
    set_post_launch_check(nullptr);
  }
}

}  // namespace dt_emu
