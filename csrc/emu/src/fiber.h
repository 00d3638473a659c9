// A fiber: one emulated CUDA thread's own stack (guard page below it) and saved context.
#pragma once

#include <cstddef>
#include <cstdint>

namespace dt_emu {

class Fiber {
 public:
  Fiber() = default;
  Fiber(const Fiber&) = delete;
  Fiber& operator=(const Fiber&) = delete;
  ~Fiber();

  // Prepares the fiber to run entry(arg) from the top of its stack on the next resume().
  void start(void (*entry)(void*), void* arg, size_t stack_bytes);
  // Scheduler side: runs the fiber until it calls suspend() (or finish(), which never returns here).
  void resume();
  // Fiber side: returns control to the scheduler that resumed it.
  void suspend();
  // [lo, hi) of the guard page below the stack.
  void guard(uintptr_t* lo, uintptr_t* hi) const;

 private:
  void* stack_ = nullptr;  // mapping: guard page, then stack_bytes
  size_t mapped_ = 0;
  void* sp_ = nullptr;     // saved stack pointer of the suspended fiber
  void* sched_sp_ = nullptr;
  void* impl_ = nullptr;   // ucontext fallback state (non-x86-64)
  void (*entry_)(void*) = nullptr;
  void* arg_ = nullptr;
  static void trampoline(unsigned hi, unsigned lo);  // ucontext fallback entry
};

}  // namespace dt_emu
