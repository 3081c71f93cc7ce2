// context.hpp - execution contexts: the assembly switch plus the sanitizer fiber annotations around it.
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(__SANITIZE_ADDRESS__)
#define SKY_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define SKY_TSAN 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SKY_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define SKY_TSAN 1
#endif
#endif

#if SKY_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if SKY_TSAN
#include <sanitizer/tsan_interface.h>
#endif

extern "C" void* sky_context_switch(void** save_sp, void* load_sp, void* transfer);
extern "C" void sky_context_entry();

namespace skyloft::arch {

// Layout of the frame sky_context_switch saves (see the table in switch_x86_64_sysv_elf.S).
inline constexpr std::size_t kFrameMxcsr = 0x00;
inline constexpr std::size_t kFrameFpucw = 0x04;
inline constexpr std::size_t kFrameR12 = 0x08;
inline constexpr std::size_t kFrameR13 = 0x10;
inline constexpr std::size_t kFrameRbp = 0x30;
inline constexpr std::size_t kFrameReturn = 0x38;
inline constexpr std::size_t kFrameSize = 0x40;
inline constexpr std::uint32_t kDefaultMxcsr = 0x1f80;  // all exceptions masked, round to nearest
inline constexpr std::uint16_t kDefaultFpucw = 0x037f;  // x87 default: extended precision, masked

// A place execution can be suspended and resumed: a task, or a worker's own loop on its thread stack.
struct ExecContext {
  void* sp = nullptr;            // saved stack pointer while suspended
  void* tls_tp = nullptr;        // its thread pointer (FS base) with per-task TLS; nullptr: the thread's own
  void* stack_lo = nullptr;      // lowest usable address (for the sanitizers)
  std::size_t stack_size = 0;
#if SKY_ASAN
  void* asan_fake_stack = nullptr;
#endif
#if SKY_TSAN
  void* tsan_fiber = nullptr;
  bool tsan_owned = false;       // created by us (a task), so destroyed by us
#endif
};

using EntryFn = void (*)(void* arg, void* transfer);

// Prepares `ctx` so that switching to it calls entry(arg, transfer) on the stack [lo, hi).
inline void make_context(ExecContext& ctx, void* lo, void* hi, EntryFn entry, void* arg) {
  auto top = reinterpret_cast<std::uintptr_t>(hi) & ~std::uintptr_t{15};
  auto* frame = reinterpret_cast<unsigned char*>(top - kFrameSize);
  *reinterpret_cast<std::uint32_t*>(frame + kFrameMxcsr) = kDefaultMxcsr;
  *reinterpret_cast<std::uint32_t*>(frame + kFrameFpucw) = kDefaultFpucw;
  *reinterpret_cast<void**>(frame + kFrameR12) = arg;
  *reinterpret_cast<void**>(frame + kFrameR13) = reinterpret_cast<void*>(entry);
  *reinterpret_cast<void**>(frame + kFrameRbp) = nullptr;
  *reinterpret_cast<void**>(frame + kFrameReturn) = reinterpret_cast<void*>(&sky_context_entry);
  ctx.sp = frame;
  ctx.stack_lo = lo;
  ctx.stack_size = static_cast<std::size_t>(static_cast<unsigned char*>(hi) - static_cast<unsigned char*>(lo));
#if SKY_TSAN
  ctx.tsan_fiber = __tsan_create_fiber(0);
  ctx.tsan_owned = true;
#endif
}

// Describes the calling thread's own stack as a context (a worker's loop).
void init_thread_context(ExecContext& ctx);

// Frees sanitizer state of a context that will never run again.
inline void destroy_context(ExecContext& ctx) {
#if SKY_TSAN
  if (ctx.tsan_owned && ctx.tsan_fiber) __tsan_destroy_fiber(ctx.tsan_fiber);
  ctx.tsan_fiber = nullptr;
#else
  (void)ctx;
#endif
}

// Suspends `from` and resumes `to`; returns, once `from` is resumed, the transfer value of whoever resumed
// it. `from_exits` tells the sanitizers that `from` will never be resumed.
inline void* switch_context(ExecContext& from, ExecContext& to, void* transfer, bool from_exits = false) {
#if SKY_ASAN
  __sanitizer_start_switch_fiber(from_exits ? nullptr : &from.asan_fake_stack, to.stack_lo, to.stack_size);
#endif
#if SKY_TSAN
  __tsan_switch_to_fiber(to.tsan_fiber, 0);
#endif
  (void)from_exits;
  void* result = sky_context_switch(&from.sp, to.sp, transfer);
#if SKY_ASAN
  __sanitizer_finish_switch_fiber(from.asan_fake_stack, nullptr, nullptr);
#endif
  return result;
}

// First thing a new context runs: completes the sanitizer side of the switch that started it.
inline void context_started() {
#if SKY_ASAN
  __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
}

}  // namespace skyloft::arch
