// Per-instruction-set instances of the one micro-kernel template and the run-time dispatch (no torch).
//
// Each Wrap<M>::run below is the same dot_band<V, M, NC> inlined (flatten) into a function whose
// target attribute picks the instruction set, so the AVX-512 code is the AVX2 source at 16 lanes.
// Dispatch order: AVX-512F, else AVX2+FMA, else generic (the baseline ISA: SSE2 on x86-64).
#include <atomic>
#include <string>
#include <vector>

#include "dot_tile.h"

// The instances below are where the vector templates are compiled; see vec.h on -Wpsabi.
#pragma GCC diagnostic ignored "-Wpsabi"

#if defined(__x86_64__) || defined(_M_X64)
#define DINOTOOLS_X86 1
#endif

namespace dinotools {
namespace cpu {
namespace {

// NC per path: MQ*NC accumulators + NC candidates + 1 query must fit the register file
// (16 xmm/ymm: 4x3; 32 zmm: 4x6).
template <int M>
struct GenericBand {
  __attribute__((flatten)) static void run(const float* const* q, const float* c0, int64_t n, int64_t d, float* out) {
    dot_band<V4, M, 3>(q, c0, n, d, out);
  }
};

#ifdef DINOTOOLS_X86
template <int M>
struct Avx2Band {
  __attribute__((target("avx2,fma"), flatten)) static void run(const float* const* q, const float* c0, int64_t n,
                                                              int64_t d, float* out) {
    dot_band<V8, M, 3>(q, c0, n, d, out);
  }
};

template <int M>
struct Avx512Band {
  __attribute__((target("avx512f"), flatten)) static void run(const float* const* q, const float* c0, int64_t n,
                                                             int64_t d, float* out) {
    dot_band<V16, M, 6>(q, c0, n, d, out);
  }
};
#endif

// The AVX-512 path's exact source and shape (16 lanes, 4x6 tiles) compiled for the baseline
// instruction set (the compiler splits each 16-lane vector into 4 SSE registers): not a speed
// path, it lets tests on a machine without AVX-512 check the lane count, tails and tile shapes
// the AVX-512 instances use; only the instruction selection is left untested there.
template <int M>
struct Avx512LayoutBand {
  __attribute__((flatten)) static void run(const float* const* q, const float* c0, int64_t n, int64_t d,
                                           float* out) {
    dot_band<V16, M, 6>(q, c0, n, d, out);
  }
};

struct Registry {
  std::vector<const TileSet*> sets;  // what this CPU can run, best first
  std::vector<const char*> names;    // their names, then the test-only layout checks
  std::atomic<const TileSet*> active{nullptr};
  static constexpr int LAYOUT_CHECKS = 1;

  Registry() {
#ifdef DINOTOOLS_X86
    __builtin_cpu_init();
    // libgcc's checks include the OS enabling the register state (XCR0), not only CPUID.
    if (__builtin_cpu_supports("avx512f")) {
      static const TileSet avx512 = make_tile_set<Avx512Band>("avx512");
      sets.push_back(&avx512);
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
      static const TileSet avx2 = make_tile_set<Avx2Band>("avx2");
      sets.push_back(&avx2);
    }
#endif
    static const TileSet generic = make_tile_set<GenericBand>("generic");
    sets.push_back(&generic);
    for (const TileSet* s : sets) names.push_back(s->name);
    active.store(sets.front());
    static const TileSet layout = make_tile_set<Avx512LayoutBand>("avx512-layout");
    sets.push_back(&layout);  // after the runnable ones: "auto" never picks it
    names.push_back(layout.name);
  }
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

const TileSet& active_tiles() { return *registry().active.load(std::memory_order_relaxed); }

const char* active_isa() { return active_tiles().name; }

const char* const* available_isas(int* count, bool layout_checks) {
  *count = static_cast<int>(registry().names.size()) - (layout_checks ? 0 : Registry::LAYOUT_CHECKS);
  return registry().names.data();
}

bool select_isa(const char* name) {
  Registry& r = registry();
  const std::string want(name);
  if (want == "auto") {
    r.active.store(r.sets.front());
    return true;
  }
  for (const TileSet* s : r.sets) {
    if (want == s->name) {
      r.active.store(s);
      return true;
    }
  }
  return false;
}

}  // namespace cpu
}  // namespace dinotools
