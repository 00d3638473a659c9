// Fiber executor: the block's threads run one at a time on the launching OS thread and switch
// only at synchronisation points; the schedule picks which runnable thread goes next.
#include <memory>
#include <vector>

#include "executor.h"
#include "fiber.h"
#include "stack_guard.h"
#include "state.h"

namespace dt_emu {
namespace {

class FiberExecutor final : public Executor {
 public:
  void run(Block& block, void (*body)(const void*), const void* ctx) override {
    const int n = block.size();
    while (static_cast<int>(fibers_.size()) < n) fibers_.push_back(std::make_unique<Fiber>());
    args_.resize(n);
    block_ = &block;
    body_ = body;
    ctx_ = ctx;
    const size_t stack = settings().stack_bytes;
    guards_.resize(n);
    for (int t = 0; t < n; ++t) {
      args_[t] = Arg{this, t};
      fibers_[t]->start(&FiberExecutor::entry, &args_[t], stack);
      fibers_[t]->guard(&guards_[t].lo, &guards_[t].hi);
    }
    saved_ = t_current;
    sigjmp_buf back;
    StackGuard::watch(&back, &guards_);
    if (sigsetjmp(back, 0) == 0) {
      drive(block);
    } else {  // a fiber ran into its guard page; it is abandoned with the block
      StackGuard::recovered();
      block.fail("stack overflow: emulated thread " + std::to_string(running_) + " used more than " +
                 std::to_string(stack / 1024) + " KiB of stack");
    }
    StackGuard::watch(nullptr, nullptr);
    t_ctx = nullptr;
    t_current = saved_;
  }

  void wait(Block&, int t) override { fibers_[t]->suspend(); }

  [[noreturn]] void abandon(int t) override {
    fibers_[t]->suspend();  // a failed block's fibers are never resumed
    __builtin_trap();
  }

 private:
  struct Arg {
    FiberExecutor* self;
    int t;
  };

  void drive(Block& block) {
    while (!block.failed()) {
      const int t = pick(block.runnable());
      if (t < 0) {
        if (block.live() > 0) block.fail_stuck();
        break;
      }
      t_ctx = &block.ctx(t);
      t_current = saved_;
      t_current.exec = this;
      running_ = t;
      fibers_[t]->resume();
    }
  }

  static void entry(void* p) {
    const Arg* a = static_cast<const Arg*>(p);
    a->self->thread_main(a->t);
  }

  void thread_main(int t) {
    try {
      body_(ctx_);
    } catch (const std::exception& e) {
      block_->fail(std::string("exception in emulated thread ") + std::to_string(t) + ": " + e.what());
    } catch (...) {
      block_->fail("unknown exception in emulated thread " + std::to_string(t));
    }
    if (!block_->failed()) block_->finish(t);
    abandon(t);
  }

  // forward: lowest runnable thread; reverse: highest; random: uniform over the runnable ones.
  static int pick(const ThreadSet& runnable) {
    Settings& s = settings();
    switch (s.schedule) {
      case ScheduleKind::kForward: return runnable.lowest();
      case ScheduleKind::kReverse: return runnable.highest();
      case ScheduleKind::kRandom: {
        const int c = runnable.count();
        return c == 0 ? -1 : runnable.nth(static_cast<int>(s.rng() % static_cast<uint64_t>(c)));
      }
    }
    return -1;
  }

  std::vector<std::unique_ptr<Fiber>> fibers_;
  std::vector<Arg> args_;
  std::vector<GuardRange> guards_;
  Current saved_;
  int running_ = -1;
  Block* block_ = nullptr;
  void (*body_)(const void*) = nullptr;
  const void* ctx_ = nullptr;
};

}  // namespace

std::unique_ptr<Executor> make_fiber_executor() { return std::make_unique<FiberExecutor>(); }

}  // namespace dt_emu
