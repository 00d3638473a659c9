// CUDA synchronisation intrinsics for emulated builds. Each name is an object-like macro that builds
// a small functor carrying __FILE__/__LINE__ of the call, so `__shfl_xor_sync(m, v, 1)` records its
// site without variadic-macro tricks; the functor's call operator has CUDA's signature.
#pragma once

#include <type_traits>

#include "runtime.h"

namespace dt_emu {

struct BarrierAt {
  const char* file;
  int line;
  void operator()() const { collective(Request{Op::kSyncThreads, {file, line, "__syncthreads"}, 0, nullptr, nullptr, 0, 0, 32}); }
};

struct BarrierVoteAt {
  const char* file;
  int line;
  Op op;
  const char* what;
  int operator()(int pred) const {
    return static_cast<int>(collective(Request{op, {file, line, what}, 0, nullptr, nullptr, 0, pred != 0, 32}));
  }
};

struct SyncWarpAt {
  const char* file;
  int line;
  void operator()(unsigned mask = 0xffffffffu) const {
    collective(Request{Op::kSyncWarp, {file, line, "__syncwarp"}, mask, nullptr, nullptr, 0, 0, 32});
  }
};

struct ShuffleAt {
  const char* file;
  int line;
  Op op;
  const char* what;
  template <class T>
  T operator()(unsigned mask, T var, int lane_arg, int width = warpSize) const {
    static_assert(std::is_trivially_copyable_v<T>, "shuffled values must be trivially copyable");
    T result;
    collective(Request{op, {file, line, what}, mask, &var, &result, sizeof(T), lane_arg, width});
    return result;
  }
};

struct VoteAt {
  const char* file;
  int line;
  Op op;
  const char* what;
  // __ballot_sync: bits of the lanes whose predicate holds; __any_sync/__all_sync: 0 or 1.
  template <class P>
  unsigned operator()(unsigned mask, P pred) const {
    return static_cast<unsigned>(collective(Request{op, {file, line, what}, mask, nullptr, nullptr, 0, pred != 0, 32}));
  }
};

template <class T>
struct same_type { using type = T; };

struct GatherAt {
  const char* file;
  int line;
  // Every lane of the full warp passes its value; each receives all 32, indexed by lane.
  template <class T>
  void operator()(const T& mine, typename same_type<T>::type* all) const {
    static_assert(std::is_trivially_copyable_v<T>, "gathered values must be trivially copyable");
    collective(Request{Op::kGather, {file, line, "dt_emu_warp_gather"}, 0xffffffffu, &mine, all, sizeof(T), 0, 32});
  }
};

inline int lane() { return t_ctx->linear % warpSize; }

}  // namespace dt_emu

#define __syncthreads ::dt_emu::BarrierAt{__FILE__, __LINE__}
#define __syncthreads_count \
  ::dt_emu::BarrierVoteAt{__FILE__, __LINE__, ::dt_emu::Op::kSyncThreadsCount, "__syncthreads_count"}
#define __syncthreads_and \
  ::dt_emu::BarrierVoteAt{__FILE__, __LINE__, ::dt_emu::Op::kSyncThreadsAnd, "__syncthreads_and"}
#define __syncthreads_or \
  ::dt_emu::BarrierVoteAt{__FILE__, __LINE__, ::dt_emu::Op::kSyncThreadsOr, "__syncthreads_or"}
#define __syncwarp ::dt_emu::SyncWarpAt{__FILE__, __LINE__}
#define __shfl_sync ::dt_emu::ShuffleAt{__FILE__, __LINE__, ::dt_emu::Op::kShflIdx, "__shfl_sync"}
#define __shfl_up_sync ::dt_emu::ShuffleAt{__FILE__, __LINE__, ::dt_emu::Op::kShflUp, "__shfl_up_sync"}
#define __shfl_down_sync ::dt_emu::ShuffleAt{__FILE__, __LINE__, ::dt_emu::Op::kShflDown, "__shfl_down_sync"}
#define __shfl_xor_sync ::dt_emu::ShuffleAt{__FILE__, __LINE__, ::dt_emu::Op::kShflXor, "__shfl_xor_sync"}
#define __ballot_sync ::dt_emu::VoteAt{__FILE__, __LINE__, ::dt_emu::Op::kBallot, "__ballot_sync"}
#define __any_sync ::dt_emu::VoteAt{__FILE__, __LINE__, ::dt_emu::Op::kAny, "__any_sync"}
#define __all_sync ::dt_emu::VoteAt{__FILE__, __LINE__, ::dt_emu::Op::kAll, "__all_sync"}
// The warp-collective escape hatch of csrc/cuda/dt_cuda.h (mma.sync, ldmatrix... emulated in C++).
#define dt_emu_warp_gather ::dt_emu::GatherAt{__FILE__, __LINE__}
inline int dt_emu_lane() { return ::dt_emu::lane(); }

#define threadIdx (::dt_emu::t_ctx->thread_idx)
#define blockIdx (::dt_emu::t_ctx->block_idx)
#define blockDim (::dt_emu::t_ctx->block_dim)
#define gridDim (::dt_emu::t_ctx->grid_dim)
