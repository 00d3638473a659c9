// CPU kernel of dinotools::guided_labels: the `guided` refiner's labels in one pass, no [M,H,W] scores.
//
// The refiner (dinotools/refiners/guided.py) fits, in every (2r+1)^2 window of a low-resolution
// copy of the frame, each channel's probability as an affine function of the colour (p ~ a.I + b,
// ridge eps), averages a and b over the windows, upsamples them bilinearly to the frame and takes
// the first argmax of b + a.I per pixel. In torch that is ~40 small ops at low resolution and
// 4M full-resolution planes (20 for M=5: 33 MB at 854x480) written and read again; here the low-
// resolution part is a few tiled loops over ~25k cells, a cell whose winner no colour can change
// (decided_quads) labels its pixels directly, and only the band of undecided pixels along the
// boundaries is scored, one output row at a time from two cached x-interpolated coefficient rows.
//
// Float operations follow the torch path's order (box sums divided by window counts, cofactor
// solve, interpolation weights of interpolate(mode="bilinear", align_corners=False), then
// b + a0*I0 + a1*I1 + a2*I2), so labels equal its argmax except at float-rounding ties.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

// The hot loops are compiled twice, for AVX2+FMA and for the baseline, and picked when the library
// loads (GCC/Clang function multiversioning); the build itself stays baseline x86-64. ISO C++
// (-std=c++17) keeps -ffp-contract=off, so the AVX2 clone rounds as the baseline does.
#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__)
#define DT_HOT __attribute__((target_clones("avx2", "default")))
#else
#define DT_HOT
#endif

