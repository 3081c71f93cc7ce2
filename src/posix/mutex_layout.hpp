// mutex_layout.hpp - our state inside the program's own pthread_mutex_t (40 bytes on x86-64).
//
// State lives in the object, not in a side table: a mutex works from its first use with no registration
// (PTHREAD_MUTEX_INITIALIZER is all zero bytes, which is the unlocked state of every field here), costs
// no lookup, and nothing leaks when a program frees a mutex without destroying it. glibc's static
// initializers for the other types write the type into __kind (offset 16), so the type stays there.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "skyloft/sync.hpp"

namespace skyloft::posix {

struct MutexState {
  Mutex lock;                          // the lock word (zero: unlocked)
  std::uint32_t depth;                 // recursive: times the owner holds it; owner-only
  std::atomic<std::uintptr_t> owner;   // recursive/errorcheck: self_identity() of the holder, 0 when free
  int kind;                            // PTHREAD_MUTEX_{NORMAL,RECURSIVE,ERRORCHECK,ADAPTIVE}_NP
};
static_assert(sizeof(MutexState) <= sizeof(pthread_mutex_t), "our mutex state must fit in pthread_mutex_t");
static_assert(offsetof(MutexState, kind) == offsetof(pthread_mutex_t, __data.__kind),
              "the type must stay where glibc's static initializers put it");
static_assert(sizeof(Mutex) == sizeof(std::uint32_t), "Mutex is one word");

inline MutexState& mutex_state(pthread_mutex_t* m) noexcept { return *reinterpret_cast<MutexState*>(m); }

// The kind bits of glibc's initializers and ours: the low two bits are the type.
inline int mutex_type(const MutexState& s) noexcept { return s.kind & 3; }

}  // namespace skyloft::posix
