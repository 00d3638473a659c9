// One work item of the CPU kernel: a few query rows scored against their windows, top-k, mixed.
//
// Plain C++ (no torch) so the blocking can be exercised by a standalone harness; the operator glue,
// argument checks and threads are in topk_propagate_kernel.cpp.
// Blocking (notebook shape: D=1024, so one vector is 4 KB, one context row of one frame 428 KB):
// - a work item is ITEM_ROWS query rows; its queries are copied once into a 64-byte-aligned scratch
//   whose row stride is padded so a group's 4 query vectors fall in different L1 sets;
// - for each context frame and row u, groups of 2x2 queries walk along u: the candidates a group
//   needs form a band of ~2r+2 vectors (~104 KB) that slides two columns per group, so it stays in
//   L2 (reused by ~13 consecutive groups) while each candidate loaded into a register serves the
//   group's 4 queries (4x3 tiles: 7 loads per 12 FMAs on AVX2);
// - a group's scores against one row (at most 4 x w floats) go straight to the queries' running
//   top-k (no score buffer, no extra passes), and the item ends with the softmax-weighted sum.
// Threads (topk_propagate_kernel.cpp) take items in row order, so concurrent items share most of
// their context rows in L3.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <new>
#include <vector>

#include "cpu/dot_tile.h"
#include "cpu/running_topk.h"
#include "window.h"

namespace dinotools {
namespace cpu {

constexpr int64_t ITEM_ROWS = 4;  // query rows per work item
constexpr int64_t GROUPS = ITEM_ROWS / 2;  // 2x2 query groups per column pair; they share candidates

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};

// 64-byte-aligned float scratch (a cache line; the widest vector load).
inline std::unique_ptr<float[], FreeDeleter> aligned_floats(int64_t n) {
  const size_t bytes = (static_cast<size_t>(n) * sizeof(float) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, std::max<size_t>(bytes, 64));
  if (p == nullptr) throw std::bad_alloc();
  return std::unique_ptr<float[], FreeDeleter>(static_cast<float*>(p));
}

struct Problem {
  const float* cur;    // [h,w,D]
  const float* ctx;    // [t,h,w,D]
  const float* probs;  // [t,h,w,M]
  float* out;          // [h,w,M]
  int64_t t, h, w, d, m, k;
  float temperature;
  const Window* win;
  const TileSet* tiles;
};

// The 2x2 queries (rows i..i+1, columns j..j+1) of one group against one context row: the ones
// whose window reaches that row, their column intervals, and the union band of candidates.
struct Group {
  int nm = 0;                 // queries taking part (0: the group skips this row)
  const float* q[MQ_MAX];     // their vectors in the query scratch
  int64_t slot[MQ_MAX];       // their index in the item (top-k slot)
  int64_t lo[MQ_MAX], hi[MQ_MAX];
  int64_t vlo = 0, vhi = -1;  // union of the intervals
};

class Worker {
 public:
  explicit Worker(const Problem& p) : p_(p), ldq_((p.d + 15) / 16 * 16 + 16) {
    qbuf_ = aligned_floats(ITEM_ROWS * p.w * ldq_);
    res_.resize(static_cast<size_t>(MQ_MAX * p.w));
  }

  void run_item(int64_t item) {
    const Problem& p = p_;
    i0_ = item * ITEM_ROWS;
    i1_ = std::min(p.h, i0_ + ITEM_ROWS);
    const int64_t nq = (i1_ - i0_) * p.w;
    for (int64_t q = 0; q < nq; ++q) {
      std::copy(p.cur + (i0_ * p.w + q) * p.d, p.cur + (i0_ * p.w + q + 1) * p.d, qbuf_.get() + q * ldq_);
    }
    topk_.reset(nq, p.k, p.t * p.win->count);
    const int ry = p.win->ry;
    for (int64_t tau = 0; tau < p.t; ++tau) {
      for (int64_t u = std::max<int64_t>(0, i0_ - ry); u < std::min(p.h, i1_ + ry); ++u) {
        for (int64_t j = 0; j < p.w; j += 2) score_columns(tau, u, j);
      }
    }
    for (int64_t q = 0; q < nq; ++q) mix(q);
  }

