// Kernel launches: the device's launch checks (reported through cudaGetLastError), block order by
// schedule, and the entry points emulated threads call (collectives, shared memory).
#include <algorithm>
#include <memory>
#include <mutex>
#include <numeric>
#include <vector>

#include "../launch.h"
#include "block.h"
#include "executor.h"
#include "smem.h"
#include "stack_guard.h"
#include "state.h"

namespace dt_emu {

thread_local ThreadCtx* t_ctx = nullptr;
thread_local Current t_current;

namespace {

Arena& arena() {
  static Arena a;
  return a;
}

Executor& executor(Mode mode) {
  static std::unique_ptr<Executor> fibers = make_fiber_executor();
  static std::unique_ptr<Executor> threads;
  if (mode == Mode::kFibers) return *fibers;
  if (!threads) threads = make_thread_executor();
  return *threads;
}

// What a device checks before starting a launch (CUDA programming guide, "Compute capabilities").
cudaError_t check_launch(const LaunchConfig& cfg, const KernelInfo& k, const DeviceConfig& d) {
  const dim3 g = cfg.grid, b = cfg.block;
  if (g.x == 0 || g.y == 0 || g.z == 0 || b.x == 0 || b.y == 0 || b.z == 0) return cudaErrorInvalidConfiguration;
  if (b.x > 1024 || b.y > 1024 || b.z > 64 || uint64_t(b.x) * b.y * b.z > 1024) return cudaErrorInvalidConfiguration;
  if (g.x > 2147483647u || g.y > 65535 || g.z > 65535) return cudaErrorInvalidConfiguration;
  const long long bound = launch_bound(base_name(cfg.name));
  if (bound > 0 && static_cast<long long>(b.x) * b.y * b.z > bound) return cudaErrorLaunchOutOfResources;
  const long long dyn = static_cast<long long>(cfg.dynamic_smem), stat = static_cast<long long>(k.static_smem);
  const long long dyn_cap = k.max_dynamic_smem >= 0 ? k.max_dynamic_smem : d.smem_default - stat;
  if (dyn > dyn_cap || stat + dyn > d.smem_optin) return cudaErrorInvalidValue;
  return cudaSuccess;
}

std::vector<uint64_t> block_order(const dim3& g) {
  const uint64_t n = uint64_t(g.x) * g.y * g.z;
  if (n > (uint64_t(1) << 26)) throw EmulationError("cuda-emu: grid of " + std::to_string(n) + " blocks is too large to emulate");
  std::vector<uint64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  Settings& s = settings();
  if (s.schedule == ScheduleKind::kReverse) std::reverse(order.begin(), order.end());
  if (s.schedule == ScheduleKind::kRandom) {
    for (uint64_t i = n; i > 1; --i) std::swap(order[i - 1], order[s.rng() % i]);
  }
  return order;
}

}  // namespace

void launch(const LaunchConfig& cfg, void (*run)(const void*), const void* ctx) {
  if (t_ctx != nullptr) throw EmulationError("cuda-emu: a kernel launched a kernel (dynamic parallelism is not emulated)");
  static std::mutex one_at_a_time;  // one arena and one schedule: host threads launch in turn
  const std::lock_guard<std::mutex> lock(one_at_a_time);
  Settings& s = settings();
  KernelInfo& k = kernel_info(cfg.kernel, cfg.name);
  const cudaError_t err = check_launch(cfg, k, s.device);
  if (err != cudaSuccess) return set_last_error(err);
  ++s.launches;
  Arena& a = arena();
  a.begin_launch(cfg.dynamic_smem);
  Executor& ex = executor(s.mode);
  std::unique_ptr<StackGuard> guard;
  if (s.mode == Mode::kFibers) guard = std::make_unique<StackGuard>();
  const dim3 g = cfg.grid;
  for (uint64_t linear : block_order(g)) {
    const uint3 idx{static_cast<unsigned>(linear % g.x), static_cast<unsigned>((linear / g.x) % g.y),
                    static_cast<unsigned>(linear / (uint64_t(g.x) * g.y))};
    Block block(cfg, idx);
    a.begin_block();
    t_current = Current{&ex, &block, &a, &k};
    ex.run(block, run, ctx);
    t_current = Current{};
    k.static_smem = std::max(k.static_smem, a.static_bytes());
    if (block.launch_error() != cudaSuccess) return set_last_error(block.launch_error());
    if (!block.error().empty()) throw EmulationError(block.error());
    const std::string guards = a.check_guards();
    if (!guards.empty()) throw EmulationError("cuda-emu: " + guards + " in " + block.where());
  }
  const std::string global = post_launch_check();
  if (!global.empty()) {
    throw EmulationError("cuda-emu: " + global + " by " + cfg.name + " (launched at " +
                         site_str(Site{cfg.file, cfg.line, ""}) + ")");
  }
}

long long collective(const Request& r) {
  Current c = t_current;
  const int t = t_ctx->linear;
  c.exec->lock();
  c.block->arrive(t, r);
  if (!c.block->failed()) c.exec->wait(*c.block, t);
  if (c.block->failed()) {
    c.exec->unlock();
    c.exec->abandon(t);
  }
  const long long result = c.block->result(t);
  c.exec->unlock();
  return result;
}

void* shared_static(SharedSite* site) {
  Current c = t_current;
  size_t placed = 0;
  void* p = c.arena->place(site, &placed);
  if (p != nullptr && placed == 0) return p;  // placed (and checked) by an earlier thread
  const DeviceConfig& d = settings().device;
  const long long stat = static_cast<long long>(placed);
  const long long dyn = static_cast<long long>(c.arena->dynamic_bytes());
  c.exec->lock();
  if (p == nullptr) {
    c.block->fail("shared-memory arena exhausted at " + std::string(site->decl));
  } else if (stat > d.smem_default) {
    // ptxas rejects more than 48 KiB of static shared memory: only dynamic memory can opt in.
    c.block->fail("static shared memory reaches " + std::to_string(stat) + " bytes at " + site->decl + " (" +
                  site_str(Site{site->file, site->line, ""}) + "); CUDA allows at most " +
                  std::to_string(d.smem_default) + " (ptxas would reject the kernel)");
  } else if (stat + dyn > (c.kernel->max_dynamic_smem >= 0 ? d.smem_optin : d.smem_default)) {
    // Found only now that static + dynamic passes the per-block limit: the device would have
    // refused the launch, so it fails with the device's error (work done so far is not undone).
    c.block->fail_launch(cudaErrorInvalidValue);
  }
  const bool failed = c.block->failed();
  c.exec->unlock();
  if (failed) c.exec->abandon(t_ctx->linear);
  return p;
}

void* shared_dynamic(SharedSite* site) { return t_current.arena->dynamic(site); }

}  // namespace dt_emu