namespace dinotools {
namespace cpu {
namespace {

// The number of in-frame indices in each index's (2r+1) window along one axis of length n.
std::vector<float> window_counts(int64_t n, int64_t r) {
  std::vector<float> out(n);
  for (int64_t i = 0; i < n; ++i)
    out[i] = static_cast<float>(std::min<int64_t>(n - 1, i + r) - std::max<int64_t>(0, i - r) + 1);
  return out;
}

// Mean over the (2r+1)^2 window around each pixel, clipped at the borders (sum of the in-frame
// pixels divided by their count, as the torch path's box_mean), of one [h,w] plane. Direct sums:
// r is 1-3 in practice, where running sums would only add a serial dependency per row.
DT_HOT void box_mean(const float* in, float* out, int64_t h, int64_t w, int64_t r, const float* count_y,
                     const float* count_x, float* rows) {
  for (int64_t y = 0; y < h; ++y) {
    const float* src = in + y * w;
    float* dst = rows + y * w;
    const int64_t head = std::min(r, w), tail = std::max(head, w - r);
    for (int64_t x = 0; x < head; ++x) {
      float s = 0.f;
      for (int64_t i = 0; i <= std::min(w - 1, x + r); ++i) s += src[i];
      dst[x] = s;
    }
    if (tail > head) {  // interior: the whole window is in the row; d outer so that x vectorises
      for (int64_t x = head; x < tail; ++x) dst[x] = src[x - r];
      for (int64_t d = 1 - r; d <= r; ++d)
        for (int64_t x = head; x < tail; ++x) dst[x] += src[x + d];
    }
    for (int64_t x = tail; x < w; ++x) {
      float s = 0.f;
      for (int64_t i = std::max<int64_t>(0, x - r); i < w; ++i) s += src[i];
      dst[x] = s;
    }
  }
  for (int64_t y = 0; y < h; ++y) {
    const int64_t lo = std::max<int64_t>(0, y - r), hi = std::min<int64_t>(h - 1, y + r);
    float* dst = out + y * w;
    const float* first = rows + lo * w;
    for (int64_t x = 0; x < w; ++x) dst[x] = first[x];
    for (int64_t i = lo + 1; i <= hi; ++i) {
      const float* src = rows + i * w;
      for (int64_t x = 0; x < w; ++x) dst[x] += src[x];
    }
    const float cy = count_y[y];
    for (int64_t x = 0; x < w; ++x) dst[x] *= 1.0f / (cy * count_x[x]);
  }
}

// The two inputs and the second one's weight that interpolate(bilinear, align_corners=False)
// reads for each output index (half-pixel centres, clamped), as refiners/_filters.bilinear_source.
struct Source {
  std::vector<int64_t> i0, i1;
  std::vector<float> lam;
};

Source bilinear_source(int64_t n_in, int64_t n_out) {
  Source s;
  s.i0.resize(n_out), s.i1.resize(n_out), s.lam.resize(n_out);
  const float scale = static_cast<float>(static_cast<double>(n_in) / static_cast<double>(n_out));
  for (int64_t i = 0; i < n_out; ++i) {
    const float src = std::max((static_cast<float>(i) + 0.5f) * scale - 0.5f, 0.f);
    const int64_t i0 = std::min<int64_t>(static_cast<int64_t>(src), n_in - 1);
    s.i0[i] = i0;
    s.i1[i] = std::min<int64_t>(i0 + 1, n_in - 1);
    s.lam[i] = std::min(std::max(src - static_cast<float>(i0), 0.f), 1.f);
  }
  return s;
}

// Grow-only buffers of the calling thread, by slot. A refiner runs once per frame at the same
// shapes; fresh multi-MB buffers on every call cost more in page faults (measured: ~10 ms of a
// 15 ms call at 854x480, M=5) than the arithmetic. Held: ~(9 + 8M) * hl * wl floats (4 MB for M=5).
float* scratch(int slot, int64_t count) {
  thread_local std::vector<float> buffers[4];
  std::vector<float>& b = buffers[slot];
  if (static_cast<int64_t>(b.size()) < count) b.resize(count);
  return b.data();
}

// The solve of `coefficients` over pixels [0, n) in tiles: means [9+4M][n] -> a [3M][n], b [M][n] (into out).
DT_HOT void solve_tiles(const float* mu, float* out, int64_t n, int64_t m, float eps, int64_t tile) {
  float inv[7][256];  // i00 i01 i02 i11 i12 i22 det of the tile's pixels
  for (int64_t t0 = 0; t0 < n; t0 += tile) {
    const int64_t len = std::min(tile, n - t0);
    const float *m0 = mu + t0, *m1 = mu + n + t0, *m2 = mu + 2 * n + t0;
    for (int64_t j = 0; j < len; ++j) {
      const float sa = mu[3 * n + t0 + j] - m0[j] * m0[j] + eps, sb = mu[4 * n + t0 + j] - m0[j] * m1[j];
      const float sc = mu[5 * n + t0 + j] - m0[j] * m2[j], sd = mu[6 * n + t0 + j] - m1[j] * m1[j] + eps;
      const float se = mu[7 * n + t0 + j] - m1[j] * m2[j], sf = mu[8 * n + t0 + j] - m2[j] * m2[j] + eps;
      const float i00 = sd * sf - se * se, i01 = sc * se - sb * sf, i02 = sb * se - sc * sd;
      inv[0][j] = i00, inv[1][j] = i01, inv[2][j] = i02;
      inv[3][j] = sa * sf - sc * sc, inv[4][j] = sb * sc - sa * se, inv[5][j] = sa * sd - sb * sb;
      inv[6][j] = sa * i00 + sb * i01 + sc * i02;
    }
    for (int64_t k = 0; k < m; ++k) {
      const float* mp = mu + (9 + k) * n + t0;
      const float* gx = mu + (9 + m + 3 * k) * n + t0;
      const float* gy = gx + n;
      const float* gz = gy + n;
      float *a0 = out + (3 * k) * n + t0, *a1 = a0 + n, *a2 = a1 + n, *b = out + (3 * m + k) * n + t0;
      for (int64_t j = 0; j < len; ++j) {
        const float cx = gx[j] - mp[j] * m0[j], cy = gy[j] - mp[j] * m1[j], cz = gz[j] - mp[j] * m2[j];
        const float v0 = (inv[0][j] * cx + inv[1][j] * cy + inv[2][j] * cz) / inv[6][j];
        const float v1 = (inv[1][j] * cx + inv[3][j] * cy + inv[4][j] * cz) / inv[6][j];
        const float v2 = (inv[2][j] * cx + inv[4][j] * cy + inv[5][j] * cz) / inv[6][j];
        a0[j] = v0, a1[j] = v1, a2[j] = v2;
        b[j] = mp[j] - (v0 * m0[j] + v1 * m1[j] + v2 * m2[j]);
      }
    }
  }
}

// Window-averaged affine coefficients at low resolution: [4M, h*w], rows a(m,c) for m, c (3M),
// then b(m) (M). guide [3,n], p [M,n] with n = h*w. Returns a scratch buffer of this thread.
const float* coefficients(const float* guide, const float* p, int64_t m, int64_t h, int64_t w, int64_t r,
                          float eps) {
  const int64_t n = h * w, planes = 9 + 4 * m;
  float* x = scratch(0, planes * n);
  float* means = scratch(1, planes * n);
  float* ab = scratch(2, 4 * m * n);
  const std::vector<float> count_y = window_counts(h, r), count_x = window_counts(w, r);
  auto boxes = [&](const float* in, float* out, int64_t count) {  // planes in parallel, one row buffer each
    at::parallel_for(0, count, 1, [&](int64_t begin, int64_t end) {
      float* rows = scratch(3, n);
      for (int64_t k = begin; k < end; ++k)
        box_mean(in + k * n, out + k * n, h, w, r, count_y.data(), count_x.data(), rows);
    });
  };
  const float *g0 = guide, *g1 = guide + n, *g2 = guide + 2 * n;
  for (int64_t i = 0; i < n; ++i) {
    x[0 * n + i] = g0[i], x[1 * n + i] = g1[i], x[2 * n + i] = g2[i];
    x[3 * n + i] = g0[i] * g0[i], x[4 * n + i] = g0[i] * g1[i], x[5 * n + i] = g0[i] * g2[i];
    x[6 * n + i] = g1[i] * g1[i], x[7 * n + i] = g1[i] * g2[i], x[8 * n + i] = g2[i] * g2[i];
  }
  for (int64_t k = 0; k < m; ++k) {
    const float* pk = p + k * n;
    std::copy(pk, pk + n, x + (9 + k) * n);
    for (int64_t c = 0; c < 3; ++c) {
      float* dst = x + (9 + m + 3 * k + c) * n;
      const float* gc = guide + c * n;
      for (int64_t i = 0; i < n; ++i) dst[i] = pk[i] * gc[i];
    }
  }
  boxes(x, means, planes);

  // Per pixel: the window's colour covariance (+ eps on the diagonal), its cofactor inverse, and
  // each channel's a = Sigma^-1 cov(I, p), b = mean(p) - a . mean(I). In tiles of pixels, channel
  // loop outside: each loop then reads and writes a few contiguous runs (vectorised), where a
  // pixel-outer loop would touch 9 + 8M planes at once (more streams than the prefetcher follows).
  constexpr int64_t kTile = 256;
  const float* mu = means;
  solve_tiles(mu, x, n, m, eps, kTile);
  boxes(x, ab, 4 * m);
  return ab;
}

// Pixels [xa, xb) of one output row: r0/r1 the x-interpolated coefficients [4M][W] of the two
// low-resolution rows it reads, l the second one's weight, io [5][W] the row's colour (3 planes)
// then two scratch rows. label[x] <- the first channel with the highest b + a0*I0 + a1*I1 + a2*I2
// (torch's order).
DT_HOT void label_row(const float* r0, const float* r1, float l, float* io, int64_t m, int64_t W, int64_t xa,
                      int64_t xb, int32_t* label) {
  const float l0 = 1.f - l;
  float* score = io + 3 * W;
  float* best = io + 4 * W;
  for (int64_t k = 0; k < m; ++k) {
    const float* b0 = r0 + (3 * m + k) * W;
    const float* b1 = r1 + (3 * m + k) * W;
    for (int64_t x = xa; x < xb; ++x) score[x] = l0 * b0[x] + l * b1[x];
    for (int64_t c = 0; c < 3; ++c) {
      const float* a0 = r0 + (3 * k + c) * W;
      const float* a1 = r1 + (3 * k + c) * W;
      const float* ic = io + c * W;
      for (int64_t x = xa; x < xb; ++x) score[x] = score[x] + (l0 * a0[x] + l * a1[x]) * ic[x];
    }
    if (k == 0) {
      for (int64_t x = xa; x < xb; ++x) best[x] = score[x], label[x] = 0;
      continue;
    }
    const int32_t kk = static_cast<int32_t>(k);
    for (int64_t x = xa; x < xb; ++x) {
      const bool more = score[x] > best[x];  // strict: the first maximum wins ties
      best[x] = more ? score[x] : best[x];
      label[x] = more ? kk : label[x];
    }
  }
}

// cell[i] <- the channel winning at cell i for any colour by more than tol, else -1 (see decided_quads).
// In tiles, channel loops outside, as solve_tiles.
DT_HOT void decide_cells(const float* ab, const float* guide, int64_t n, int64_t m, float tol, int32_t* cell) {
  constexpr int64_t kTile = 256;
  float best[kTile], worst[kTile], own[4][kTile];
  int32_t win[kTile];
  for (int64_t t0 = 0; t0 < n; t0 += kTile) {
    const int64_t len = std::min(kTile, n - t0);
    const float *g0 = guide + t0, *g1 = g0 + n, *g2 = g1 + n;
    for (int64_t k = 0; k < m; ++k) {  // the winner at the cell's own colour
      const float *a0 = ab + 3 * k * n + t0, *a1 = a0 + n, *a2 = a1 + n, *b = ab + (3 * m + k) * n + t0;
      const int32_t kk = static_cast<int32_t>(k);
      for (int64_t j = 0; j < len; ++j) {
        const float q = b[j] + a0[j] * g0[j] + a1[j] * g1[j] + a2[j] * g2[j];
        const bool more = k == 0 || q > best[j];
        best[j] = more ? q : best[j];
        win[j] = more ? kk : win[j];
      }
    }
    for (int64_t j = 0; j < len; ++j) {
      for (int64_t c = 0; c < 3; ++c) own[c][j] = ab[(3 * win[j] + c) * n + t0 + j];
      own[3][j] = ab[(3 * m + win[j]) * n + t0 + j];
      worst[j] = INFINITY;
    }
    for (int64_t k = 0; k < m; ++k) {  // the least lead over the colour cube's corners
      const float *a0 = ab + 3 * k * n + t0, *a1 = a0 + n, *a2 = a1 + n, *b = ab + (3 * m + k) * n + t0;
      for (int64_t j = 0; j < len; ++j) {
        const float lead = own[3][j] - b[j] + std::min(own[0][j] - a0[j], 0.f) + std::min(own[1][j] - a1[j], 0.f) +
                           std::min(own[2][j] - a2[j], 0.f);
        worst[j] = win[j] == k ? worst[j] : std::min(worst[j], lead);
      }
    }
    for (int64_t j = 0; j < len; ++j) cell[t0 + j] = worst[j] > tol ? win[j] : -1;
  }
}

// For each low-resolution cell i (of the 2x2 block starting there, clamped at the far borders):
// the channel that wins on all four cells for ANY colour in [0,1]^3 by more than float rounding,
// else -1. Scores are affine in the coefficients and a pixel's coefficients are a convex
// combination of its four cells', so such a pixel's label is known without computing it; the rest
// (a band along the boundaries, ~10% of a DAVIS frame) is computed. Same rule as the torch path's
// _decided_quads (refiners/guided.py). ab [4M][n], guide [3][n] -> quad [n].
void decided_quads(const float* ab, const float* guide, int64_t m, int64_t h, int64_t w, std::vector<int32_t>& quad) {
  const int64_t n = h * w;
  float amax = 0.f, bmax = 0.f;
  for (int64_t k = 0; k < m; ++k)
    for (int64_t i = 0; i < n; ++i) {
      const float* a = ab + 3 * k * n + i;
      amax = std::max(amax, std::abs(a[0]) + std::abs(a[n]) + std::abs(a[2 * n]));
      bmax = std::max(bmax, std::abs(ab[(3 * m + k) * n + i]));
    }
  const float tol = 1e-5f * (1.f + amax + bmax);
  std::vector<int32_t> cell(n);
  decide_cells(ab, guide, n, m, tol, cell.data());
  quad.resize(n);
  for (int64_t y = 0; y < h; ++y) {
    const int64_t y1 = std::min(y + 1, h - 1);
    for (int64_t x = 0; x < w; ++x) {
      const int64_t x1 = std::min(x + 1, w - 1);
      const int32_t c = cell[y * w + x];
      const bool same = c == cell[y1 * w + x] && c == cell[y * w + x1] && c == cell[y1 * w + x1];
      quad[y * w + x] = same ? c : -1;
    }
  }
}

// frame [H,W,3] uint8, guide [3,hl,wl] float, p [M,hl,wl] float (stretched, at low resolution)
// -> labels [H,W] int16 (int32 for M >= 2^15): the first channel with the highest score.
at::Tensor guided_labels_cpu(const at::Tensor& frame, const at::Tensor& guide, const at::Tensor& p, int64_t radius,
                             double eps) {
  TORCH_CHECK(frame.dim() == 3 && frame.size(2) == 3 && frame.scalar_type() == at::kByte,
              "guided_labels: frame must be [H,W,3] uint8, got ", frame.sizes(), " ", frame.scalar_type());
  TORCH_CHECK(p.dim() == 3 && p.size(0) >= 1 && p.scalar_type() == at::kFloat,
              "guided_labels: p must be [M,h,w] float32, got ", p.sizes(), " ", p.scalar_type());
  TORCH_CHECK(guide.dim() == 3 && guide.size(0) == 3 && guide.size(1) == p.size(1) && guide.size(2) == p.size(2) &&
                  guide.scalar_type() == at::kFloat,
              "guided_labels: guide must be [3,h,w] float32 matching p, got ", guide.sizes());
  TORCH_CHECK(radius >= 1, "guided_labels: radius must be >= 1, got ", radius);
  TORCH_CHECK(frame.device().is_cpu() && guide.device().is_cpu() && p.device().is_cpu(),
              "guided_labels: CPU tensors only");
  const at::Tensor fr = frame.contiguous(), gd = guide.contiguous(), pr = p.contiguous();
  const int64_t H = fr.size(0), W = fr.size(1), m = pr.size(0), hl = pr.size(1), wl = pr.size(2), k4 = 4 * m;
  const float* ab = coefficients(gd.data_ptr<float>(), pr.data_ptr<float>(), m, hl, wl, radius, static_cast<float>(eps));
  const Source sy = bilinear_source(hl, H), sx = bilinear_source(wl, W);
  std::vector<int32_t> quad;
  decided_quads(ab, gd.data_ptr<float>(), m, hl, wl, quad);
  // Low-resolution row `low` of the coefficients interpolated along x: [4M][W].
  auto along_x = [&](int64_t low, float* dst) {
    for (int64_t k = 0; k < k4; ++k) {
      const float* src = ab + k * hl * wl + low * wl;
      float* out = dst + k * W;
      for (int64_t x = 0; x < W; ++x) {
        const float l = sx.lam[x];
        out[x] = (1.f - l) * src[sx.i0[x]] + l * src[sx.i1[x]];
      }
    }
  };

  const bool narrow = m < (1 << 15);
  at::Tensor out = at::empty({H, W}, fr.options().dtype(narrow ? at::kShort : at::kInt));
  float unit[256];  // u8 -> [0, 1] exactly as the torch path's float() / 255
  for (int v = 0; v < 256; ++v) unit[v] = static_cast<float>(v) / 255.0f;
  const uint8_t* pixels = fr.data_ptr<uint8_t>();
  at::parallel_for(0, H, 8, [&](int64_t begin, int64_t end) {
    // Two x-interpolated low-resolution rows, by parity: an output row reads rows i and i + 1 (or
    // i twice at the border), and consecutive output rows mostly the same pair, so each low row is
    // interpolated about once per thread instead of kept for the whole frame ([hl][4M][W]).
    float* cache = scratch(3, 2 * k4 * W + 5 * W);  // 2 rows [4M][W], then colour [3][W], score, best
    float* io = cache + 2 * k4 * W;
    int64_t held[2] = {-1, -1};
    auto row = [&](int64_t low) -> const float* {
      float* slot = cache + (low & 1) * k4 * W;
      if (held[low & 1] != low) along_x(low, slot), held[low & 1] = low;
      return slot;
    };
    std::vector<int32_t> label(W);
    for (int64_t y = begin; y < end; ++y) {
      const int32_t* q = quad.data() + sy.i0[y] * wl;
      for (int64_t x = 0; x < W; ++x) label[x] = q[sx.i0[x]];
      const float* r0 = nullptr;
      const float* r1 = nullptr;
      for (int64_t xa = 0; xa < W;) {  // each run of undecided pixels
        if (label[xa] >= 0) {
          ++xa;
          continue;
        }
        int64_t xb = xa + 1;
        while (xb < W && label[xb] < 0) ++xb;
        if (r0 == nullptr) r0 = row(sy.i0[y]), r1 = row(sy.i1[y]);
        for (int64_t x = xa; x < xb; ++x)
          for (int64_t c = 0; c < 3; ++c) io[c * W + x] = unit[pixels[(y * W + x) * 3 + c]];
        label_row(r0, r1, sy.lam[y], io, m, W, xa, xb, label.data());
        xa = xb;
      }
      if (narrow) {
        int16_t* dst = out.data_ptr<int16_t>() + y * W;
        for (int64_t x = 0; x < W; ++x) dst[x] = static_cast<int16_t>(label[x]);
      } else {
        std::copy(label.begin(), label.end(), out.data_ptr<int32_t>() + y * W);
      }
    }
  });
  return out;
}

}  // namespace
}  // namespace cpu
}  // namespace dinotools

TORCH_LIBRARY_FRAGMENT(dinotools, m) {
  m.def("guided_labels(Tensor frame, Tensor guide, Tensor p, int radius, float eps) -> Tensor");
}

TORCH_LIBRARY_IMPL(dinotools, CPU, m) { m.impl("guided_labels", &dinotools::cpu::guided_labels_cpu); }
