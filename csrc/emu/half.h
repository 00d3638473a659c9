// __half and __nv_bfloat16 for emulated builds: 16-bit storage, conversions rounded to nearest even
// like cuda_fp16.h / cuda_bf16.h, arithmetic done exactly in double and rounded once.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace dt_emu {

// Round a finite or special double to binary16 bits, ties to even. Scaling by powers of two is
// exact, so nearbyint (default rounding mode: to nearest, ties to even) does the only rounding.
inline uint16_t double_to_half_bits(double d) {
  const uint16_t sign = std::signbit(d) ? 0x8000 : 0;
  const double a = std::fabs(d);
  if (std::isnan(d)) return 0x7fff;               // CUDA's canonical NaN
  if (a >= 65520.0) return sign | 0x7c00;          // past max half (65504) by half an ulp: infinity
  if (a < 0x1p-14) {                               // subnormal: units of 2^-24
    return sign | static_cast<uint16_t>(std::nearbyint(a * 0x1p24));  // 1024 is the smallest normal
  }
  int e = 0;
  std::frexp(a, &e);                               // a in [2^(e-1), 2^e)
  const auto q = static_cast<uint32_t>(std::nearbyint(std::ldexp(a, 11 - e)));  // [1024, 2048]
  return sign | static_cast<uint16_t>(((e + 14) << 10) + (q - 1024));  // q = 2048 carries up
}

inline float half_bits_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  uint32_t bits;
  if (e == 0x1f) {
    bits = sign | 0x7f800000u | (m << 13);
  } else if (e == 0) {
    const float v = std::ldexp(static_cast<float>(m), -24);  // exact
    return sign ? -v : v;
  } else {
    bits = sign | ((e + 112) << 23) | (m << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline uint16_t float_to_bf16_bits(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if (std::isnan(f)) return 0x7fff;                // CUDA's canonical NaN
  x += 0x7fffu + ((x >> 16) & 1u);                 // ties to even; overflow carries into infinity
  return static_cast<uint16_t>(x >> 16);
}

inline float bf16_bits_to_float(uint16_t b) {
  const uint32_t x = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

}  // namespace dt_emu

struct __half {
  unsigned short __x;
  __half() = default;
  __half(float f) : __x(dt_emu::double_to_half_bits(f)) {}       // NOLINT: implicit, as in CUDA
  __half(double d) : __x(dt_emu::double_to_half_bits(d)) {}      // NOLINT
  __half(int i) : __x(dt_emu::double_to_half_bits(i)) {}         // NOLINT
  operator float() const { return dt_emu::half_bits_to_float(__x); }  // NOLINT
};

struct __nv_bfloat16 {
  unsigned short __x;
  __nv_bfloat16() = default;
  __nv_bfloat16(float f) : __x(dt_emu::float_to_bf16_bits(f)) {}  // NOLINT: implicit, as in CUDA
  __nv_bfloat16(int i) : __x(dt_emu::float_to_bf16_bits(static_cast<float>(i))) {}  // NOLINT
  operator float() const { return dt_emu::bf16_bits_to_float(__x); }  // NOLINT
};

inline __half __float2half(float f) { return __half(f); }
inline __half __float2half_rn(float f) { return __half(f); }
inline __half __double2half(double d) { return __half(d); }
inline float __half2float(__half h) { return static_cast<float>(h); }
inline unsigned short __half_as_ushort(__half h) { return h.__x; }
inline __half __ushort_as_half(unsigned short u) {
  __half h;
  h.__x = u;
  return h;
}
inline __nv_bfloat16 __float2bfloat16(float f) { return __nv_bfloat16(f); }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __nv_bfloat16(f); }
inline float __bfloat162float(__nv_bfloat16 b) { return static_cast<float>(b); }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 b) { return b.__x; }
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short u) {
  __nv_bfloat16 b;
  b.__x = u;
  return b;
}

// Sums and products of two 16-bit floats are exact in double, so rounding once gives CUDA's result.
inline __half __hadd(__half a, __half b) { return __half(double(float(a)) + double(float(b))); }
inline __half __hsub(__half a, __half b) { return __half(double(float(a)) - double(float(b))); }
inline __half __hmul(__half a, __half b) { return __half(double(float(a)) * double(float(b))); }
