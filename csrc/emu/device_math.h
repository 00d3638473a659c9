// Device math and atomics for emulated builds: CUDA's global min/max overloads, bit intrinsics,
// atomic* on __atomic builtins (real atomics, so the one-OS-thread-per-CUDA-thread mode is safe).
#pragma once

#include <math.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

// CUDA declares min/max for every arithmetic pair in the global namespace; floats follow fminf/fmaxf
// (a NaN operand yields the other one).
template <class A, class B, class = std::enable_if_t<std::is_arithmetic_v<A> && std::is_arithmetic_v<B>>>
inline std::common_type_t<A, B> max(A a, B b) {
  using C = std::common_type_t<A, B>;
  if constexpr (std::is_floating_point_v<C>) return std::fmax(C(a), C(b));
  return C(a) < C(b) ? C(b) : C(a);
}
template <class A, class B, class = std::enable_if_t<std::is_arithmetic_v<A> && std::is_arithmetic_v<B>>>
inline std::common_type_t<A, B> min(A a, B b) {
  using C = std::common_type_t<A, B>;
  if constexpr (std::is_floating_point_v<C>) return std::fmin(C(a), C(b));
  return C(b) < C(a) ? C(b) : C(a);
}

inline float __expf(float x) { return ::expf(x); }
inline float __logf(float x) { return ::logf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float x) { return 1.0f / ::sqrtf(x); }
inline float __saturatef(float x) { return x != x ? 0.f : (x < 0.f ? 0.f : (x > 1.f ? 1.f : x)); }
inline int __float_as_int(float f) { int i; std::memcpy(&i, &f, 4); return i; }
inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline unsigned __brev(unsigned x) {
  unsigned r = 0;
  for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
  return r;
}
template <class T>
inline T __ldg(const T* p) { return *p; }

inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

namespace dt_emu {
template <class T>
struct same { using type = T; };
template <class T>
using nondeduced = typename same<T>::type;  // the value's type follows the pointer, as CUDA's overloads do

// Read-modify-write with a compare-exchange loop: works for floats and every integer width.
template <class T, class F>
inline T atomic_rmw(T* p, F f) {
  T old;
  __atomic_load(p, &old, __ATOMIC_RELAXED);
  T want;
  do {
    want = f(old);
  } while (!__atomic_compare_exchange(p, &old, &want, false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
  return old;
}
}  // namespace dt_emu

template <class T>
inline T atomicAdd(T* p, dt_emu::nondeduced<T> v) { return dt_emu::atomic_rmw(p, [v](T o) { return T(o + v); }); }
template <class T>
inline T atomicSub(T* p, dt_emu::nondeduced<T> v) { return dt_emu::atomic_rmw(p, [v](T o) { return T(o - v); }); }
template <class T>
inline T atomicMax(T* p, dt_emu::nondeduced<T> v) { return dt_emu::atomic_rmw(p, [v](T o) { return o < v ? v : o; }); }
template <class T>
inline T atomicMin(T* p, dt_emu::nondeduced<T> v) { return dt_emu::atomic_rmw(p, [v](T o) { return v < o ? v : o; }); }
template <class T>
inline T atomicAnd(T* p, dt_emu::nondeduced<T> v) { return dt_emu::atomic_rmw(p, [v](T o) { return T(o & v); }); }
template <class T>
inline T atomicOr(T* p, dt_emu::nondeduced<T> v) { return dt_emu::atomic_rmw(p, [v](T o) { return T(o | v); }); }
template <class T>
inline T atomicXor(T* p, dt_emu::nondeduced<T> v) { return dt_emu::atomic_rmw(p, [v](T o) { return T(o ^ v); }); }
template <class T>
inline T atomicExch(T* p, dt_emu::nondeduced<T> v) { return dt_emu::atomic_rmw(p, [v](T) { return v; }); }
template <class T>
inline T atomicCAS(T* p, dt_emu::nondeduced<T> compare, dt_emu::nondeduced<T> v) {
  __atomic_compare_exchange(p, &compare, &v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  return compare;  // the old value either way
}
