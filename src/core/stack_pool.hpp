// stack_pool.hpp - task stacks: guarded mappings of their own, or guardless slots carved from shared slabs.
//
// Two kinds (StackGuard in skyloft/task.hpp):
//   guarded    one mmap per stack, its lowest page PROT_NONE: two memory maps (VMAs) each, so
//              vm.max_map_count (65530 by default) caps live guarded stacks near 32k. The default size is
//              cached per worker, then globally up to kGlobalCacheMax; other sizes and the surplus are
//              unmapped when freed.
//   guardless  slots of one size carved from slabs of ~4 MiB: one mmap holds many stacks, so memory maps do
//              not grow with tasks. A canary word at each slot's low end (stack_canary.hpp) stands in for
//              the guard page. Slabs live until the pool dies: a freed slot goes to its worker's cache
//              (default size) or to its size class's free list and is reused, never unmapped.
// Every mapping is MAP_NORESERVE and faulted in lazily, so a task costs only the pages it touched: its
// record, callable and frames at the top, plus (for a guardless slot that spans pages) its canary page.
//
// Who may touch what: worker_cache_[w] belongs to worker w (callers hold a RuntimeSection, so a task
// cannot migrate between choosing the cache and using it); everything else is protected by mutex_.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/spinlock.hpp"
#include "core/task.hpp"
#include "skyloft/task.hpp"

namespace skyloft {

// A validated stack request: `size` bytes of stack (rounded; a guardless slot's canary comes out of it,
// a guard page is added to it).
struct StackRequest {
  std::size_t size;
  bool guarded;
};

class StackPool {
 public:
  // `default_size`: Config::stack_size, already validated for `default_guarded` (Config::stack_guard).
  StackPool(std::size_t default_size, bool default_guarded, std::size_t num_workers);
  ~StackPool();
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  // The rounded size of a requested stack (see Config::stack_size); throws ConfigError below
  // kMinStackSize (guarded) or kMinGuardlessStackSize (guardless), or above kMaxStackSize.
  static std::size_t validate_size(std::size_t requested, bool guarded);

  // Resolves SpawnOptions::stack_size (0: the default) and SpawnOptions::guard. Throws as validate_size.
  // Inline: it runs on every spawn.
  StackRequest request(std::size_t stack_size, StackGuard guard) const {
    const bool guarded = guard == StackGuard::on || (guard == StackGuard::config && default_guarded_);
    if (stack_size == 0) return StackRequest{guarded ? guarded_default_ : guardless_default_, guarded};
    return StackRequest{validate_size(stack_size, guarded), guarded};
  }

  // `worker`: the calling worker's index (its private cache, no locking) or -1 from outside.
  // Throws std::system_error(ENOMEM) when the kernel refuses the mapping.
  StackMapping allocate(StackRequest r, int worker);
  void release(StackMapping m, int worker) noexcept;
  // Unmaps every stack and slab (shutdown: blocked and unjoined tasks' stacks too). Returns how many
  // stacks were still in use.
  std::size_t release_all() noexcept;

 private:
  static constexpr std::size_t kWorkerCacheMax = 64;
  static constexpr std::size_t kGlobalCacheMax = 1024;  // guarded stacks
  static constexpr std::size_t kRefillBatch = 32;       // guardless slots moved per worker-cache refill/spill
  static constexpr std::size_t kSlabBytes = std::size_t{4} << 20;

  // Free stacks are threaded through themselves: a node at the top of each.
  struct FreeStack {
    FreeStack* next;
  };
  struct FreeList {
    FreeStack* head = nullptr;
    std::size_t count = 0;
    void push(void* base, std::size_t size) noexcept {
      auto* node = reinterpret_cast<FreeStack*>(static_cast<char*>(base) + size - sizeof(FreeStack));
      node->next = head;
      head = node;
      ++count;
    }
    void* pop(std::size_t size) noexcept {  // nullptr when empty
      FreeStack* node = head;
      if (node == nullptr) return nullptr;
      head = node->next;
      --count;
      return reinterpret_cast<char*>(node) + sizeof(FreeStack) - size;
    }
  };
  enum Kind { kGuarded = 0, kGuardless = 1 };
  struct alignas(64) WorkerCache {
    FreeList lists[2];  // [kGuarded]: default-size guarded mappings; [kGuardless]: default-size slots
  };
  // Guardless slots of one size.
  struct SlabClass {
    FreeList free;
    char* next = nullptr;  // the uncarved rest of the newest slab
    char* end = nullptr;
    std::size_t carved = 0;
  };
  struct Slab {
    void* base;
    std::size_t size;
  };

  StackMapping map_guarded(std::size_t size);
  void unmap_guarded(StackMapping m) noexcept;
  void* take_slot_locked(std::size_t slot);  // from the free list, else carved (maps a slab if needed)
  StackMapping guardless_mapping(void* base, std::size_t slot) const noexcept;

  const std::size_t page_;
  const bool default_guarded_;
  const std::size_t guarded_default_;    // stack bytes of a default guarded stack (guard page not counted)
  const std::size_t guardless_default_;  // slot bytes of a default guardless stack
  std::unique_ptr<WorkerCache[]> worker_cache_;  // [w] owned by worker w
  std::size_t num_workers_;
  SpinLock mutex_;  // not std::mutex: the runtime never goes through pthread symbols
  std::vector<StackMapping> global_cache_;                  // default-size guarded; protected by mutex_
  std::unordered_map<void*, std::size_t> mapped_;           // every live guarded mapping; protected by mutex_
  std::unordered_map<std::size_t, SlabClass> classes_;      // by slot size; protected by mutex_
  std::vector<Slab> slabs_;                                 // protected by mutex_
};

}  // namespace skyloft
