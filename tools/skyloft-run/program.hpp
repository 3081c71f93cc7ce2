// program.hpp - finding the program to run and checking that LD_PRELOAD can reach it.
#pragma once

#include <stdexcept>
#include <string>

namespace skyloft_run {

// The program cannot be run under skyloft-run; `status` is the exit status to leave with (127: not found,
// 126: found but not runnable under the library), as a shell does.
struct ProgramError : std::runtime_error {
  ProgramError(int status, const std::string& what) : std::runtime_error(what), status(status) {}
  int status;
};

// The path to exec for `name`: itself when it holds a '/', else the first executable match in $PATH.
// Throws ProgramError when it does not exist, is a directory or is not executable, and when it is an ELF
// file LD_PRELOAD cannot reach: statically linked (no PT_INTERP) or not x86-64. Scripts pass: their
// interpreter is what runs under the library.
std::string resolve_program(const std::string& name);

}  // namespace skyloft_run
