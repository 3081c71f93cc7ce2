// servers.hpp - the synthetic server's modes: network servers on skyloft and on a Linux thread pool, and
// the in-process generator on either (no network).
#pragma once

#include <atomic>
#include <thread>

#include "server_options.hpp"

namespace skyloft::synthetic {

// Set by SIGINT / SIGTERM or when --seconds pass; the network servers return soon after.
extern std::atomic<bool> g_stop;
// SIGINT and SIGTERM set g_stop.
void install_stop_signals();
// A thread that sets g_stop after `seconds` (or returns once it is set).
std::thread stop_after(double seconds);

// Serve the synthetic protocol until g_stop. Return the process exit status.
int serve_skyloft(const ServerOptions& o);
int serve_linux(const ServerOptions& o);

// Sweep the --rates with an in-process generator; prints the table and writes the CSV (report.hpp).
int run_inprocess(const ServerOptions& o);

// The whole program after parsing: the in-process sweep, or the network server of o.mode until SIGINT,
// SIGTERM or --seconds. Returns the process exit status. `o` must outlive the call (tasks refer to it).
int run_server(const ServerOptions& o);

}  // namespace skyloft::synthetic
