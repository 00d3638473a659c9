// Thread executor: one OS thread per emulated thread, all running at once, so ThreadSanitizer
// sees unsynchronised shared/global accesses and AddressSanitizer sees overflows. Block's rules
// are applied under one mutex; the schedule still orders the blocks.
#include <condition_variable>
#include <latch>
#include <mutex>
#include <thread>
#include <vector>

#include "executor.h"
#include "state.h"

namespace dt_emu {
namespace {

struct Abandoned {};  // unwinds an emulated thread of a failed block back to its OS thread's entry

class ThreadExecutor final : public Executor {
 public:
  void run(Block& block, void (*body)(const void*), const void* ctx) override {
    Current cur = t_current;
    cur.exec = this;
    std::vector<std::thread> threads;
    threads.reserve(block.size());
    // All threads start the kernel together (not in creation order, one after the other), so their
    // unsynchronised accesses overlap and ThreadSanitizer can see them.
    std::latch start(block.size());
    for (int t = 0; t < block.size(); ++t) {
      threads.emplace_back([this, &block, &start, body, ctx, cur, t] {
        t_ctx = &block.ctx(t);
        t_current = cur;
        start.arrive_and_wait();
        thread_main(block, body, ctx, t);
      });
    }
    for (std::thread& th : threads) th.join();
  }

  void lock() override { mu_.lock(); }
  void unlock() override { mu_.unlock(); }

  void wait(Block& block, int t) override {
    check_stuck(block);
    cv_.notify_all();  // this arrival may have completed others' collective
    std::unique_lock<std::mutex> lk(mu_, std::adopt_lock);
    cv_.wait(lk, [&] { return block.runnable().test(t) || block.failed(); });
    lk.release();  // the caller still holds mu_ and unlocks it
  }

  [[noreturn]] void abandon(int) override {
    cv_.notify_all();  // threads waiting on this block must see that it failed
    throw Abandoned{};
  }

 private:
  void thread_main(Block& block, void (*body)(const void*), const void* ctx, int t) {
    try {
      body(ctx);
    } catch (const Abandoned&) {
      return;
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lk(mu_);
      block.fail(std::string("exception in emulated thread ") + std::to_string(t) + ": " + e.what());
      cv_.notify_all();
      return;
    }
    std::lock_guard<std::mutex> lk(mu_);
    if (!block.failed()) block.finish(t);
    check_stuck(block);
    cv_.notify_all();
  }

  // Under mu_: live threads, none of them running or released, means nobody can ever move again.
  static void check_stuck(Block& block) {
    if (!block.failed() && block.live() > 0 && block.runnable().count() == 0) block.fail_stuck();
  }

  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace

std::unique_ptr<Executor> make_thread_executor() { return std::make_unique<ThreadExecutor>(); }

}  // namespace dt_emu
