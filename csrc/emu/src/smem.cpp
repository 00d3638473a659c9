// Shared-memory arena. Layout: [guard][dynamic][guard][static 1][guard][static 2][guard]...
#include "smem.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstring>
#include <new>

#include "block.h"

namespace dt_emu {
namespace {

size_t round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

}  // namespace

Arena::Arena() {
  // Room for the largest opt-in shared memory of any device plus many guards; pages are only
  // touched as far as a launch uses them.
  capacity_ = size_t(4) << 20;
  void* p = mmap(nullptr, capacity_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  base_ = static_cast<unsigned char*>(p);
}

Arena::~Arena() { munmap(base_, capacity_); }

void Arena::begin_launch(size_t dynamic) {
  std::lock_guard<std::mutex> lock(mu_);
  ++epoch_;
  dynamic_ = dynamic;
  dynamic_site_ = nullptr;
  static_bytes_ = 0;
  allocs_.clear();
  allocs_.push_back(Alloc{&unnamed_dynamic_, kGuard, dynamic});
  top_ = round_up(kGuard + dynamic, kAlign) + kGuard;
  if (top_ > capacity_) throw std::bad_alloc();
}

void Arena::begin_block() { std::memset(base_, kPoison, top_); }

void* Arena::place(SharedSite* site, size_t* placed_total) {
  *placed_total = 0;
  // Placed already in this launch: no lock, so the emulator adds no ordering between threads that
  // ThreadSanitizer would take for synchronisation (threads mode).
  if (__atomic_load_n(&site->epoch, __ATOMIC_ACQUIRE) == epoch_) return base_ + site->offset;
  std::lock_guard<std::mutex> lock(mu_);
  if (site->epoch == epoch_) return base_ + site->offset;
  const size_t align = site->align > kAlign ? site->align : kAlign;
  const size_t offset = round_up(top_, align);
  const size_t end = round_up(offset + site->size, kAlign) + kGuard;
  if (end > capacity_) return nullptr;
  std::memset(base_ + top_, kPoison, end - top_);  // blocks already begun see it poisoned too
  top_ = end;
  static_bytes_ += site->size;
  site->offset = offset;
  __atomic_store_n(&site->epoch, epoch_, __ATOMIC_RELEASE);
  allocs_.push_back(Alloc{site, offset, site->size});
  *placed_total = static_bytes_;
  return base_ + offset;
}

void* Arena::dynamic(SharedSite* site) {
  if (__atomic_load_n(&dynamic_site_, __ATOMIC_ACQUIRE) != nullptr) return base_ + kGuard;
  std::lock_guard<std::mutex> lock(mu_);
  if (dynamic_site_ == nullptr) {  // name the region after the first declaration that reaches it
    allocs_[0].site = site;
    __atomic_store_n(&dynamic_site_, site, __ATOMIC_RELEASE);
  }
  return base_ + kGuard;
}

std::string Arena::check_guards() const {
  // Every byte outside the allocations (guards and alignment padding) must still hold the poison.
  size_t pos = 0;
  for (size_t i = 0; i <= allocs_.size(); ++i) {
    const size_t end = i < allocs_.size() ? allocs_[i].offset : top_;
    for (size_t b = pos; b < end; ++b) {
      if (base_[b] == kPoison) continue;
      size_t last = b;  // extent of the damage inside this gap
      for (size_t c = b; c < end; ++c)
        if (base_[c] != kPoison) last = c;
      // Damage in a gap is blamed on the nearer neighbour: the end of the one before, or the start
      // of the one after (an index below zero).
      const Alloc* before = i > 0 ? &allocs_[i - 1] : nullptr;
      const Alloc* after = i < allocs_.size() ? &allocs_[i] : nullptr;
      const size_t past = before != nullptr ? b - (before->offset + before->size) : SIZE_MAX;
      const size_t ahead = after != nullptr ? end - last : SIZE_MAX;
      const Alloc& owner = past <= ahead ? *before : *after;
      const SharedSite* s = owner.site;
      const std::string what = std::string(s->decl) + " (" +
                               (s->line > 0 ? site_str(Site{s->file, s->line, ""}) + ", " : std::string()) +
                               std::to_string(owner.size) + " bytes)";
      if (past <= ahead) {
        return "shared-memory overflow: bytes " + std::to_string(past) + ".." + std::to_string(last - b + past) +
               " past the end of " + what + " were written";
      }
      return "shared-memory underflow: bytes " + std::to_string(ahead) + ".." + std::to_string(end - b) +
             " before the start of " + what + " were written";
    }
    if (i < allocs_.size()) pos = allocs_[i].offset + allocs_[i].size;
  }
  return "";
}

}  // namespace dt_emu
