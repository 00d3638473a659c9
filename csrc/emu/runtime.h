// What emulated kernel code calls: thread coordinates, synchronisation points and shared memory.
// The runtime behind these declarations is csrc/emu/src/*.cpp (one instance per extension).
#pragma once

#include <cstddef>
#include <cstdint>

#include "types.h"

namespace dt_emu {

// A synchronisation call site, recorded so that a divergent barrier or a deadlock names file:line.
struct Site {
  const char* file;
  int line;
  const char* what;  // "__syncthreads", "__shfl_xor_sync", ...
};

// Coordinates of the emulated CUDA thread running on this OS thread (switched with the fiber).
struct ThreadCtx {
  uint3 thread_idx;
  uint3 block_idx;
  dim3 block_dim;
  dim3 grid_dim;
  int linear;  // threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)
};
extern thread_local ThreadCtx* t_ctx;

enum class Op : uint8_t {
  kSyncThreads, kSyncThreadsCount, kSyncThreadsAnd, kSyncThreadsOr,  // block barriers
  kSyncWarp, kShflIdx, kShflUp, kShflDown, kShflXor, kBallot, kAny, kAll, kGather,  // warp collectives
};
inline bool is_block_op(Op op) { return op <= Op::kSyncThreadsOr; }

// One thread's part of a collective. `in` and `out` point into the waiting thread's own frame,
// which stays alive while it waits, so values of any trivially copyable type travel without copies.
struct Request {
  Op op;
  Site site;
  unsigned mask;     // warp collectives: lanes taking part
  const void* in;    // shuffles/gather: this lane's value
  void* out;         // shuffles: one value; gather: 32 values
  size_t size;       // bytes of one value
  int arg;           // shuffles: source lane, delta or lane mask; votes/barrier variants: predicate
  int width;         // shuffles: segment width (power of two <= 32)
};

// Blocks until every thread the collective names has arrived at the same site, then returns the
// vote / barrier-count result (0 for data collectives, whose results are written to `out`).
// A divergent site, a disagreeing mask or a deadlock aborts the launch with an error naming file:line.
long long collective(const Request& r);

// Shared memory: every declaration site owns one SharedSite (a static object in the kernel).
struct SharedSite {
  const char* file;
  int line;
  const char* decl;  // the declaration as written, for messages
  size_t size;       // bytes (static sites; 0 for the dynamic one)
  size_t align;
  uint64_t epoch;    // launch that placed it (runtime-private)
  size_t offset;     // its offset in that launch's shared-memory arena (runtime-private)
};
void* shared_static(SharedSite* site);
void* shared_dynamic(SharedSite* site);

}  // namespace dt_emu
