// The runnable threads of a block (at most 1024) as a bit set, with the lookups the schedules need.
#pragma once

#include <cstdint>

namespace dt_emu {

class ThreadSet {
 public:
  void set(int t) { w_[t >> 6] |= 1ull << (t & 63); }
  void clear(int t) { w_[t >> 6] &= ~(1ull << (t & 63)); }
  bool test(int t) const { return (w_[t >> 6] >> (t & 63)) & 1; }
  int lowest() const;   // -1 when empty
  int highest() const;  // -1 when empty
  int count() const;
  int nth(int k) const;  // k-th set thread in increasing order, k < count()

 private:
  uint64_t w_[16] = {};
};

inline int ThreadSet::lowest() const {
  for (int i = 0; i < 16; ++i)
    if (w_[i]) return i * 64 + __builtin_ctzll(w_[i]);
  return -1;
}

inline int ThreadSet::highest() const {
  for (int i = 15; i >= 0; --i)
    if (w_[i]) return i * 64 + 63 - __builtin_clzll(w_[i]);
  return -1;
}

inline int ThreadSet::count() const {
  int c = 0;
  for (uint64_t w : w_) c += __builtin_popcountll(w);
  return c;
}

inline int ThreadSet::nth(int k) const {
  for (int i = 0; i < 16; ++i) {
    const int c = __builtin_popcountll(w_[i]);
    if (k >= c) {
      k -= c;
      continue;
    }
    uint64_t w = w_[i];
    for (; k > 0; --k) w &= w - 1;  // drop the lowest set bits
    return i * 64 + __builtin_ctzll(w);
  }
  return -1;
}

}  // namespace dt_emu
