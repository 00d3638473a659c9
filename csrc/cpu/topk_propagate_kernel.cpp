// CPU kernel of dinotools::topk_propagate: banded dot products, per-query top-k, fused weighted sum.
//
// Layout: features stay channels-last ([h,w,D], [t,h,w,D]) so every candidate is one contiguous
// D-vector and a run of candidates in one context row is one contiguous block: the dot products
// stream memory linearly, and probabilities ([t,h,w,M]) are read as contiguous M-rows.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define DINOTOOLS_X86 1
#endif

#include "checks.h"
#include "window.h"

namespace dinotools {
namespace {

constexpr int QB = 4;             // queries per micro-tile: adjacent columns of one query row
constexpr int CB = 3;             // candidates per micro-tile: 4x3 fp32 accumulators fill 12 of 16 ymm
constexpr int64_t TILE_ROWS = 2;  // query rows per work item: 30 items at h=60 balance 2 threads
constexpr int64_t STACK_K = 64;   // top-k kept in a sorted stack array up to this k
constexpr float NEG_INF = -std::numeric_limits<float>::infinity();

using DotTile = void (*)(const float* const* q, const float* const* c, int64_t d, float* out);

// out[a*CB+b] = <q[a], c[b]>. Portable: eight independent partial sums let the compiler vectorise.
void dot_tile_generic(const float* const* q, const float* const* c, int64_t d, float* out) {
  for (int a = 0; a < QB; ++a) {
    for (int b = 0; b < CB; ++b) {
      float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int64_t i = 0;
      for (; i + 8 <= d; i += 8) {
        for (int l = 0; l < 8; ++l) lane[l] += q[a][i + l] * c[b][i + l];
      }
      float s = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
      for (; i < d; ++i) s += q[a][i] * c[b][i];
      out[a * CB + b] = s;
    }
  }
}

#ifdef DINOTOOLS_X86
__attribute__((target("avx2,fma"))) inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Same contract, AVX2+FMA: per 8 floats of D, 7 loads feed 12 FMAs. It measured load-bound (a
// skewed 4x3 tile that wastes no products but needs 10 loads ran 1.4x slower), hence 4x3.
__attribute__((target("avx2,fma"))) void dot_tile_avx2(const float* const* q, const float* const* c, int64_t d,
                                                       float* out) {
  __m256 acc[QB][CB];
#pragma GCC unroll 4
  for (int a = 0; a < QB; ++a)
#pragma GCC unroll 3
    for (int b = 0; b < CB; ++b) acc[a][b] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= d; i += 8) {
    const __m256 c0 = _mm256_loadu_ps(c[0] + i);
    const __m256 c1 = _mm256_loadu_ps(c[1] + i);
    const __m256 c2 = _mm256_loadu_ps(c[2] + i);
#pragma GCC unroll 4
    for (int a = 0; a < QB; ++a) {
      const __m256 qa = _mm256_loadu_ps(q[a] + i);
      acc[a][0] = _mm256_fmadd_ps(qa, c0, acc[a][0]);
      acc[a][1] = _mm256_fmadd_ps(qa, c1, acc[a][1]);
      acc[a][2] = _mm256_fmadd_ps(qa, c2, acc[a][2]);
    }
  }
#pragma GCC unroll 4
  for (int a = 0; a < QB; ++a) {
#pragma GCC unroll 3
    for (int b = 0; b < CB; ++b) {
      float s = hsum(acc[a][b]);
      for (int64_t r = i; r < d; ++r) s += q[a][r] * c[b][r];
      out[a * CB + b] = s;
    }
  }
}
#endif

DotTile pick_dot_tile() {
#ifdef DINOTOOLS_X86
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return dot_tile_avx2;
#endif
  return dot_tile_generic;
}

struct Problem {
  const float* cur;    // [h,w,D]
  const float* ctx;    // [t,h,w,D]
  const float* probs;  // [t,h,w,M]
  float* out;          // [h,w,M]
  int64_t t, h, w, d, m, k;
  float temperature;
  const Window* win;
  std::vector<int> slot_dy, slot_dx;  // [K] offset of each window slot
};

// scores[(qi*t + tau)*K + slot] for the queries of rows [i0, i1); untouched slots stay -inf.
// qpad holds those rows' query vectors with row stride ldq = D + 16: with D a multiple of 1024
// the 4 queries and 3 candidates of a tile would otherwise all fall in the same L1 sets.
void score_rows(const Problem& p, DotTile dot, int64_t i0, int64_t i1, const float* qpad, int64_t ldq,
                float* scores) {
  const Window& win = *p.win;
  const int64_t n = p.t * win.count;
  float res[QB * CB];
  const float* qp[QB];
  const float* cp[CB];
  for (int64_t tau = 0; tau < p.t; ++tau) {
    const float* frame = p.ctx + tau * p.h * p.w * p.d;
    // Context row outermost so it stays in cache while every query row that needs it runs.
    for (int64_t u = std::max<int64_t>(0, i0 - win.ry); u < std::min(p.h, i1 + win.ry); ++u) {
      const float* crow = frame + u * p.w * p.d;
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t dy = u - i;
        if (dy < -win.ry || dy > win.ry) continue;
        const int c = win.half[dy + win.ry];
        if (c < 0) continue;
        const float* qrow = qpad + (i - i0) * p.w * ldq;
        // srow[j*n + dx] is query (i, j)'s score for offset (dy, dx) of frame tau.
        float* srow = scores + (i - i0) * p.w * n + tau * win.count + win.start[dy + win.ry] + c;
        for (int64_t j0 = 0; j0 < p.w; j0 += QB) {
          const int64_t nq = std::min<int64_t>(QB, p.w - j0);
          for (int a = 0; a < QB; ++a) qp[a] = qrow + (j0 + std::min<int64_t>(a, nq - 1)) * ldq;
          // Candidate columns of the band: the union of the nq queries' intervals, 3 at a time;
          // products outside a query's own interval (the band's corners) are computed and dropped.
          const int64_t vlo = std::max<int64_t>(0, j0 - c), vhi = std::min<int64_t>(p.w - 1, j0 + nq - 1 + c);
          for (int64_t vb = vlo; vb <= vhi; vb += CB) {
            const int64_t nc = std::min<int64_t>(CB, vhi - vb + 1);
            for (int b = 0; b < CB; ++b) cp[b] = crow + (vb + std::min<int64_t>(b, nc - 1)) * p.d;
            dot(qp, cp, p.d, res);
            for (int64_t a = 0; a < nq; ++a) {
              for (int64_t b = 0; b < nc; ++b) {
                const int64_t dx = vb + b - (j0 + a);
                if (dx >= -c && dx <= c) srow[(j0 + a) * n + dx] = res[a * CB + b];
              }
            }
          }
        }
      }
    }
  }
}

// The k-th largest of s[0..n) counted with multiplicity (-inf when fewer than k are finite), and the max.
void kth_and_max(const float* s, int64_t n, int64_t k, std::vector<float>& spill, float* kth, float* mx) {
  if (k <= STACK_K) {
    float top[STACK_K];  // sorted descending
    std::fill(top, top + k, NEG_INF);
    for (int64_t idx = 0; idx < n; ++idx) {
      const float v = s[idx];
      if (!(v > top[k - 1])) continue;  // equal values leave the multiset's k-th value unchanged
      int64_t pos = k - 1;
      while (pos > 0 && top[pos - 1] < v) {
        top[pos] = top[pos - 1];
        --pos;
      }
      top[pos] = v;
    }
    *kth = top[k - 1];
    *mx = top[0];
    return;
  }
  spill.clear();
  for (int64_t idx = 0; idx < n; ++idx) {
    if (s[idx] > NEG_INF) spill.push_back(s[idx]);
  }
  *mx = spill.empty() ? NEG_INF : *std::max_element(spill.begin(), spill.end());
  if (static_cast<int64_t>(spill.size()) < k) {
    *kth = NEG_INF;
    return;
  }
  std::nth_element(spill.begin(), spill.begin() + (k - 1), spill.end(), std::greater<float>());
  *kth = spill[k - 1];
}

// out[i,j,:] = renormalised sum over survivors (score >= k-th) of softmax weight x probability.
void mix_query(const Problem& p, const float* s, int64_t i, int64_t j, std::vector<float>& spill) {
  const int64_t K = p.win->count, n = p.t * K;
  float kth, mx;
  kth_and_max(s, n, p.k, spill, &kth, &mx);
  float* o = p.out + (i * p.w + j) * p.m;
  std::fill(o, o + p.m, 0.f);
  const float mx_t = mx / p.temperature;  // softmax(s / T): divide first, as the notebook does
  float sum_w = 0.f;
  for (int64_t idx = 0; idx < n; ++idx) {
    const float v = s[idx];
    if (!(v >= kth) || v == NEG_INF) continue;  // -inf: outside the frame, weight 0 anyway
    const float wt = std::exp(v / p.temperature - mx_t);
    sum_w += wt;
    const int64_t tau = idx / K, slot = idx % K;
    const int64_t u = i + p.slot_dy[slot], v_col = j + p.slot_dx[slot];
    const float* pr = p.probs + ((tau * p.h + u) * p.w + v_col) * p.m;
    for (int64_t c = 0; c < p.m; ++c) o[c] += wt * pr[c];
  }
  float total = 0.f;
  for (int64_t c = 0; c < p.m; ++c) {
    o[c] /= sum_w;
    total += o[c];
  }
  for (int64_t c = 0; c < p.m; ++c) o[c] /= total;  // the notebook's final renormalisation
}

at::Tensor topk_propagate_cpu(const at::Tensor& current, const at::Tensor& context, const at::Tensor& context_probs,
                              double size, std::string shape, int64_t topk, double temperature) {
  const bool circle = check_topk_propagate_args(current, context, context_probs, size, shape, topk, temperature);
  TORCH_INTERNAL_ASSERT(current.device().is_cpu());
  TORCH_CHECK(current.scalar_type() == at::kFloat, "topk_propagate (CPU): current and context must be float32, got ",
              current.scalar_type());
  const at::Tensor cur = current.contiguous(), ctx = context.contiguous(), probs = context_probs.contiguous();
  const int64_t t = ctx.size(0), h = ctx.size(1), w = ctx.size(2), d = ctx.size(3), m = probs.size(3);
  at::Tensor out = at::empty({h, w, m}, probs.options());
  if (h * w == 0) return out;
  const Window win = make_window(h, w, size, circle);

  Problem p{cur.data_ptr<float>(), ctx.data_ptr<float>(), probs.data_ptr<float>(), out.data_ptr<float>(),
            t, h, w, d, m, topk, static_cast<float>(temperature), &win, {}, {}};
  for (int dy = -win.ry; dy <= win.ry; ++dy) {
    const int c = win.half[dy + win.ry];
    for (int dx = -c; dx <= c; ++dx) {
      p.slot_dy.push_back(dy);
      p.slot_dx.push_back(dx);
    }
  }
  const DotTile dot = pick_dot_tile();
  const int64_t n = t * win.count, tiles = (h + TILE_ROWS - 1) / TILE_ROWS;
  at::parallel_for(0, tiles, 1, [&](int64_t first, int64_t last) {
    // One scratch per chunk of work items, never per query: [TILE_ROWS*w, t, K] scores.
    std::vector<float> scores(static_cast<size_t>(TILE_ROWS * w * n));
    std::vector<float> spill;
    const int64_t ldq = d + 16;
    std::vector<float> qpad(static_cast<size_t>(TILE_ROWS * w * ldq));
    for (int64_t tile = first; tile < last; ++tile) {
      const int64_t i0 = tile * TILE_ROWS, i1 = std::min(h, i0 + TILE_ROWS);
      std::fill(scores.begin(), scores.begin() + (i1 - i0) * w * n, NEG_INF);
      for (int64_t r = 0; r < (i1 - i0) * w; ++r) {
        std::copy(p.cur + (i0 * w + r) * d, p.cur + (i0 * w + r + 1) * d, qpad.data() + r * ldq);
      }
      score_rows(p, dot, i0, i1, qpad.data(), ldq, scores.data());
      for (int64_t i = i0; i < i1; ++i) {
        for (int64_t j = 0; j < w; ++j) mix_query(p, scores.data() + ((i - i0) * w + j) * n, i, j, spill);
      }
    }
  });
  return out;
}

}  // namespace
}  // namespace dinotools

TORCH_LIBRARY_IMPL(dinotools, CPU, m) { m.impl("topk_propagate", &dinotools::topk_propagate_cpu); }
