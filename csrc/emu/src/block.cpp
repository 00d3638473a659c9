// Completion rules of block barriers and warp collectives (csrc/emu/README.md, "Collectives").
#include "block.h"

#include <cstdio>
#include <cstring>

namespace dt_emu {
namespace {

bool same_site(const Site& a, const Site& b) {
  return a.line == b.line && (a.file == b.file || std::strcmp(a.file, b.file) == 0) &&
         (a.what == b.what || std::strcmp(a.what, b.what) == 0);
}

// Same collective: op, call site and mask (arguments such as the source lane may differ per lane).
bool same_request(const Request& a, const Request& b) {
  return a.op == b.op && a.mask == b.mask && same_site(a.site, b.site);
}

std::string hex(unsigned m) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", m);
  return buf;
}

bool is_shuffle(Op op) { return op == Op::kShflIdx || op == Op::kShflUp || op == Op::kShflDown || op == Op::kShflXor; }

}  // namespace

Block::Block(const LaunchConfig& cfg, uint3 block_idx)
    : cfg_(cfg), idx_(block_idx), n_(static_cast<int>(cfg.block.x * cfg.block.y * cfg.block.z)), live_(n_),
      slots_(n_), ctx_(n_) {
  for (int t = 0; t < n_; ++t) {
    const unsigned u = static_cast<unsigned>(t);
    ctx_[t] = ThreadCtx{uint3{u % cfg.block.x, (u / cfg.block.x) % cfg.block.y, u / (cfg.block.x * cfg.block.y)},
                        block_idx, cfg.block, cfg.grid, t};
    runnable_.set(t);
  }
}

std::string Block::where() const {
  return "block (" + std::to_string(idx_.x) + "," + std::to_string(idx_.y) + "," + std::to_string(idx_.z) +
         ") of " + cfg_.name + " (launched at " + site_str(Site{cfg_.file, cfg_.line, ""}) + ")";
}

void Block::fail(const std::string& what) {
  if (!failed()) error_ = "cuda-emu: " + what + " in " + where();
}

unsigned Block::lanes_of(int warp) const {
  const int n = n_ - warp * 32;
  return n >= 32 ? 0xffffffffu : (1u << n) - 1;
}

void Block::arrive(int t, const Request& r) {
  Slot& s = slots_[t];
  s.state = State::kWaiting;
  s.req = r;
  s.result = 0;
  runnable_.clear(t);
  const int warp = t / 32, lane = t % 32;
  const unsigned mates = lanes_of(warp);

  if (is_block_op(r.op)) {
    ++at_barrier_;
    for (int l = 0; l < 32; ++l) {  // a warp-mate waiting for this thread at a warp collective waits forever
      if (!((mates >> l) & 1)) break;
      const Slot& o = slots_[warp * 32 + l];
      if (o.state == State::kWaiting && !is_block_op(o.req.op) && ((o.req.mask >> lane) & 1)) {
        return fail("deadlock: warp " + std::to_string(warp) + " is split between a block barrier and a warp "
                    "collective: " + describe(threads_of(warp, mates), true));
      }
    }
    if (exited_ > 0) {
      return fail("deadlock: " + std::string(r.site.what) + " at " + site_str(r.site) +
                  " can never complete because some threads have exited: " + describe(all_threads(), false));
    }
    if (at_barrier_ == live_) complete_barrier();
    return;
  }

  if (!((r.mask >> lane) & 1)) {
    return fail(std::string(r.site.what) + " at " + site_str(r.site) + " is called by lane " + std::to_string(lane) +
                " of warp " + std::to_string(warp) + " with mask " + hex(r.mask) + ", which does not name the lane");
  }
  if (is_shuffle(r.op) && (r.width < 1 || r.width > 32 || (r.width & (r.width - 1)) != 0)) {
    return fail(std::string(r.site.what) + " at " + site_str(r.site) + ": width " + std::to_string(r.width) +
                " is not a power of two in [1, 32]");
  }
  check_warp(warp, t);
  // Other groups waiting in this warp that name this lane (a different site or mask) are now
  // complete enough to be found divergent.
  for (int l = 0; l < 32 && !failed(); ++l) {
    if (!((mates >> l) & 1)) break;
    const Slot& o = slots_[warp * 32 + l];
    if (o.state == State::kWaiting && !is_block_op(o.req.op) && ((o.req.mask >> lane) & 1) &&
        !same_request(o.req, r)) {
      check_warp(warp, warp * 32 + l);
    }
  }
}

