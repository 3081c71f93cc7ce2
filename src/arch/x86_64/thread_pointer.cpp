// thread_pointer.cpp - finding out how the FS base may be moved; the system-call fallback.
#include "arch/thread_pointer.hpp"

#include <asm/prctl.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace skyloft::arch {

bool g_have_wrfsbase = false;

bool detect_wrfsbase() noexcept {
  constexpr unsigned long kHwcap2Fsgsbase = 1UL << 1;  // HWCAP2_FSGSBASE: the kernel enabled CR4.FSGSBASE
  g_have_wrfsbase = (getauxval(AT_HWCAP2) & kHwcap2Fsgsbase) != 0;
  return g_have_wrfsbase;
}

void set_thread_pointer_by_syscall(void* tp) noexcept {
  syscall(SYS_arch_prctl, ARCH_SET_FS, tp);  // cannot fail for a canonical user address
}

}  // namespace skyloft::arch
