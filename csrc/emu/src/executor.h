// How a block's emulated threads execute: as fibers on the launching OS thread (default), or as
// one OS thread each (so ThreadSanitizer / AddressSanitizer see them). Both follow Block's rules.
#pragma once

#include <memory>

#include "block.h"
#include "smem.h"
#include "state.h"

namespace dt_emu {

class Executor {
 public:
  virtual ~Executor() = default;
  // Runs every thread of `block` until all have exited or the block failed.
  virtual void run(Block& block, void (*body)(const void*), const void* ctx) = 0;
  // On an emulated thread, under lock(), after Block::arrive: returns when the thread may go on
  // (its collective completed) or the block failed.
  virtual void wait(Block& block, int t) = 0;
  // On an emulated thread of a failed block, after unlock(): never returns into the kernel.
  [[noreturn]] virtual void abandon(int t) = 0;
  virtual void lock() {}
  virtual void unlock() {}
};

std::unique_ptr<Executor> make_fiber_executor();
std::unique_ptr<Executor> make_thread_executor();

// What the emulated thread running on this OS thread belongs to (set by the executors).
struct Current {
  Executor* exec = nullptr;
  Block* block = nullptr;
  Arena* arena = nullptr;
  KernelInfo* kernel = nullptr;
};
extern thread_local Current t_current;

}  // namespace dt_emu
