// Running joint top-k per query with the notebook's tie rule: keep every candidate >= the k-th value.
//
// Scores arrive one by one as the tiles finish, so no score buffer and no extra passes: a min-heap
// of the best min(k, seen) scores (root = current k-th once full) plus the candidates tied with the
// root that did not fit. Survivors at the end are exactly {s >= k-th of the multiset} (all of them
// when fewer than k were seen: the reference's k-th is then -inf), whatever the arrival order.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

namespace dinotools {
namespace cpu {

class RunningTopK {
 public:
  // nq queries, top-k with k >= 1; cap = most candidates one query can see (bounds the storage).
  void reset(int64_t nq, int64_t k, int64_t cap) {
    k_ = k;
    cap_ = std::min(k, std::max<int64_t>(cap, 1));
    val_.resize(static_cast<size_t>(nq * cap_));
    id_.resize(static_cast<size_t>(nq * cap_));
    size_.assign(static_cast<size_t>(nq), 0);
    thr_.assign(static_cast<size_t>(nq), -std::numeric_limits<float>::infinity());
    if (static_cast<int64_t>(ties_.size()) < nq) ties_.resize(static_cast<size_t>(nq));
    for (int64_t q = 0; q < nq; ++q) ties_[q].clear();
  }

  // Hot path: most candidates lose to the k-th so far. NaN fails the test and is ignored.
  inline void push(int64_t q, float v, int64_t id) {
    if (!(v >= thr_[q])) return;
    insert(q, v, id);
  }

  // Scores below this cannot enter query q's top-k (-inf until k scores were seen).
  float threshold(int64_t q) const { return thr_[q]; }
  int64_t size(int64_t q) const { return size_[q]; }
  const float* values(int64_t q) const { return val_.data() + q * cap_; }
  const int64_t* ids(int64_t q) const { return id_.data() + q * cap_; }
  // Candidates equal to the k-th value beyond the k in the heap (all with value values(q)[0]).
  const std::vector<int64_t>& ties(int64_t q) const { return ties_[q]; }

 private:
  void insert(int64_t q, float v, int64_t id) {
    float* val = val_.data() + q * cap_;
    int64_t* ids = id_.data() + q * cap_;
    int64_t& n = size_[q];
    if (n < k_) {  // not full: k-th is -inf, everything seen survives so far
      int64_t pos = n++;
      while (pos > 0) {  // sift up
        const int64_t parent = (pos - 1) / 2;
        if (!(val[parent] > v)) break;
        val[pos] = val[parent];
        ids[pos] = ids[parent];
        pos = parent;
      }
      val[pos] = v;
      ids[pos] = id;
      if (n == k_) thr_[q] = val[0];
      return;
    }
    if (v == val[0]) {  // ties with the k-th value: survives as long as the k-th does not rise
      ties_[q].push_back(id);
      return;
    }
    // v > k-th: it replaces the root, the old k-th either still ties with the new one or drops out.
    const float old_val = val[0];
    const int64_t old_id = ids[0];
    int64_t pos = 0;
    for (;;) {  // sift down
      int64_t child = 2 * pos + 1;
      if (child >= n) break;
      if (child + 1 < n && val[child + 1] < val[child]) ++child;
      if (!(val[child] < v)) break;
      val[pos] = val[child];
      ids[pos] = ids[child];
      pos = child;
    }
    val[pos] = v;
    ids[pos] = id;
    if (val[0] == old_val) {
      ties_[q].push_back(old_id);
    } else {
      ties_[q].clear();
    }
    thr_[q] = val[0];
  }

  int64_t k_ = 1, cap_ = 1;
  std::vector<float> val_;    // [nq, cap] min-heap per query
  std::vector<int64_t> id_;   // [nq, cap]
  std::vector<int64_t> size_; // [nq]
  std::vector<float> thr_;    // [nq] k-th so far (-inf until k seen)
  std::vector<std::vector<int64_t>> ties_;
};

}  // namespace cpu
}  // namespace dinotools