void Block::finish(int t) {
  slots_[t].state = State::kExited;
  runnable_.clear(t);
  --live_;
  ++exited_;
  if (at_barrier_ > 0) {
    return fail("deadlock: thread " + std::to_string(t) + " exited while others wait at a block barrier: " +
                describe(all_threads(), false));
  }
  const int warp = t / 32, lane = t % 32;
  const unsigned mates = lanes_of(warp);
  for (int l = 0; l < 32 && !failed(); ++l) {  // exited lanes no longer hold collectives back
    if (!((mates >> l) & 1)) break;
    const Slot& o = slots_[warp * 32 + l];
    if (o.state == State::kWaiting && !is_block_op(o.req.op) && ((o.req.mask >> lane) & 1)) check_warp(warp, warp * 32 + l);
  }
}

void Block::complete_barrier() {
  const Request* first = nullptr;
  for (int t = 0; t < n_; ++t) {
    const Slot& s = slots_[t];
    if (s.state != State::kWaiting) continue;
    if (first == nullptr) {
      first = &s.req;
    } else if (!same_site(first->site, s.req.site) || first->op != s.req.op) {
      return fail("divergent block barrier: " + describe(all_threads(), false));
    }
  }
  long long count = 0;
  for (int t = 0; t < n_; ++t)
    if (slots_[t].state == State::kWaiting) count += slots_[t].req.arg;
  long long result = 0;
  if (first->op == Op::kSyncThreadsCount) result = count;
  if (first->op == Op::kSyncThreadsAnd) result = count == live_;
  if (first->op == Op::kSyncThreadsOr) result = count > 0;
  for (int t = 0; t < n_; ++t) {
    Slot& s = slots_[t];
    if (s.state != State::kWaiting) continue;
    s.state = State::kRunnable;
    s.result = result;
    runnable_.set(t);
  }
  at_barrier_ = 0;
}

void Block::check_warp(int warp, int leader) {
  const Request r = slots_[leader].req;
  const unsigned named = r.mask & lanes_of(warp);
  for (int l = 0; l < 32; ++l)  // someone named is still running: nothing to decide yet
    if (((named >> l) & 1) && slots_[warp * 32 + l].state == State::kRunnable) return;
  unsigned members = 0;
  const std::string head = "warp " + std::to_string(warp) + ": ";
  for (int l = 0; l < 32; ++l) {
    if (!((named >> l) & 1)) continue;
    const Slot& s = slots_[warp * 32 + l];
    if (s.state == State::kExited) continue;
    if (is_block_op(s.req.op)) {
      return fail("deadlock: " + head + r.site.what + " at " + site_str(r.site) + " names lanes that wait at a "
                  "block barrier: " + describe(threads_of(warp, named), true));
    }
    if (!same_request(s.req, r)) {
      return fail("divergent warp collective: " + head + describe(threads_of(warp, named), true));
    }
    members |= 1u << l;
  }
  if (r.op == Op::kGather && members != 0xffffffffu) {
    return fail(head + "dt_emu_warp_gather at " + site_str(r.site) + " needs all 32 lanes of the warp, but " +
                (lanes_of(warp) != 0xffffffffu ? std::string("the block has only ") + std::to_string(n_) + " threads"
                                               : describe(threads_of(warp, named), true)));
  }
  complete_warp(warp, members, r);
}

