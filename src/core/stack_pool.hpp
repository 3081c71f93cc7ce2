// stack_pool.hpp - task stacks: mmap'd with a guard page below, cached per worker and globally.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/task.hpp"

namespace skyloft {

class StackPool {
 public:
  // `default_usable`: the configured stack size; only mappings of that size are cached.
  StackPool(std::size_t default_usable, std::size_t num_workers);
  ~StackPool();
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  // Usable bytes for a request: rounds up to pages; throws ConfigError below kMinStackSize or above
  // kMaxStackSize.
  static std::size_t validate_size(std::size_t requested);

  // `worker`: the calling worker's index (its private cache, no locking) or -1 from outside.
  // Throws std::system_error(ENOMEM) when the kernel refuses the mapping.
  StackMapping allocate(std::size_t usable, int worker);
  void release(StackMapping m, int worker) noexcept;
  // Unmaps every stack ever handed out and not yet unmapped (shutdown: blocked and unjoined tasks too).
  // Returns how many were still in use.
  std::size_t release_all() noexcept;

  std::size_t guard_size() const noexcept { return page_; }

 private:
  StackMapping map_new(std::size_t usable);
  void unmap(StackMapping m) noexcept;

  static constexpr std::size_t kWorkerCacheMax = 64;
  static constexpr std::size_t kGlobalCacheMax = 1024;

  // A worker's cache is a list threaded through the free stacks themselves (a node at the top of each).
  struct FreeStack {
    FreeStack* next;
  };
  struct alignas(64) WorkerCache {
    FreeStack* head = nullptr;
    std::size_t count = 0;
  };
  FreeStack* node_of(void* base) const noexcept {
    return reinterpret_cast<FreeStack*>(static_cast<char*>(base) + default_map_size_ - sizeof(FreeStack));
  }
  void* base_of(FreeStack* node) const noexcept {
    return reinterpret_cast<char*>(node) + sizeof(FreeStack) - default_map_size_;
  }

  const std::size_t page_;
  const std::size_t default_map_size_;
  std::unique_ptr<WorkerCache[]> worker_cache_;           // [w] owned by worker w
  std::size_t num_workers_;
  std::mutex mutex_;
  std::vector<StackMapping> global_cache_;                // protected by mutex_
  std::unordered_map<void*, std::size_t> mapped_;         // base -> size of every live mapping; protected by mutex_
};

}  // namespace skyloft
