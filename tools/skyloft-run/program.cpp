// program.cpp - resolving the program through $PATH and reading its ELF header (PT_INTERP, machine).
#include "program.hpp"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include <fmt/format.h>

namespace skyloft_run {
namespace {

bool is_executable_file(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

std::string search_path(const std::string& name) {
  const char* env = std::getenv("PATH");
  std::string_view dirs = env ? env : "/usr/local/bin:/usr/bin:/bin";
  for (std::size_t pos = 0;;) {
    std::size_t colon = dirs.find(':', pos);
    std::string_view dir = dirs.substr(pos, colon == std::string_view::npos ? std::string_view::npos : colon - pos);
    std::string candidate = fmt::format("{}/{}", dir.empty() ? "." : dir, name);
    if (is_executable_file(candidate)) return candidate;
    if (colon == std::string_view::npos) break;
    pos = colon + 1;
  }
  throw ProgramError(127, fmt::format("program '{}' not found in PATH", name));
}

void check_file(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    throw ProgramError(127, fmt::format("program '{}': {}", path, std::strerror(errno)));
  }
  if (S_ISDIR(st.st_mode)) throw ProgramError(126, fmt::format("program '{}' is a directory", path));
  if (access(path.c_str(), X_OK) != 0) {
    throw ProgramError(126, fmt::format("program '{}' is not executable: {}", path, std::strerror(errno)));
  }
}

// ELF programs must be x86-64 and dynamically linked (a PT_INTERP header names the dynamic loader, which is
// what reads LD_PRELOAD). Anything else that the kernel runs (a '#!' script) is left to the kernel.
void check_elf(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw ProgramError(126, fmt::format("program '{}' cannot be read: {}", path, std::strerror(errno)));
  Elf64_Ehdr eh{};
  bool elf = pread(fd, &eh, sizeof eh, 0) == static_cast<ssize_t>(sizeof eh) && std::memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0;
  if (!elf) {
    close(fd);
    return;
  }
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64) {
    close(fd);
    throw ProgramError(126, fmt::format("program '{}' is not an x86-64 program; the skyloft library is", path));
  }
  bool interp = false;
  for (unsigned i = 0; i < eh.e_phnum && !interp; ++i) {
    Elf64_Phdr ph{};
    off_t at = static_cast<off_t>(eh.e_phoff + static_cast<std::uint64_t>(i) * eh.e_phentsize);
    if (pread(fd, &ph, sizeof ph, at) != static_cast<ssize_t>(sizeof ph)) break;
    interp = ph.p_type == PT_INTERP;
  }
  close(fd);
  if (!interp) {
    throw ProgramError(126, fmt::format("program '{}' is statically linked: LD_PRELOAD cannot reach it (skyloft-run "
                                        "needs a dynamically linked program)",
                                        path));
  }
}

}  // namespace

std::string resolve_program(const std::string& name) {
  if (name.empty()) throw ProgramError(127, "the program name is empty");
  std::string path = name.find('/') != std::string::npos ? name : search_path(name);
  check_file(path);
  check_elf(path);
  return path;
}

}  // namespace skyloft_run
