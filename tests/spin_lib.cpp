// spin_lib.cpp - a tiny shared library the preemption-safety tests dlopen after the runtime started: a
// loop whose PC stays inside this library until `stop` is set.
#include <cstdint>

extern "C" __attribute__((visibility("default"))) std::uint64_t skytest_spin_in_lib(const volatile bool* stop) {
  std::uint64_t n = 0;
  while (!*stop) {
    ++n;
    __builtin_ia32_pause();
  }
  return n;
}