Block::Seen* Block::seen(int t, const Request& r) {
  for (Seen& s : slots_[t].seen)
    if (s.op == r.op && same_site(s.site, r.site)) return &s;
  return nullptr;
}

void Block::complete_warp(int warp, unsigned members, const Request& r) {
  // A named lane that has exited may be left out, unless it already passed this same instance of
  // the collective (same site, as often) in another group: then the masks disagreed.
  const int leader = warp * 32 + __builtin_ctz(members);
  const Seen* mine = seen(leader, r);
  const unsigned instance = mine != nullptr ? mine->count : 0;
  const unsigned absent = r.mask & lanes_of(warp) & ~members;
  for (int l = 0; l < 32; ++l) {
    if (!((absent >> l) & 1)) continue;
    const Seen* other = seen(warp * 32 + l, r);
    if (other != nullptr && other->count > instance) {
      return fail("divergent warp collective: warp " + std::to_string(warp) + ": lanes " +
                  describe(threads_of(warp, members), true).substr(6) + ", but lane " + std::to_string(l) +
                  " already passed it with mask " + hex(other->mask) + " before exiting");
    }
  }
  for (int l = 0; l < 32; ++l) {
    if (!((members >> l) & 1)) continue;
    Seen* s = seen(warp * 32 + l, r);
    if (s == nullptr) {
      slots_[warp * 32 + l].seen.push_back(Seen{r.site, r.op, 0, 0});
      s = &slots_[warp * 32 + l].seen.back();
    }
    ++s->count;
    s->mask = r.mask;
  }
  long long ballot = 0;
  for (int l = 0; l < 32; ++l)
    if (((members >> l) & 1) && slots_[warp * 32 + l].req.arg) ballot |= 1ll << l;
  for (int l = 0; l < 32; ++l) {
    if (!((members >> l) & 1)) continue;
    Slot& s = slots_[warp * 32 + l];
    switch (r.op) {
      case Op::kBallot: s.result = ballot; break;
      case Op::kAny: s.result = ballot != 0; break;
      case Op::kAll: s.result = ballot == static_cast<long long>(members); break;
      case Op::kGather:
        for (int src = 0; src < 32; ++src)
          std::memcpy(static_cast<char*>(s.req.out) + src * s.req.size, slots_[warp * 32 + src].req.in, s.req.size);
        break;
      default:
        if (is_shuffle(r.op)) shuffle(warp, l, members, s.req);
        break;
    }
  }
  for (int l = 0; l < 32; ++l) {
    if (!((members >> l) & 1)) continue;
    slots_[warp * 32 + l].state = State::kRunnable;
    runnable_.set(warp * 32 + l);
  }
}

// PTX shfl.sync semantics: segments of `width` lanes; a source outside the segment (or the warp)
// yields the lane's own value; a source lane that does not take part yields poison (NaN bytes).
void Block::shuffle(int warp, int lane, unsigned members, const Request& r) {
  const int segmask = 32 - r.width;
  const int min_lane = lane & segmask;
  const int b = r.arg;
  int j = lane;
  bool in_range = true;
  switch (r.op) {
    case Op::kShflIdx: j = min_lane | (b & ~segmask & 31); break;
    case Op::kShflUp: j = lane - b; in_range = j >= min_lane; break;
    case Op::kShflDown: j = lane + b; in_range = j <= (min_lane | (31 & ~segmask)); break;
    case Op::kShflXor: j = lane ^ b; in_range = j <= (min_lane | (31 & ~segmask)); break;
    default: break;
  }
  if (!in_range) j = lane;
  if (j >= 0 && j < 32 && ((members >> j) & 1)) {
    std::memcpy(r.out, slots_[warp * 32 + j].req.in, r.size);
  } else {
    std::memset(r.out, 0xff, r.size);
  }
}

void Block::fail_stuck() {
  fail("deadlock: no thread can continue: " + describe(all_threads(), false));
}

}  // namespace dt_emu
