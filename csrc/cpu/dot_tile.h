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

namespace dinotools {
namespace cpu {

constexpr int MQ_MAX = 4;   // queries per group (2 rows x 2 columns of the patch grid)
constexpr int NC_MAX = 6;   // candidates per tile on the widest path (AVX-512: 4x6 accumulators)

// out[a*nc + b] = <q[a], c[b]> for a < mq, b < nc (mq, nc fixed per instantiation).
using TileFn = void (*)(const float* const* q, const float* const* c, int64_t d, float* out);

// Per W floats of D: MQ query loads and NC candidate loads feed MQ*NC FMAs (4x3 on AVX2: 7 loads,
// 12 FMAs, 16 registers). Whole D per call: splitting D into L1-sized chunks (accumulators carried
// in memory between chunks) measured no faster at D=1024, the L2 keeps up with these loads.
template <class V, int MQ, int NC>
__attribute__((always_inline)) inline void dot_tile(const float* const* q, const float* const* c, int64_t d,
                                                    float* out) {
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
      out[a * NC + b] = s;
    }
  }
}

// One instruction set's tiles: fn[mq][nc] for 1 <= mq <= MQ_MAX, 1 <= nc <= nc_max.
struct TileSet {
  const char* name;
  int lanes;  // W, floats per vector
  int nc_max;
  TileFn fn[MQ_MAX + 1][NC_MAX + 1];
};

// Fills s.fn[m][n] for 1 <= m <= M, 1 <= n <= NC (row m from n = N down) with Wrap<m, n>::run;
// Wrap carries the target attribute, so each instance is compiled for its instruction set.
template <template <int, int> class Wrap, int NC, int M, int N>
void fill_tiles(TileSet& s) {
  if constexpr (M >= 1) {
    if constexpr (N >= 1) {
      s.fn[M][N] = &Wrap<M, N>::run;
      fill_tiles<Wrap, NC, M, N - 1>(s);
    } else {
      fill_tiles<Wrap, NC, M - 1, NC>(s);
    }
  }
}

template <template <int, int> class Wrap, int W, int NC>
TileSet make_tile_set(const char* name) {
  static_assert(NC >= 1 && NC <= NC_MAX, "NC out of range");
  TileSet s{name, W, NC, {}};
  fill_tiles<Wrap, NC, MQ_MAX, NC>(s);
  return s;
}

// The instruction set in use (best the CPU supports unless overridden) and what this CPU can run.
const TileSet& active_tiles();
const char* active_isa();
// Names this CPU and build can run, best first (always ends with "generic").
const char* const* available_isas(int* count);
// "auto" or one of available_isas(); false (and nothing changed) for anything else.
bool select_isa(const char* name);

}  // namespace cpu
}  // namespace dinotools
