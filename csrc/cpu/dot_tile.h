// The CPU micro-kernel, written once: an MQ x NC block of D-long dot products, lanes along D.
//
// Why lanes along D (the "dot" form) and not BLAS's broadcast form: the broadcast form needs the t
// context frames interleaved into packed panels and D split into L1-sized blocks with partial sums
// kept in memory; measured on a Zen 3 core, its 4x3 tile reached about the same rate as this one
// streaming whole D-vectors from an L2-resident band, so the packing would only add work and memory.
// Here one context row of one frame (w vectors) is the natural block: the band of candidates that
// a group of queries needs slides along it and stays in L2, the group's queries stay in L1.
#pragma once

#include <cstdint>

#include "vec.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"  // as in vec.h: these vectors never cross a call boundary

namespace dinotools {
namespace cpu {

constexpr int MQ_MAX = 4;   // queries per group (2 rows x 2 columns of the patch grid)

// Per W floats of D: MQ query loads and NC candidate loads feed MQ*NC FMAs (4x3 on AVX2: 7 loads,
// 12 FMAs, 16 registers). Whole D per tile: splitting D into L1-sized chunks (accumulators carried
// in memory between chunks) measured no faster at D=1024, the L2 keeps up with these loads.
// out[a*ldo + b] = <q[a], c[b]> for a < MQ, b < NC.
template <class V, int MQ, int NC>
__attribute__((always_inline)) inline void dot_tile(const float* const* q, const float* const* c, int64_t d,
                                                    float* out, int64_t ldo) {
  constexpr int W = lanes<V>();
  V r[MQ][NC];
  for (int a = 0; a < MQ; ++a)
    for (int b = 0; b < NC; ++b) r[a][b] = V{};
  int64_t i = 0;
  for (; i + W <= d; i += W) {
    V cv[NC];
    for (int b = 0; b < NC; ++b) cv[b] = load<V>(c[b] + i);
    for (int a = 0; a < MQ; ++a) {
      const V qa = load<V>(q[a] + i);
      for (int b = 0; b < NC; ++b) r[a][b] += qa * cv[b];
    }
  }
  for (int a = 0; a < MQ; ++a) {
    for (int b = 0; b < NC; ++b) {
      float s = hsum(r[a][b]);
      for (int64_t k = i; k < d; ++k) s += q[a][k] * c[b][k];  // D not a multiple of W
      out[a * ldo + b] = s;
    }
  }
}

// One tile of n < NC candidates (n known only at run time), dispatched to the matching instance.
template <class V, int MQ, int N>
__attribute__((always_inline)) inline void dot_tile_n(const float* const* q, const float* c0, int64_t n, int64_t d,
                                                      float* out, int64_t ldo) {
  if constexpr (N >= 1) {
    if (n == N) {
      const float* c[N];
      for (int b = 0; b < N; ++b) c[b] = c0 + b * d;
      dot_tile<V, MQ, N>(q, c, d, out, ldo);
      return;
    }
    dot_tile_n<V, MQ, N - 1>(q, c0, n, d, out, ldo);
  }
}

// out[a*n + v] = <q[a], c0 + v*d> for a < MQ, v < n: MQ queries against a run of n consecutive
// candidates (one context row), in tiles of NC. A short last tile (fewer than NC/2 left) is merged
// with the one before and split in two near-equal tiles: 1-candidate tiles are load-bound.
template <class V, int MQ, int NC>
__attribute__((always_inline)) inline void dot_band(const float* const* q, const float* c0, int64_t n, int64_t d,
                                                    float* out) {
  int64_t v = 0;
  for (; v + NC <= n; v += NC) {
    const float* c[NC];
    for (int b = 0; b < NC; ++b) c[b] = c0 + (v + b) * d;
    dot_tile<V, MQ, NC>(q, c, d, out + v, n);
  }
  int64_t rest = n - v;
  if (rest > 0 && rest < NC / 2 && v >= NC) {
    v -= NC;
    rest += NC;
    const int64_t first = (rest + 1) / 2;
    dot_tile_n<V, MQ, NC>(q, c0 + v * d, first, d, out + v, n);
    v += first;
    rest -= first;
  }
  if (rest > 0) dot_tile_n<V, MQ, NC>(q, c0 + v * d, rest, d, out + v, n);
}

// out[a*n + v] = <q[a], c0 + v*d> for a < mq (fixed per instance), v < n.
using BandFn = void (*)(const float* const* q, const float* c0, int64_t n, int64_t d, float* out);

// One instruction set's band kernels: fn[mq] for 1 <= mq <= MQ_MAX.
struct TileSet {
  const char* name;
  BandFn fn[MQ_MAX + 1];
};

// Wrap<m>::run carries the target attribute, so each instance is compiled for its instruction set.
template <template <int> class Wrap>
TileSet make_tile_set(const char* name) {
  return TileSet{name, {nullptr, &Wrap<1>::run, &Wrap<2>::run, &Wrap<3>::run, &Wrap<4>::run}};
}

// The instruction set in use (best the CPU supports unless overridden) and what this CPU can run.
const TileSet& active_tiles();
const char* active_isa();
// Names this CPU and build can run, best first (ends with "generic"); with layout_checks, also the
// test-only "avx512-layout" (the AVX-512 source at 16 lanes compiled for the baseline ISA).
const char* const* available_isas(int* count, bool layout_checks = false);
// "auto" or one of available_isas(); false (and nothing changed) for anything else.
bool select_isa(const char* name);

}  // namespace cpu
}  // namespace dinotools

#pragma GCC diagnostic pop
