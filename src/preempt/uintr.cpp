// uintr.cpp - "uintr": Intel user interrupts (SENDUIPI / UIRET) would deliver preemption without entering
// the kernel. This build only detects support and refuses to start without it, with the reason. No UINTR
// backend is implemented yet: no machine with the hardware and a UINTR kernel was available to test one, so
// even a supporting machine gets a clear "not implemented" instead of an untested path.
#include <cpuid.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "preempt/mechanism.hpp"
#include "skyloft/config.hpp"

namespace skyloft {
namespace {

bool cpu_has_uintr() {
  unsigned eax, ebx, ecx, edx;
  if (__get_cpuid_max(0, nullptr) < 7) return false;
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  return (edx >> 5) & 1;  // CPUID.(EAX=07H,ECX=0):EDX[5] = UINTR
}

bool kernel_reports_uintr() {
  std::FILE* f = std::fopen("/proc/cpuinfo", "r");
  if (!f) return false;
  char line[8192];
  bool found = false;
  while (!found && std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, "flags", 5) == 0) found = std::strstr(line, " uintr") != nullptr;
  }
  std::fclose(f);
  return found;
}

}  // namespace

[[noreturn]] void refuse_uintr() {
  if (!cpu_has_uintr()) {
    throw ConfigError(
        "preempt=uintr: user interrupts are not available: this CPU does not report UINTR "
        "(CPUID.(EAX=07H,ECX=0):EDX[5] = 0); use timer, dispatcher, flag or hybrid");
  }
  if (!kernel_reports_uintr()) {
    throw ConfigError(
        "preempt=uintr: the CPU has UINTR but the kernel does not enable it (no 'uintr' flag in "
        "/proc/cpuinfo); a kernel with user-interrupt support is needed");
  }
  throw ConfigError(
      "preempt=uintr: this machine supports user interrupts, but this build has no UINTR backend yet "
      "(it could not be tested without the hardware); use timer, dispatcher, flag or hybrid");
}

}  // namespace skyloft
