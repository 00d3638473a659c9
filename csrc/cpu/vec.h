// The small vector abstraction the CPU micro-kernel is written against (GCC/Clang vector extensions).
//
// The kernel template only uses +, * (contracted to FMA where the target has it), load and hsum,
// so one source compiles to SSE2/NEON (generic), AVX2+FMA (V8) or AVX-512 (V16): the instruction set
// comes from the target attribute of the function the template is inlined into (see isa.cpp).
#pragma once

#include <cstdint>
#include <cstring>

// These vectors never cross a call boundary (everything here is always_inline), so GCC's note that
// passing them by value changes the ABI without AVX does not apply.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"

namespace dinotools {
namespace cpu {

typedef float V4 __attribute__((vector_size(16)));
typedef float V8 __attribute__((vector_size(32)));
typedef float V16 __attribute__((vector_size(64)));

template <class V>
constexpr int lanes() {
  return static_cast<int>(sizeof(V) / sizeof(float));
}

// Unaligned load: memcpy compiles to one vmovups; a pointer cast would let the compiler assume
// vector alignment, and candidate rows are only float-aligned when D is not a multiple of W.
template <class V>
__attribute__((always_inline)) inline V load(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}

template <class Half, class V>
__attribute__((always_inline)) inline Half fold(const V& v) {
  Half lo, hi;
  std::memcpy(&lo, &v, sizeof(Half));
  std::memcpy(&hi, reinterpret_cast<const char*>(&v) + sizeof(Half), sizeof(Half));
  return lo + hi;
}

// Horizontal sum by halving (16 -> 8 -> 4 lanes, then a fixed pairwise order): every ISA path sums
// the lanes of a vector in the same tree, so paths differ only by the lane count.
__attribute__((always_inline)) inline float hsum(const V4& v) { return (v[0] + v[2]) + (v[1] + v[3]); }
__attribute__((always_inline)) inline float hsum(const V8& v) { return hsum(fold<V4>(v)); }
__attribute__((always_inline)) inline float hsum(const V16& v) { return hsum(fold<V8>(v)); }

}  // namespace cpu
}  // namespace dinotools

#pragma GCC diagnostic pop