 private:
  // Which of the queries (i..i+1, j..j+1) see context row u, and over which columns.
  void make_group(Group& g, int64_t u, int64_t i, int64_t j) const {
    const Problem& p = p_;
    const Window& win = *p.win;
    g.nm = 0;
    g.vlo = p.w;
    g.vhi = -1;
    for (int a = 0; a < MQ_MAX; ++a) {
      const int64_t qi = i + a / 2, qj = j + a % 2, dy = u - qi;
      const int c = (qi < i1_ && qj < p.w && dy >= -win.ry && dy <= win.ry) ? win.half[dy + win.ry] : -1;
      if (c < 0) continue;
      g.lo[g.nm] = std::max<int64_t>(0, qj - c);
      g.hi[g.nm] = std::min<int64_t>(p.w - 1, qj + c);
      g.vlo = std::min(g.vlo, g.lo[g.nm]);
      g.vhi = std::max(g.vhi, g.hi[g.nm]);
      g.slot[g.nm] = (qi - i0_) * p.w + qj;
      g.q[g.nm] = qbuf_.get() + g.slot[g.nm] * ldq_;
      ++g.nm;
    }
  }

  // Scores of every group of column pair (j, j+1) against context row u of frame tau, pushed to
  // top-k. Each group runs all its queries over the union of their intervals in one kernel call
  // (the products outside a query's own interval, ~9% of those computed at the notebook shape, are
  // dropped: cheaper than 1-3-query tiles, which are load-bound). Most scores lose to the k-th so
  // far, so a query's run is first tested as a whole against its threshold.
  void score_columns(int64_t tau, int64_t u, int64_t j) {
    const Problem& p = p_;
    const int64_t id0 = (tau * p.h + u) * p.w;
    float* res = res_.data();
    for (int64_t gi = 0; gi < GROUPS; ++gi) {
      Group g;
      make_group(g, u, i0_ + 2 * gi, j);
      if (g.nm == 0) continue;
      const int64_t n = g.vhi - g.vlo + 1;
      p.tiles->fn[g.nm](g.q, p.ctx + (id0 + g.vlo) * p.d, n, p.d, res);
      for (int a = 0; a < g.nm; ++a) {
        const float* s = res + a * n - g.vlo;  // s[v] for v in [lo, hi]
        const float thr = topk_.threshold(g.slot[a]);
        float best = -std::numeric_limits<float>::infinity();
        for (int64_t v = g.lo[a]; v <= g.hi[a]; ++v) best = std::max(best, s[v]);
        if (!(best >= thr)) continue;  // (NaN scores never enter the top-k: push() drops them)
        for (int64_t v = g.lo[a]; v <= g.hi[a]; ++v) topk_.push(g.slot[a], s[v], id0 + v);
      }
    }
  }

  // out[i,j,:] = renormalised sum over survivors of softmax(s / T) weight x probability.
  void mix(int64_t q) {
    const Problem& p = p_;
    const int64_t n = topk_.size(q);
    const float* val = topk_.values(q);
    const int64_t* ids = topk_.ids(q);
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t e = 0; e < n; ++e) mx = std::max(mx, val[e]);
    float* o = p.out + (i0_ * p.w + q) * p.m;
    std::fill(o, o + p.m, 0.f);
    const float mx_t = mx / p.temperature;  // softmax(s / T): divide first, as the notebook does
    float sum_w = 0.f;
    auto add = [&](float v, int64_t id) {
      const float wt = std::exp(v / p.temperature - mx_t);
      sum_w += wt;
      const float* pr = p.probs + id * p.m;
      for (int64_t c = 0; c < p.m; ++c) o[c] += wt * pr[c];
    };
    for (int64_t e = 0; e < n; ++e) add(val[e], ids[e]);
    for (int64_t id : topk_.ties(q)) add(val[0], id);  // ties all equal the k-th value, the heap root
    float total = 0.f;
    for (int64_t c = 0; c < p.m; ++c) {
      o[c] /= sum_w;
      total += o[c];
    }
    for (int64_t c = 0; c < p.m; ++c) o[c] /= total;  // the notebook's final renormalisation
  }

  const Problem& p_;
  const int64_t ldq_;  // padded query stride: 64-byte rows, +64 bytes so rows spread over L1 sets
  std::unique_ptr<float[], FreeDeleter> qbuf_;  // [ITEM_ROWS*w, ldq]
  std::vector<float> res_;                      // [nm, band] scores of one group's kernel call
  RunningTopK topk_;
  int64_t i0_ = 0, i1_ = 0;
};

}  // namespace cpu
}  // namespace dinotools
