// view.cpp - sampling the region and formatting the table and the JSON snapshot.
#include "view.hpp"

#include <time.h>

#include <fmt/format.h>

namespace skyloft_stat {

using namespace skyloft::multiapp;

namespace {

std::uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

const char* run_state_name(std::uint32_t s) {
  switch (static_cast<AppRunState>(s)) {
    case AppRunState::none: return "-";
    case AppRunState::starting: return "starting";
    case AppRunState::running: return "running";
    case AppRunState::exiting: return "exiting";
  }
  return "?";
}

const AppSample* find_app(const Sample& s, std::uint32_t id, std::uint32_t generation) {
  for (const AppSample& a : s.apps) {
    if (a.id == id && a.generation == generation) return &a;
  }
  return nullptr;
}

// Share of the managed cores' time the app held a core since `prev`; negative if unknown.
double cpu_share(const Sample& now, const Sample* prev, const AppSample& a) {
  if (prev == nullptr || prev->epoch != now.epoch || now.taken_ns <= prev->taken_ns || now.cores.empty()) return -1;
  const AppSample* before = find_app(*prev, a.id, a.generation);
  if (before == nullptr || a.cpu_ns < before->cpu_ns) return -1;
  double span = static_cast<double>(now.taken_ns - prev->taken_ns) * static_cast<double>(now.cores.size());
  return static_cast<double>(a.cpu_ns - before->cpu_ns) / span;
}

std::string app_label(const Sample& s, int id) {
  if (id < 0) return "-";
  for (const AppSample& a : s.apps) {
    if (a.id == static_cast<std::uint32_t>(id)) return fmt::format("{} {}", id, a.name);
  }
  return fmt::format("{} ?", id);
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') out += fmt::format("\\{}", static_cast<char>(c));
    else if (c < 0x20) out += fmt::format("\\u{:04x}", c);
    else out += static_cast<char>(c);
  }
  return out + "\"";
}

}  // namespace

bool take_sample(const MappedRegion& region, Sample& out) {
  ControlSnapshot snap;
  if (!read_control(region.control(), snap)) return false;
  out = Sample{};
  out.taken_ns = now_ns();
  out.epoch = region.control().epoch;
  for (std::uint32_t id = 0; id < kMaxApps; ++id) {
    const AppSnapshot& e = snap.apps[id];
    if (e.state != AppState::registered) continue;
    AppSample a;
    a.id = id;
    a.generation = e.generation;
    a.name = e.name;
    a.app_class = e.app_class;
    a.pid = e.pid;
    a.cores = e.ncores_granted;
    const AppDescriptor* d = region.app(id);
    if (d != nullptr) {
      a.run_state = d->run_state.load(std::memory_order_relaxed);
      a.tasks = d->tasks.load(std::memory_order_relaxed);
      for (std::uint32_t k = 0; k < snap.ncores; ++k) {
        const AppCoreStats* s = app_core_stats(*d, k);
        if (s == nullptr) break;
        a.runqueue += s->runqueue_len.load(std::memory_order_relaxed);
        a.switches_in += s->switches_in.load(std::memory_order_relaxed);
        a.switches_out += s->switches_out.load(std::memory_order_relaxed);
        a.preemptions += s->preemptions.load(std::memory_order_relaxed);
        a.cpu_ns += s->cpu_ns.load(std::memory_order_relaxed);
      }
    }
    out.apps.push_back(std::move(a));
  }
  const CoreTable& table = region.core_table();
  for (std::uint32_t k = 0; k < snap.ncores; ++k) {
    CoreSample c;
    c.cpu = snap.cores[k].cpu;
    c.lc = snap.cores[k].lc;
    if (auto g = unpack_owner(snap.cores[k].grant)) c.granted = static_cast<int>(g->app_id);
    if (const CoreSlot* s = core_slot(table, k)) {
      // The owner word is written by the apps: believe it only if it names a registered app's generation.
      if (auto o = unpack_owner(s->owner.load(std::memory_order_relaxed))) {
        const AppSnapshot& e = snap.apps[o->app_id];
        if (e.state == AppState::registered && (e.generation & 0xffffffu) == o->generation24) c.running = static_cast<int>(o->app_id);
      }
      c.active = s->active.load(std::memory_order_relaxed);
      c.violations = s->violations.load(std::memory_order_relaxed);
      c.handoffs = s->handoffs.load(std::memory_order_relaxed);
      c.reclaims = s->reclaims.load(std::memory_order_relaxed);
    }
    out.cores.push_back(c);
  }
  return true;
}

