// log.hpp - skyloftd's log lines on stderr: "skyloftd: LEVEL: message", one write(2) per line.
#pragma once

#include <string_view>

#include <fmt/format.h>

namespace skyloftd {

enum class LogLevel { error = 0, warn = 1, info = 2, debug = 3 };

void set_log_level(LogLevel level);
bool log_enabled(LogLevel level);
void log_line(LogLevel level, std::string_view text);

template <class... A>
void log(LogLevel level, fmt::format_string<A...> f, A&&... args) {
  if (log_enabled(level)) log_line(level, fmt::format(f, std::forward<A>(args)...));
}

}  // namespace skyloftd
