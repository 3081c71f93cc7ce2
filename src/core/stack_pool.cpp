// stack_pool.cpp - guarded stacks (a mapping each) and guardless slots (carved from slabs); see stack_pool.hpp.
#include "core/stack_pool.hpp"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <system_error>

#include <fmt/format.h>

#include "arch/context.hpp"
#include "core/fatal.hpp"
#include "core/scheduler.hpp"
#include "core/stack_canary.hpp"
#include "skyloft/config.hpp"

namespace skyloft {
namespace {

std::size_t page_size() noexcept { return static_cast<std::size_t>(sysconf(_SC_PAGESIZE)); }

std::size_t round_up(std::size_t n, std::size_t unit) noexcept { return (n + unit - 1) / unit * unit; }

// A stack given back may still carry ASan poison from frames that never returned (a task freed while
// blocked, or one that exited through an exception). Clear it before the memory is reused or unmapped.
void unpoison(void* base, std::size_t size) noexcept {
#if SKY_ASAN
  ASAN_UNPOISON_MEMORY_REGION(base, size);
#else
  (void)base;
  (void)size;
#endif
}

}  // namespace

StackPool::StackPool(std::size_t default_size, bool default_guarded, std::size_t num_workers)
    : page_(page_size()),
      default_guarded_(default_guarded),
      guarded_default_(std::max(round_up(default_size, page_), kMinStackSize)),
      guardless_default_(validate_size(default_size, false)),
      worker_cache_(std::make_unique<WorkerCache[]>(num_workers)),
      num_workers_(num_workers) {
  // A guardless stack may be 2 KiB, but the dynamic loader's lazy-binding resolver takes ~3.5 KiB (it
  // saves the vector registers) the first time a function is called through a lazily bound PLT slot. The
  // one a task's first sleep reaches is libstdc++'s call of clock_gettime (Deadline is steady_clock): bind
  // it here, on the creating thread's stack.
  (void)std::chrono::steady_clock::now();
}

StackPool::~StackPool() { release_all(); }

std::size_t StackPool::validate_size(std::size_t requested, bool guarded) {
  const std::size_t min = guarded ? kMinStackSize : kMinGuardlessStackSize;
  if (requested < min) {
    if (guarded && requested >= kMinGuardlessStackSize) {
      throw ConfigError(fmt::format("stack size {} bytes is too small for a guarded stack (minimum {} bytes; a "
                                    "guardless stack, StackGuard::off or SKYLOFT_STACK_GUARD=0, may be as small "
                                    "as {} bytes)",
                                    requested, kMinStackSize, kMinGuardlessStackSize));
    }
    throw ConfigError(fmt::format("stack size {} bytes is too small (minimum {} bytes for a {} stack)", requested,
                                  min, guarded ? "guarded" : "guardless"));
  }
  if (requested > kMaxStackSize) {
    throw ConfigError(
        fmt::format("stack size {} bytes is absurd (maximum {} bytes)", requested, kMaxStackSize));
  }
  const std::size_t page = page_size();
  // Guardless stacks below a page pack densely (64 bytes keeps task records on their own cache lines);
  // from a page up they are whole pages, so a slot's untouched pages cost nothing.
  return round_up(requested, guarded || requested > page ? page : 64);
}

// ---- guarded stacks ----

StackMapping StackPool::map_guarded(std::size_t size) {
  const std::size_t map_size = size + page_;
  void* base = mmap(nullptr, map_size, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (base == MAP_FAILED || mprotect(base, page_, PROT_NONE) != 0) {
    int err = task_errno();  // a spawning task may be preempted here
    if (base != MAP_FAILED) munmap(base, map_size);
    std::size_t live;
    {
      std::lock_guard<SpinLock> guard(mutex_);
      live = mapped_.size();
    }
    throw std::system_error(
        err, std::generic_category(),
        fmt::format("skyloft: cannot map a task stack of {} bytes with {} guarded stacks live (each is 2 memory "
                    "maps; vm.max_map_count bounds them: spawn with SpawnOptions::guard = StackGuard::off or "
                    "set SKYLOFT_STACK_GUARD=0 for stacks carved from shared slabs)",
                    size, live));
  }
  std::lock_guard<SpinLock> guard(mutex_);
  mapped_.emplace(base, map_size);
  return StackMapping{base, static_cast<char*>(base) + page_, map_size, true};
}

void StackPool::unmap_guarded(StackMapping m) noexcept {
  {
    std::lock_guard<SpinLock> guard(mutex_);
    mapped_.erase(m.base);
  }
  munmap(m.base, m.size);
}

// ---- guardless slots ----

StackMapping StackPool::guardless_mapping(void* base, std::size_t slot) const noexcept {
  void* lo = static_cast<char*>(base) + kCanaryBytes;
  stack_canary_write(lo);
  return StackMapping{base, lo, slot, false};
}

void* StackPool::take_slot_locked(std::size_t slot) {
  SlabClass& c = classes_[slot];
  if (void* base = c.free.pop(slot)) return base;
  if (c.next == nullptr || static_cast<std::size_t>(c.end - c.next) < slot) {
    const std::size_t slab = slot >= kSlabBytes ? round_up(slot, page_) : round_up(kSlabBytes / slot * slot, page_);
    void* base = mmap(nullptr, slab, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                      -1, 0);
    if (base == MAP_FAILED) {
      int err = task_errno();  // a spawning task may be preempted here
      std::size_t carved = 0;
      for (const auto& [size, cls] : classes_) carved += cls.carved;
      throw std::system_error(err, std::generic_category(),
                              fmt::format("skyloft: cannot map a stack slab of {} bytes ({} guardless stacks "
                                          "carved so far)",
                                          slab, carved));
    }
    // Slots below a page pack densely and every page of the slab gets touched as they are handed out, so
    // huge pages cost no extra memory there and save ~500 page faults per 2 MiB. Larger slots are touched
    // sparsely (their top pages), where a huge page would cost 2 MiB at the first touch.
    madvise(base, slab, slot < page_ ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    slabs_.push_back(Slab{base, slab});
    c.next = static_cast<char*>(base);
    c.end = c.next + slab / slot * slot;
  }
  void* base = c.next;
  c.next += slot;
  ++c.carved;
  return base;
}

// ---- both ----

StackMapping StackPool::allocate(StackRequest r, int worker) {
  if (r.guarded) {
    if (r.size == guarded_default_) {
      if (worker >= 0) {
        FreeList& cache = worker_cache_[static_cast<std::size_t>(worker)].lists[kGuarded];
        if (void* base = cache.pop(guarded_default_ + page_)) {
          return StackMapping{base, static_cast<char*>(base) + page_, guarded_default_ + page_, true};
        }
      }
      std::lock_guard<SpinLock> guard(mutex_);
      if (!global_cache_.empty()) {
        StackMapping m = global_cache_.back();
        global_cache_.pop_back();
        return m;
      }
    }
    return map_guarded(r.size);
  }
  const std::size_t slot = r.size;
  if (slot == guardless_default_ && worker >= 0) {
    FreeList& cache = worker_cache_[static_cast<std::size_t>(worker)].lists[kGuardless];
    if (cache.count == 0) {  // refill a batch under one lock
      std::lock_guard<SpinLock> guard(mutex_);
      for (std::size_t i = 0; i < kRefillBatch; ++i) cache.push(take_slot_locked(slot), slot);
    }
    return guardless_mapping(cache.pop(slot), slot);
  }
  std::lock_guard<SpinLock> guard(mutex_);
  return guardless_mapping(take_slot_locked(slot), slot);
}

void StackPool::release(StackMapping m, int worker) noexcept {
  unpoison(m.base, m.size);
  if (m.guarded) {
    if (m.size == guarded_default_ + page_) {
      if (worker >= 0) {
        FreeList& cache = worker_cache_[static_cast<std::size_t>(worker)].lists[kGuarded];
        if (cache.count < kWorkerCacheMax) {
          cache.push(m.base, m.size);
          return;
        }
      }
      std::lock_guard<SpinLock> guard(mutex_);
      if (global_cache_.size() < kGlobalCacheMax) {
        global_cache_.push_back(m);
        return;
      }
    }
    unmap_guarded(m);
    return;
  }
  if (m.size == guardless_default_ && worker >= 0) {
    FreeList& cache = worker_cache_[static_cast<std::size_t>(worker)].lists[kGuardless];
    cache.push(m.base, m.size);
    if (cache.count <= kWorkerCacheMax) return;
    std::lock_guard<SpinLock> guard(mutex_);  // spill a batch under one lock
    FreeList& global = classes_[m.size].free;
    for (std::size_t i = 0; i < kRefillBatch; ++i) global.push(cache.pop(m.size), m.size);
    return;
  }
  std::lock_guard<SpinLock> guard(mutex_);
  classes_[m.size].free.push(m.base, m.size);
}

std::size_t StackPool::release_all() noexcept {
  std::lock_guard<SpinLock> guard(mutex_);
  std::size_t cached_guarded = global_cache_.size();
  std::size_t free_guardless = 0;
  for (std::size_t i = 0; i < num_workers_; ++i) {
    cached_guarded += worker_cache_[i].lists[kGuarded].count;
    free_guardless += worker_cache_[i].lists[kGuardless].count;
    worker_cache_[i] = WorkerCache{};
  }
  std::size_t carved = 0;
  for (const auto& [size, cls] : classes_) {
    carved += cls.carved;
    free_guardless += cls.free.count;
  }
  const std::size_t in_use = (mapped_.size() - cached_guarded) + (carved - free_guardless);
  global_cache_.clear();
  for (const auto& [base, size] : mapped_) {
    unpoison(base, size);
    munmap(base, size);
  }
  mapped_.clear();
  for (const Slab& s : slabs_) {
    unpoison(s.base, s.size);
    munmap(s.base, s.size);
  }
  slabs_.clear();
  classes_.clear();
  return in_use;
}

[[noreturn]] void stack_overflow_detected(const Task* t, std::uintptr_t sp) noexcept {
  const bool canary_ok = stack_canary_intact(t->stack.lo);
  sky_fatal("stack overflow in task %llu (guardless stack of %zu bytes at %p, stack pointer %p: %s, found as "
            "it switched out; it may have corrupted the stack below): spawn it with a larger "
            "SpawnOptions::stack_size, or with SpawnOptions::guard = StackGuard::on to fault at the overflow itself",
            static_cast<unsigned long long>(t->sched.id), t->stack.size, t->stack.base, reinterpret_cast<void*>(sp),
            canary_ok ? "the stack pointer is below its low end" : "its canary word was overwritten");
}

}  // namespace skyloft
