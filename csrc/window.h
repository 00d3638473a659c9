// Neighbourhood geometry shared by the CPU kernel and the CUDA binding (plain C++, no torch).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace dinotools {

// The window of the notebook's make_neighborhood_mask, clipped to what an h x w frame can hold.
// Every row dy of a circle or a square is one interval dx in [-half, half], so the window is
// stored per row; its K offsets are numbered row-major: (dy, dx) has index start[dy+ry] + dx + half.
struct Window {
  int ry = 0;               // rows dy in [-ry, ry]
  std::vector<int> half;    // [2ry+1] half width of row dy (-1: empty row)
  std::vector<int> start;   // [2ry+1] index of the row's first offset
  int count = 0;            // K, number of offsets
  int rx = 0;               // |dx| <= rx in every row (the CUDA kernel derives rows from ry, rx)
};

// size is a radius; circle keeps Euclidean distance <= size, square Chebyshev distance <= size.
// The test is done in float32 on integer offsets exactly as torch does it for the mask, so
// boundary cells (e.g. (3,4) at size 5) are decided identically.
inline Window make_window(int64_t h, int64_t w, double size, bool circle) {
  Window win;
  if (!(size >= 0.0)) {  // negative or NaN: only empty rows
    return win;
  }
  const float r = static_cast<float>(size);
  const double fr = std::floor(std::min(size, static_cast<double>(std::max(h, w))));
  win.ry = static_cast<int>(std::min<double>(fr, static_cast<double>(h - 1)));
  const int rx = static_cast<int>(std::min<double>(fr, static_cast<double>(w - 1)));
  win.rx = rx;
  win.half.assign(2 * win.ry + 1, -1);
  win.start.assign(2 * win.ry + 1, 0);
  for (int dy = -win.ry; dy <= win.ry; ++dy) {
    int hw = -1;
    for (int dx = 0; dx <= rx; ++dx) {
      const float d = circle ? std::sqrt(static_cast<float>(dy * dy + dx * dx))
                             : static_cast<float>(std::max(std::abs(dy), dx));
      if (!(d <= r)) break;  // distance grows with |dx|
      hw = dx;
    }
    win.half[dy + win.ry] = hw;
    win.start[dy + win.ry] = win.count;
    win.count += hw >= 0 ? 2 * hw + 1 : 0;
  }
  return win;
}

}  // namespace dinotools
