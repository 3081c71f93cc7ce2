// fatal.cpp - fatal errors that do not allocate.
#include "core/fatal.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace skyloft {
namespace {

void write_stderr(const char* s) noexcept {
  std::size_t n = std::strlen(s);
  while (n > 0) {
    ssize_t w = ::write(STDERR_FILENO, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<std::size_t>(w);
  }
}

}  // namespace

void sky_fatal(const char* fmt, ...) noexcept {
  char buf[512];
  std::memcpy(buf, "skyloft: ", 9);
  va_list ap;
  va_start(ap, fmt);
  int n = std::vsnprintf(buf + 9, sizeof buf - 11, fmt, ap);
  va_end(ap);
  std::size_t len = 9 + (n < 0 ? 0 : std::min<std::size_t>(static_cast<std::size_t>(n), sizeof buf - 11));
  buf[len] = '\n';
  buf[len + 1] = '\0';
  write_stderr(buf);
  std::abort();
}

}  // namespace skyloft
