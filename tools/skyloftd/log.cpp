// log.cpp - level filter and the single-write line format.
#include "log.hpp"

#include <unistd.h>

#include <string>

namespace skyloftd {
namespace {

LogLevel g_level = LogLevel::info;

const char* level_name(LogLevel l) {
  switch (l) {
    case LogLevel::error: return "error";
    case LogLevel::warn: return "warn";
    case LogLevel::info: return "info";
    case LogLevel::debug: return "debug";
  }
  return "?";
}

}  // namespace

void set_log_level(LogLevel level) { g_level = level; }
bool log_enabled(LogLevel level) { return static_cast<int>(level) <= static_cast<int>(g_level); }

void log_line(LogLevel level, std::string_view text) {
  // One write per line, so lines from a restarted daemon or a test harness never interleave mid-line.
  std::string line = fmt::format("skyloftd: {}: {}\n", level_name(level), text);
  ssize_t ignored = write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace skyloftd
