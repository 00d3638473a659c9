// One thread block's synchronisation state: who waits at which collective, completion of block
// barriers and warp collectives, and the checks that turn divergence or deadlock into errors.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../launch.h"
#include "../runtime.h"
#include "thread_set.h"

namespace dt_emu {

class Block {
 public:
  Block(const LaunchConfig& cfg, uint3 block_idx);
  int size() const { return n_; }
  int live() const { return live_; }
  ThreadCtx& ctx(int t) { return ctx_[t]; }
  const ThreadSet& runnable() const { return runnable_; }
  long long result(int t) const { return slots_[t].result; }

  // Thread t reached collective r: record it, complete the collective if everyone it names is
  // there, or fail() if it can never complete as written.
  void arrive(int t, const Request& r);
  // Thread t returned from the kernel.
  void finish(int t);

  bool failed() const { return !error_.empty() || launch_error_ != cudaSuccess; }
  const std::string& error() const { return error_; }
  cudaError_t launch_error() const { return launch_error_; }
  void fail(const std::string& what);     // an emulation error; the first one is kept
  void fail_launch(cudaError_t err) { if (!failed()) launch_error_ = err; }
  void fail_stuck();                      // live threads, none runnable
  std::string where() const;              // "block (x,y,z) of <kernel>"

 private:
  enum class State : uint8_t { kRunnable, kWaiting, kExited };
  struct Seen {  // how often a thread completed a warp collective at one site, and its last mask
    Site site;
    Op op;
    unsigned count, mask;
  };
  struct Slot {
    State state = State::kRunnable;
    Request req{};
    long long result = 0;
    std::vector<Seen> seen;
  };
  Seen* seen(int t, const Request& r);

  unsigned lanes_of(int warp) const;  // bit per existing lane of the warp
  void complete_barrier();
  void check_warp(int warp, int leader);
  void complete_warp(int warp, unsigned members, const Request& r);
  void shuffle(int warp, int lane, unsigned members, const Request& r);
  std::string describe(const std::vector<int>& threads, bool lanes) const;
  std::vector<int> threads_of(int warp, unsigned lanes) const;
  std::vector<int> all_threads() const;
  std::string state_of(int t) const;

  LaunchConfig cfg_;
  uint3 idx_;
  int n_;
  int live_;
  int exited_ = 0;
  int at_barrier_ = 0;
  std::vector<Slot> slots_;
  std::vector<ThreadCtx> ctx_;
  ThreadSet runnable_;
  std::string error_;
  cudaError_t launch_error_ = cudaSuccess;
};

std::string site_str(const Site& s);  // "cuda/kernel.cu:72", the last two path components

}  // namespace dt_emu