std::string render_table(const Header& h, const Sample& now, const Sample* prev) {
  std::string out = fmt::format("skyloftd pid {} at {}: {} cores, {} apps, region epoch {:08x}; every {:g} s\n\n",
                                h.daemon_pid, h.socket, now.cores.size(), now.apps.size(), now.epoch, h.interval_s);
  out += fmt::format("{:<5} {:<4} {:<20} {:<20} {:>6} {:>10} {:>9} {:>9}\n", "CORE", "KIND", "GRANTED", "RUNNING",
                     "ACTIVE", "VIOLATIONS", "HANDOFFS", "RECLAIMS");
  for (const CoreSample& c : now.cores) {
    out += fmt::format("{:<5} {:<4} {:<20} {:<20} {:>6} {:>10} {:>9} {:>9}\n", c.cpu, c.lc ? "lc" : "be",
                       app_label(now, c.granted), app_label(now, c.running), c.active, c.violations, c.handoffs, c.reclaims);
  }
  out += fmt::format("\n{:<3} {:<20} {:<5} {:>8} {:<8} {:>5} {:>8} {:>6} {:>9} {:>9} {:>9} {:>6}\n", "ID", "NAME", "CLASS",
                     "PID", "STATE", "CORES", "TASKS", "RUNQ", "SW_IN", "SW_OUT", "PREEMPT", "CPU%");
  if (now.apps.empty()) out += "(no app registered)\n";
  for (const AppSample& a : now.apps) {
    double share = cpu_share(now, prev, a);
    out += fmt::format("{:<3} {:<20} {:<5} {:>8} {:<8} {:>5} {:>8} {:>6} {:>9} {:>9} {:>9} {:>6}\n", a.id, a.name,
                       app_class_name(a.app_class), a.pid, run_state_name(a.run_state), a.cores, a.tasks, a.runqueue,
                       a.switches_in, a.switches_out, a.preemptions,
                       share < 0 ? std::string("-") : fmt::format("{:.1f}", 100 * share));
  }
  return out;
}

std::string render_json(const Header& h, const Sample& now, const Sample* prev) {
  std::string out = fmt::format("{{\"daemon\":{{\"pid\":{},\"socket\":{},\"epoch\":\"{:08x}\",\"ncores\":{},\"napps\":{}}},"
                                "\"interval_s\":{:g},\"cores\":[",
                                h.daemon_pid, json_string(h.socket), now.epoch, now.cores.size(), now.apps.size(), h.interval_s);
  for (std::size_t i = 0; i < now.cores.size(); ++i) {
    const CoreSample& c = now.cores[i];
    out += fmt::format("{}{{\"cpu\":{},\"kind\":\"{}\",\"granted\":{},\"running\":{},\"active\":{},\"violations\":{},"
                       "\"handoffs\":{},\"reclaims\":{}}}",
                       i ? "," : "", c.cpu, c.lc ? "lc" : "be", c.granted < 0 ? "null" : std::to_string(c.granted),
                       c.running < 0 ? "null" : std::to_string(c.running), c.active, c.violations, c.handoffs, c.reclaims);
  }
  out += "],\"apps\":[";
  for (std::size_t i = 0; i < now.apps.size(); ++i) {
    const AppSample& a = now.apps[i];
    double share = cpu_share(now, prev, a);
    out += fmt::format("{}{{\"id\":{},\"generation\":{},\"name\":{},\"class\":\"{}\",\"pid\":{},\"state\":\"{}\","
                       "\"cores\":{},\"tasks\":{},\"runqueue\":{},\"switches_in\":{},\"switches_out\":{},"
                       "\"preemptions\":{},\"cpu_ns\":{},\"cpu_share\":{}}}",
                       i ? "," : "", a.id, a.generation, json_string(a.name), app_class_name(a.app_class), a.pid,
                       run_state_name(a.run_state), a.cores, a.tasks, a.runqueue, a.switches_in, a.switches_out,
                       a.preemptions, a.cpu_ns, share < 0 ? std::string("null") : fmt::format("{:.4f}", share));
  }
  out += "]}\n";
  return out;
}

}  // namespace skyloft_stat
