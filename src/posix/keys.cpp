// keys.cpp - pthread keys: values per program thread (per task), destructors when the thread ends.
//
// The key table is process-wide: each key has a generation (odd while the key exists) and a destructor.
// A value remembers the generation it was set under, so a value set before pthread_key_delete reads as
// null through a key that reuses the slot, as POSIX requires. Values live in the thread's record, so they
// follow the task across kernel threads.
#include <errno.h>
#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <mutex>

#include "core/spinlock.hpp"
#include "posix/thread_record.hpp"

namespace skyloft::posix {
namespace {

struct KeyEntry {
  std::atomic<std::uint64_t> seq{0};  // odd: in use; changed under g_keys_lock (release), read anywhere
  std::atomic<void (*)(void*)> destructor{nullptr};  // written under g_keys_lock before seq becomes odd
};
KeyEntry g_keys[PTHREAD_KEYS_MAX];
SpinLock g_keys_lock;  // serializes key_create and key_delete (rare; the reads take no lock)

KeySlot* slot_of(ThreadRecord* r, pthread_key_t key, bool create) noexcept {
  KeySlot*& block = r->keys[key / kKeyBlock];
  if (block == nullptr) {
    if (!create) return nullptr;
    block = static_cast<KeySlot*>(std::calloc(kKeyBlock, sizeof(KeySlot)));
    if (block == nullptr) return nullptr;
  }
  return &block[key % kKeyBlock];
}

}  // namespace

void run_key_destructors(ThreadRecord* r) {
  for (int round = 0; round < PTHREAD_DESTRUCTOR_ITERATIONS; ++round) {
    bool ran = false;
    for (pthread_key_t key = 0; key < PTHREAD_KEYS_MAX; ++key) {
      KeySlot* block = r->keys[key / kKeyBlock];
      if (block == nullptr) {
        key += kKeyBlock - 1;
        continue;
      }
      KeySlot& slot = block[key % kKeyBlock];
      if (slot.value == nullptr) continue;
      std::uint64_t seq = g_keys[key].seq.load(std::memory_order_acquire);
      void (*dtor)(void*) = g_keys[key].destructor.load(std::memory_order_relaxed);
      void* value = slot.value;
      slot.value = nullptr;
      if (slot.seq != seq || dtor == nullptr) continue;  // deleted key, or none to call
      dtor(value);
      ran = true;
    }
    if (!ran) return;
  }
}

}  // namespace skyloft::posix

using namespace skyloft::posix;

extern "C" {

int pthread_key_create(pthread_key_t* key, void (*destructor)(void*)) noexcept {
  std::lock_guard<skyloft::SpinLock> guard(g_keys_lock);
  for (pthread_key_t k = 0; k < PTHREAD_KEYS_MAX; ++k) {
    std::uint64_t seq = g_keys[k].seq.load(std::memory_order_relaxed);
    if (seq & 1) continue;
    g_keys[k].destructor.store(destructor, std::memory_order_relaxed);
    g_keys[k].seq.store(seq + 1, std::memory_order_release);  // the destructor is in place first
    *key = k;
    return 0;
  }
  return EAGAIN;
}

int pthread_key_delete(pthread_key_t key) noexcept {
  if (key >= PTHREAD_KEYS_MAX) return EINVAL;
  std::lock_guard<skyloft::SpinLock> guard(g_keys_lock);
  std::uint64_t seq = g_keys[key].seq.load(std::memory_order_relaxed);
  if ((seq & 1) == 0) return EINVAL;
  g_keys[key].seq.store(seq + 1, std::memory_order_release);
  return 0;
}

void* pthread_getspecific(pthread_key_t key) noexcept {
  if (key >= PTHREAD_KEYS_MAX) return nullptr;
  KeySlot* slot = slot_of(current_record(), key, false);
  if (slot == nullptr || slot->seq != g_keys[key].seq.load(std::memory_order_relaxed)) return nullptr;
  return slot->value;
}

int pthread_setspecific(pthread_key_t key, const void* value) noexcept {
  if (key >= PTHREAD_KEYS_MAX) return EINVAL;
  std::uint64_t seq = g_keys[key].seq.load(std::memory_order_relaxed);
  if ((seq & 1) == 0) return EINVAL;
  KeySlot* slot = slot_of(current_record(), key, true);
  if (slot == nullptr) return ENOMEM;
  slot->seq = seq;
  slot->value = const_cast<void*>(value);
  return 0;
}

}  // extern "C"
