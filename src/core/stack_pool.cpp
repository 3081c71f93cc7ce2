// stack_pool.cpp - task stacks with guard pages; see stack_pool.hpp.
//
// Each stack is one mapping whose lowest page is PROT_NONE, so an overflow faults instead of corrupting a
// neighbour (the fault handler names the task). That is two VMAs per stack, and vm.max_map_count (65530 by
// default) therefore caps live tasks near 32k; the error message says so. Mappings are MAP_NORESERVE, so
// only touched pages cost memory.
#include "core/stack_pool.hpp"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <system_error>

#include "arch/context.hpp"
#include "skyloft/config.hpp"

namespace skyloft {

StackPool::StackPool(std::size_t default_usable, std::size_t num_workers)
    : page_(static_cast<std::size_t>(sysconf(_SC_PAGESIZE))),
      default_map_size_(default_usable + page_),
      worker_cache_(std::make_unique<WorkerCache[]>(num_workers)),
      num_workers_(num_workers) {}

StackPool::~StackPool() { release_all(); }

std::size_t StackPool::validate_size(std::size_t requested) {
  if (requested < kMinStackSize) {
    throw ConfigError("stack size " + std::to_string(requested) + " bytes is too small (minimum " +
                      std::to_string(kMinStackSize) + " bytes)");
  }
  if (requested > kMaxStackSize) {
    throw ConfigError("stack size " + std::to_string(requested) + " bytes is absurd (maximum " +
                      std::to_string(kMaxStackSize) + " bytes)");
  }
  std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return (requested + page - 1) / page * page;
}

StackMapping StackPool::allocate(std::size_t usable, int worker) {
  std::size_t map_size = usable + page_;
  if (map_size == default_map_size_) {
    if (worker >= 0) {
      WorkerCache& cache = worker_cache_[static_cast<std::size_t>(worker)];
      if (FreeStack* node = cache.head) {
        cache.head = node->next;
        --cache.count;
        return StackMapping{base_of(node), default_map_size_};
      }
    }
    std::lock_guard<std::mutex> guard(mutex_);
    if (!global_cache_.empty()) {
      StackMapping m = global_cache_.back();
      global_cache_.pop_back();
      return m;
    }
  }
  return map_new(usable);
}

namespace {
// A stack given back may still carry ASan poison from frames that never returned (a task freed while
// blocked, or one that exited through an exception). Clear it before the memory is reused or unmapped.
void unpoison(const StackMapping& m) noexcept {
#if SKY_ASAN
  ASAN_UNPOISON_MEMORY_REGION(m.base, m.size);
#else
  (void)m;
#endif
}
}  // namespace

void StackPool::release(StackMapping m, int worker) noexcept {
  unpoison(m);
  if (m.size == default_map_size_) {
    if (worker >= 0) {
      WorkerCache& cache = worker_cache_[static_cast<std::size_t>(worker)];
      if (cache.count < kWorkerCacheMax) {
        FreeStack* node = node_of(m.base);
        node->next = cache.head;
        cache.head = node;
        ++cache.count;
        return;
      }
    }
    std::lock_guard<std::mutex> guard(mutex_);
    if (global_cache_.size() < kGlobalCacheMax) {
      global_cache_.push_back(m);
      return;
    }
  }
  unmap(m);
}

StackMapping StackPool::map_new(std::size_t usable) {
  std::size_t size = usable + page_;
  void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                    -1, 0);
  if (base == MAP_FAILED || mprotect(base, page_, PROT_NONE) != 0) {
    int err = errno;
    if (base != MAP_FAILED) munmap(base, size);
    std::size_t live;
    {
      std::lock_guard<std::mutex> guard(mutex_);
      live = mapped_.size();
    }
    throw std::system_error(err, std::generic_category(),
                            "skyloft: cannot map a task stack of " + std::to_string(usable) + " bytes with " +
                                std::to_string(live) +
                                " stacks live (each stack is 2 memory maps; vm.max_map_count bounds them)");
  }
  std::lock_guard<std::mutex> guard(mutex_);
  mapped_.emplace(base, size);
  return StackMapping{base, size};
}

void StackPool::unmap(StackMapping m) noexcept {
  {
    std::lock_guard<std::mutex> guard(mutex_);
    mapped_.erase(m.base);
  }
  munmap(m.base, m.size);
}

std::size_t StackPool::release_all() noexcept {
  std::lock_guard<std::mutex> guard(mutex_);
  std::size_t cached = global_cache_.size();
  for (std::size_t i = 0; i < num_workers_; ++i) {
    cached += worker_cache_[i].count;
    worker_cache_[i] = WorkerCache{};
  }
  global_cache_.clear();
  std::size_t in_use = mapped_.size() - cached;
  for (const auto& [base, size] : mapped_) {
    unpoison(StackMapping{base, size});
    munmap(base, size);
  }
  mapped_.clear();
  return in_use;
}

}  // namespace skyloft
