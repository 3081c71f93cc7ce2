// run_program.hpp - runs a program in a child process and collects its stdout, stderr and status (the
// skyloft-run tests compare those of a native run and a run under skyloft-run).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <string>
#include <vector>

#include "child_process.hpp"

namespace posixtest {

struct Outcome {
  std::string out;
  std::string err;
  int status = -1;  // as from waitpid
  bool killed_at_limit = false;  // still running at run()'s time limit: killed with SIGKILL
  bool exited(int code) const { return WIFEXITED(status) && WEXITSTATUS(status) == code; }
};

// Runs argv (argv[0] is a path) with `env` added to the environment; collects stdout and stderr. A
// nonzero `limit`: a child still running then is killed (for runs that may hang by design).
inline Outcome run(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
                   std::chrono::milliseconds limit = std::chrono::milliseconds{0}) {
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) std::abort();
  pid_t pid = fork_test_child();
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(err[1], 2);
    for (const auto& e : env) putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(121);
  }
  close(out[1]);
  close(err[1]);
  Outcome o;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  const auto end = std::chrono::steady_clock::now() + limit;
  while (open_fds > 0) {
    int wait_ms = -1;
    if (limit.count() > 0 && !o.killed_at_limit) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        kill(pid, SIGKILL);  // the pipes then close
        o.killed_at_limit = true;
      } else {
        wait_ms = static_cast<int>(left.count());
      }
    }
    if (poll(fds, 2, wait_ms) < 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? o.out : o.err).append(buf, static_cast<std::size_t>(n));
      }
    }
  }
  waitpid(pid, &o.status, 0);
  return o;
}

}  // namespace posixtest
