// app_core.cpp - joining a daemon, and one core's share of the Single Binding Rule and the lcbe rule
// (protocol O1-O5 in app_core.hpp).
#include "core/app_core.hpp"

#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <fstream>

#include <fmt/format.h>

#include "core/kthread.hpp"
#include "core/runtime_core.hpp"
#include "multiapp/client.hpp"
#include "preempt/mechanism.hpp"
#include "skyloft/time.hpp"

namespace skyloft {

namespace ma = multiapp;

namespace {

constexpr std::uint64_t kLcRetryNs = 200'000;       // an LC wanter re-sends its nudge (a deferred signal)
constexpr std::uint64_t kNoOwnerRetryNs = 1'000'000;  // owner gone or unknown: the daemon reassigns; look again
constexpr std::uint64_t kIoPollNs = 200'000;         // a waiting processor with I/O in flight looks this often
constexpr unsigned long kRetrySlackNs = 5'000'000;   // how late a re-sent request may be (O3r): a 250 Hz tick
// O6: how long a kicker waits for an owner that saw the raised word to hand the core over before it sends
// the signal. A polling owner hands over in ~1-2 us (its next preempt point, the yield, the handover).
constexpr std::uint64_t kFlagGraceNs = 4'000;
static_assert(ma::kMaxApps < 32);
constexpr std::uint32_t kAllApps = (1u << ma::kMaxApps) - 1;  // app-id bits; any beyond are corruption

// Posts a (core, app) wake word for that app's generation and wakes its sleeper (nothing for a stale
// generation or a missing word). Async-signal-safe.
void post_and_wake(std::atomic<std::uint32_t>* word, std::uint32_t generation) noexcept {
  if (word != nullptr && ma::post_wake(*word, generation)) ma::futex_wake_shared(*word, 1);
}

// The program's name as an app name: [A-Za-z0-9._-], at most 32 characters.
std::string program_app_name() {
  std::string comm;
  std::ifstream("/proc/self/comm") >> comm;
  std::string out;
  for (char ch : comm) {
    const bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                    ch == '_' || ch == '-';
    out.push_back(ok ? ch : '_');
  }
  if (out.size() > ma::kMaxAppName) out.resize(ma::kMaxAppName);
  return out.empty() ? std::string("app") : out;
}

bool allowed_signal_number(std::uint32_t sig) {
  const int s = static_cast<int>(sig);
  return s == SIGURG || s == SIGUSR1 || s == SIGUSR2 || (s >= SIGRTMIN && s <= SIGRTMAX);
}

// Adds n to a counter of our own descriptor (we are its only writer for this core).
void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

}  // namespace

AppLink::AppLink() = default;

AppLink::~AppLink() { leave_daemon(*this); }

void leave_daemon(AppLink& link) noexcept {
  if (!link.client || !link.client->registered()) return;
  try {
    link.client->report_state(ma::AppRunState::exiting);
    link.client->unregister();
  } catch (...) {
    // The daemon may be gone; it releases the app when the connection closes anyway.
  }
}

std::unique_ptr<AppLink> join_daemon(const Config& cfg) {
  ma::ClientOptions o;
  o.socket_path = *cfg.daemon;
  if (cfg.app_class == "lc") {
    o.app_class = ma::AppClass::lc;
  } else if (cfg.app_class == "be") {
    o.app_class = ma::AppClass::be;
  } else {
    throw ConfigError(fmt::format("app class '{}' is not a class: use 'lc' (latency-critical) or 'be' (best-effort)",
                                  cfg.app_class));
  }
  if (cfg.app_demand < 1 || cfg.app_demand > ma::kMaxManagedCores) {
    throw ConfigError(fmt::format("app demand {} is out of range (1..{} cores)", cfg.app_demand, ma::kMaxManagedCores));
  }
  if (cfg.share_slice_us < 100 || cfg.share_slice_us > 1'000'000) {
    throw ConfigError(fmt::format("share_slice_us {} is out of range (100..1000000 microseconds)", cfg.share_slice_us));
  }
  o.app_name = cfg.app_name.empty() ? program_app_name() : cfg.app_name;
  o.demand = static_cast<std::uint16_t>(cfg.app_demand);

  auto link = std::make_unique<AppLink>();
  try {
    link->client = std::make_unique<ma::DaemonClient>(o);
  } catch (const ma::DaemonError& e) {
    throw ConfigError(e.what());
  }
  const ma::MappedRegion& region = link->client->region();
  link->table = region.core_table_rw();
  link->control = &region.control();
  link->self = region.self();
  link->id = link->client->app_id();
  link->generation = link->client->generation();
  link->me = ma::pack_owner(link->id, link->generation);
  link->lc = o.app_class == ma::AppClass::lc;
  link->slice_ns = std::uint64_t{cfg.share_slice_us} * 1000;
  for (int cpu : link->client->granted_cores()) {
    if (std::optional<std::uint32_t> idx = ma::core_index_of(*link->control, static_cast<std::uint32_t>(cpu))) {
      if (ma::core_slot(*link->table, *idx) == nullptr) continue;
      link->cpus.push_back(cpu);
      link->core_index.push_back(*idx);
    }
  }
  if (link->table == nullptr || link->self == nullptr || link->cpus.empty()) {
    throw ConfigError(fmt::format("skyloft: skyloftd at {} made app {} ('{}') eligible for no core it manages",
                                  o.socket_path, link->id, o.app_name));
  }
  return link;
}

void attach_app_cores(RuntimeCore& rt, AppLink& link) {
  link.self->preempt_token.store(reinterpret_cast<std::uintptr_t>(preempt_signal_token()), std::memory_order_relaxed);
  link.self->preempt_signal.store(static_cast<std::uint32_t>(preempt_signal()), std::memory_order_release);
  for (auto& p : rt.procs) {
    auto c = std::make_unique<AppCore>(link, *p, link.core_index[static_cast<std::size_t>(p->index)]);
    p->app = c.get();
    p->revoke = c.get();
    p->preempt_word = &c->slot_->preempt;  // O6; before the processor runs (attach reads it)
    p->park.set_backend(&c->backend_);  // replaces an I/O poller's ring wait (kIoPollNs bounds the sleep)
    p->poll_bits.fetch_or(kPollRevoke, std::memory_order_relaxed);  // for good: the poll point always looks
    link.cores.push_back(std::move(c));
  }
  link.client->report_state(ma::AppRunState::running);
}

AppCore::AppCore(AppLink& link, Processor& p, std::uint32_t core_index)
    : link_(link),
      p_(p),
      index_(core_index),
      bit_(1u << link.id),
      slot_(ma::core_slot(*link.table, core_index)),
      own_wake_(ma::wake_word(*link.table, core_index, link.id)),
      stats_(ma::app_core_stats(*link.self, core_index)) {}

void AppCore::attached(pid_t tid) noexcept {
  stats_->worker_tid.store(static_cast<std::uint32_t>(tid), std::memory_order_release);
}

bool AppCore::others_want() const noexcept { return (slot_->wanted.load(std::memory_order_relaxed) & ~bit_) != 0; }

bool AppCore::wake_condition() const noexcept {
  return owned_ ? others_want() : slot_->owner.load(std::memory_order_seq_cst) == link_.me;
}

// ---- O5: the park backend on our (core, app) wake word ----

void AppCore::Backend::wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected,
                            std::uint64_t deadline_ns) noexcept {
  const std::uint32_t seen = c_.own_wake_->load(std::memory_order_seq_cst);  // before the condition (O5)
  if (word.load(std::memory_order_seq_cst) != expected || c_.wake_condition()) return;
  std::uint64_t timeout = 0;
  if ((c_.p_.poll_bits.load(std::memory_order_relaxed) & kPollIo) != 0) deadline_ns = std::min(deadline_ns, now_ns() + kIoPollNs);
  if (deadline_ns != UINT64_MAX) {
    const std::uint64_t now = now_ns();
    if (deadline_ns <= now) return;
    timeout = deadline_ns - now;
    if (c_.loose_wait_ && c_.p_.rt->sysmon != nullptr) {
      // O3r: the monitor wakes us for the re-send (it may be late), so the sleep arms no timer: arming
      // and cancelling one was ~80 ns of a ~1.4 us inter-app switch.
      c_.wake_by_monitor(deadline_ns);
      timeout = 0;
    } else {
      // The slack stays as set until a timed sleep needs the other one (no system call per switch).
      set_timer_slack(*c_.p_.kthread.load(std::memory_order_relaxed), c_.loose_wait_ ? kRetrySlackNs : kPreciseTimerSlackNs);
    }
  }
  ma::futex_wait_shared(*c_.own_wake_, seen, timeout);
}

void AppCore::Backend::wake(const std::atomic<std::uint32_t>&) noexcept {
  // O3k first: a kick for a processor waiting for its core also asks the owner for it. The signal goes out
  // before our own thread is woken on that core, where it would compete with the owner for the CPU before
  // the owner handled the signal (signal to handler p99 ~470 -> ~120 us here, 3 runs each).
  RuntimeCore& rt = *c_.p_.rt;
  if (c_.kick_nudge() && rt.sysmon != nullptr && !rt.stopping.load(std::memory_order_seq_cst)) {
    c_.wake_by_monitor(c_.kick_nudged_at_.load(std::memory_order_relaxed) + kLcRetryNs);
    return;  // O3s: the handover wakes it; the ParkWord stays kNotified, so it knows about the work
  }
  c_.wake_thread();
}

void AppCore::wake_thread() noexcept { post_and_wake(own_wake_, link_.generation); }

void AppCore::wake_app(std::uint32_t app_id, std::uint32_t generation) const noexcept {
  post_and_wake(ma::wake_word(*link_.table, index_, app_id), generation);
}

void AppCore::wake_by_monitor(std::uint64_t at) noexcept {
  std::uint64_t cur = monitor_wake_at_.load(std::memory_order_relaxed);
  while ((cur == 0 || at < cur) && !monitor_wake_at_.compare_exchange_weak(cur, at, std::memory_order_relaxed)) {
  }
}

void AppCore::wake_if_due(std::uint64_t now) noexcept {
  std::uint64_t at = monitor_wake_at_.load(std::memory_order_relaxed);
  if (at == 0 || now < at) return;
  if (monitor_wake_at_.compare_exchange_strong(at, 0, std::memory_order_relaxed)) wake_thread();
}

void AppCore::revocation_deferred() const noexcept {
  // Only loads, compare-exchanges and futex calls: async-signal-safe.
  std::uint32_t wanters = slot_->wanted.load(std::memory_order_acquire) & ~bit_ & kAllApps;
  for (; wanters != 0; wanters &= wanters - 1) {
    const auto id = static_cast<std::uint32_t>(std::countr_zero(wanters));
    if (const ma::AppEntry* e = ma::app_entry(*link_.control, id)) wake_app(id, e->generation.load(std::memory_order_relaxed));
  }
}

// ---- O1/O2: entering and leaving the core ----

void AppCore::take(std::uint64_t now) noexcept {
  slot_->wanted.fetch_and(~bit_, std::memory_order_relaxed);
  monitor_wake_at_.store(0, std::memory_order_relaxed);
  ma::checker_enter(*slot_);  // a violation is counted in the region (the tests assert there are none)
  owned_ = true;
  lending_ = false;
  owned_since_ = now;
  stats_->running.store(1, std::memory_order_relaxed);
  bump(stats_->switches_in);
}

void AppCore::give(std::uint32_t to, std::uint64_t now) noexcept {
  stats_->running.store(0, std::memory_order_relaxed);
  bump(stats_->switches_out);
  bump(stats_->cpu_ns, now - owned_since_);
  owned_ = false;
  lending_ = false;
  ma::checker_leave(*slot_);
  slot_->owner.store(to, std::memory_order_seq_cst);
  slot_->handoffs.fetch_add(1, std::memory_order_relaxed);
  if (std::optional<ma::OwnerRef> o = ma::unpack_owner(to)) wake_app(o->app_id, o->generation24);
}

// ---- O4: whom to give the core to ----

std::optional<AppCore::Choice> AppCore::choose(bool idle, std::uint64_t now) noexcept {
  // Running, an LC owner keeps the core for its slice whoever asks: no need to look at the wanters.
  if (!idle && link_.lc && now - owned_since_ < link_.slice_ns) return std::nullopt;
  const std::uint32_t wanted = slot_->wanted.load(std::memory_order_acquire) & ~bit_ & kAllApps;
  if (wanted == 0) return std::nullopt;
  const ma::CoreGrant* grant = ma::core_grant(*link_.control, index_);
  const std::uint32_t eligible = grant != nullptr ? grant->eligible.load(std::memory_order_relaxed) : 0;
  // Round-robin after our own id (fair among equals): bit k of `order` is app (first + k) % kMaxApps, and
  // only the wanters' bits are visited (this runs at every poll point while another app waits).
  const std::uint32_t first = (link_.id + 1) % ma::kMaxApps;
  std::uint32_t order = ((wanted >> first) | (wanted << (ma::kMaxApps - first))) & kAllApps;
  int best = -1;
  bool best_lc = false;
  std::uint32_t best_gen = 0;
  for (; order != 0 && !best_lc; order &= order - 1) {  // the first LC wanter in that order wins
    const std::uint32_t id = (first + static_cast<std::uint32_t>(std::countr_zero(order))) % ma::kMaxApps;
    const std::uint32_t bit = 1u << id;
    const ma::AppEntry* e = ma::app_entry(*link_.control, id);
    const bool live = e != nullptr && (eligible & bit) != 0 &&
                      e->state.load(std::memory_order_acquire) == static_cast<std::uint32_t>(ma::AppState::registered);
    if (!live) {
      slot_->wanted.fetch_and(~bit, std::memory_order_relaxed);  // names no live, eligible app
      continue;
    }
    const bool lc = e->app_class.load(std::memory_order_relaxed) == static_cast<std::uint32_t>(ma::AppClass::lc);
    if (best < 0 || (lc && !best_lc)) {
      best = static_cast<int>(id);
      best_lc = lc;
      best_gen = e->generation.load(std::memory_order_relaxed);
    }
  }
  if (best < 0) return std::nullopt;
  if (!idle) {
    const bool takes = best_lc ? (!link_.lc || now - owned_since_ >= link_.slice_ns)
                               : (!link_.lc && now - owned_since_ >= link_.slice_ns);
    if (!takes) return std::nullopt;
  }
  return Choice{ma::pack_owner(static_cast<std::uint32_t>(best), best_gen), best_lc};
}

void AppCore::poll(Processor&, std::uint64_t now) noexcept {
  if (!owned_ || lending_ || !others_want()) return;
  if (std::optional<Choice> to = choose(false, now)) {
    lending_ = true;  // the gate now preempts the task and picks nothing; the loop hands over
    give_to_ = *to;
  }
}

bool AppCore::lend_and_wait() noexcept {
  // We want the core back (our yielded task waits): say so before the new owner can run, so that its
  // first poll already sees it and this thread has nothing left to do between the wake-up and its sleep.
  slot_->wanted.fetch_or(bit_, std::memory_order_seq_cst);
  const std::uint64_t now = now_ns();
  retry_slack_ = true;  // a re-send to the new owner is never due at once (O3r)
  const std::uint64_t resend = give_to_.lc && !link_.lc ? UINT64_MAX : now + link_.slice_ns;
  give(give_to_.owner, now);
  return wait_core(/*want=*/true, /*armed=*/false, resend);
}

bool AppCore::hand_over_idle() noexcept {
  const std::uint64_t now = now_ns();
  std::optional<Choice> to = choose(true, now);
  if (!to) return false;
  give(to->owner, now);
  return true;
}

void AppCore::leave() noexcept {
  if (!owned_) return;
  const std::uint64_t now = now_ns();
  if (std::optional<Choice> to = choose(true, now)) {
    give(to->owner, now);
    return;
  }
  // Nobody waits: the owner word keeps naming us, and the daemon gives the core to its grant when we
  // unregister (a name of no live app).
  stats_->running.store(0, std::memory_order_relaxed);
  bump(stats_->switches_out);
  bump(stats_->cpu_ns, now - owned_since_);
  owned_ = false;
  ma::checker_leave(*slot_);
}

// ---- O3: waiting for the core ----

const ma::AppEntry* AppCore::live_owner(std::uint32_t owner, ma::OwnerRef& ref) const noexcept {
  std::optional<ma::OwnerRef> o = ma::unpack_owner(owner);
  const ma::AppEntry* e = o ? ma::app_entry(*link_.control, o->app_id) : nullptr;
  if (e == nullptr || e->state.load(std::memory_order_acquire) != static_cast<std::uint32_t>(ma::AppState::registered) ||
      (e->generation.load(std::memory_order_relaxed) & 0xffffffu) != o->generation24) {
    return nullptr;
  }
  ref = *o;
  return e;
}

bool AppCore::handed_over_soon(std::uint32_t owner) const noexcept {
  if (sched_getcpu() == p_.core) return false;
  const std::uint64_t until = now_ns() + kFlagGraceNs;
  do {
    if (slot_->owner.load(std::memory_order_acquire) != owner) return true;
    cpu_relax();
  } while (now_ns() < until);
  return false;
}

void AppCore::interrupt_owner(std::uint32_t owner, const ma::OwnerRef& o, const ma::AppEntry& e, bool grace) const noexcept {
  wake_app(o.app_id, o.generation24);  // an idle owner parks there
  slot_->preempt.store(kPreemptNow, std::memory_order_seq_cst);  // O6: after our `wanted` bit, which the poll reads
  if (grace && handed_over_soon(owner)) {
    stats_->kick_flag_handovers.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const ma::AppDescriptor* d = link_.client->region().app(o.app_id);
  const ma::AppCoreStats* st = d != nullptr ? ma::app_core_stats(*d, index_) : nullptr;
  const std::uint32_t tid = st != nullptr ? st->worker_tid.load(std::memory_order_acquire) : 0;
  const std::uint32_t sig = d != nullptr ? d->preempt_signal.load(std::memory_order_acquire) : 0;
  const std::uint32_t pid = e.pid.load(std::memory_order_relaxed);
  if (tid != 0 && pid != 0 && allowed_signal_number(sig)) {
    // The owner's preemption handler acts on signals that carry its token; its poll point then decides
    // (O4). The kernel delivers only if tid is a thread of pid, so a bad tid reaches no other process.
    siginfo_t info;
    std::memset(&info, 0, sizeof info);
    info.si_signo = static_cast<int>(sig);
    info.si_code = SI_QUEUE;
    info.si_pid = getpid();
    info.si_uid = getuid();
    info.si_value.sival_ptr = reinterpret_cast<void*>(static_cast<std::uintptr_t>(d->preempt_token.load(std::memory_order_relaxed)));
    syscall(SYS_rt_tgsigqueueinfo, static_cast<pid_t>(pid), static_cast<pid_t>(tid), static_cast<int>(sig), &info);
  }
}

std::uint64_t AppCore::nudge(std::uint32_t owner, std::uint64_t now, bool first) noexcept {
  ma::OwnerRef o{};
  const ma::AppEntry* e = live_owner(owner, o);
  if (e == nullptr) return now + kNoOwnerRetryNs;  // no owner, or one that is gone: the daemon reassigns the core
  const bool owner_lc = e->app_class.load(std::memory_order_relaxed) == static_cast<std::uint32_t>(ma::AppClass::lc);
  if (owner_lc && !link_.lc) {  // BE never interrupts LC: it wakes an idle LC owner and waits
    wake_app(o.app_id, o.generation24);
    return UINT64_MAX;
  }
  const bool takes_now = link_.lc && !owner_lc;
  retry_slack_ = !takes_now;  // an LC wanter's re-send is precise: the core is its due at once (O3r)
  if (takes_now) {
    // A kicker interrupted this owner a moment ago, in this wait (O3k): give that signal its retry period.
    const std::uint64_t kicked = kick_nudged_at_.load(std::memory_order_relaxed);
    if (kicked >= waiting_since_.load(std::memory_order_relaxed) && now < kicked + kLcRetryNs) return kicked + kLcRetryNs;
  }
  // An owner of our class keeps the core for its slice: the first nudge does nothing more (it may have just
  // taken the core, and a wake-up or signal now would only slow its switch-in; an idle owner sees our bit
  // before it parks, or at the second nudge); later ones wake and interrupt it, a slice apart: an owner
  // that reaches its poll point hands over at its slice's end by itself (a signal racing with that would
  // only slow the switch), one that does not keeps the core for at most two slices.
  if (!takes_now && first) return now + link_.slice_ns;
  interrupt_owner(owner, o, *e, /*grace=*/false);  // a re-send: the raised word alone did not do it
  return now + (takes_now ? kLcRetryNs : link_.slice_ns);
}

bool AppCore::kick_nudge() noexcept {
  if (!link_.lc) return false;
  const std::uint32_t owner = slot_->owner.load(std::memory_order_seq_cst);
  if (owner == link_.me) return false;  // ours: the kick woke an idle owner, or the waiter is about to take it
  ma::OwnerRef o{};
  const ma::AppEntry* e = live_owner(owner, o);
  if (e == nullptr || e->app_class.load(std::memory_order_relaxed) == static_cast<std::uint32_t>(ma::AppClass::lc)) return false;
  // The first to set our bit asks; while it is set the waiting thread (or an earlier kicker) already has.
  if ((slot_->wanted.fetch_or(bit_, std::memory_order_seq_cst) & bit_) != 0) return false;
  kick_nudged_at_.store(now_ns(), std::memory_order_relaxed);
  interrupt_owner(owner, o, *e, /*grace=*/true);
  stats_->kick_nudges.fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool AppCore::wait_core(bool want, bool armed, std::uint64_t next_nudge) noexcept {
  RuntimeCore& rt = *p_.rt;
  waiting_since_.store(now_ns(), std::memory_order_relaxed);
  rt.nr_parked.fetch_add(1, std::memory_order_seq_cst);  // notify_work_available looks for parked processors
  if (!armed) p_.park.prepare();  // P1, once: the word stays kParked until we leave, so no kick is lost
  bool got = false;
  for (;;) {
    if (p_.park.take_notification()) want = true;  // a kick: work for us
    if (slot_->owner.load(std::memory_order_acquire) == link_.me) {
      got = true;
      break;
    }
    if (rt.stopping.load(std::memory_order_acquire)) break;
    const std::uint64_t now = now_ns();
    const std::uint64_t timer = p_.timers.earliest();
    if (timer <= now) want = true;  // a due timer: its task needs the core
    // Before the first stint, tasks may have been queued before this processor was parked (so nobody
    // kicked it): look at the queue. Later, kicks say it (a queue length some policies only estimate as
    // "1" would make an idle app ask for cores it does not use).
    if (!want && !started_ && p_.policy->nr_waiting(p_.index) > 0) want = true;
    if (want) {
      if ((slot_->wanted.load(std::memory_order_relaxed) & bit_) == 0) slot_->wanted.fetch_or(bit_, std::memory_order_seq_cst);
      if (now >= next_nudge) next_nudge = nudge(slot_->owner.load(std::memory_order_acquire), now, next_nudge == 0);
    }
    const std::uint64_t deadline = want ? next_nudge : timer;  // not wanting: the timer is not due yet
    p_.parked_forever.store(deadline == UINT64_MAX && !want, std::memory_order_release);
    // Only a re-send may be late; the backend bounds a sleep with I/O in flight by its own short poll.
    loose_wait_ = want && retry_slack_ && (p_.poll_bits.load(std::memory_order_relaxed) & kPollIo) == 0;
    if (p_.park.wait_parked(deadline)) want = true;  // P3
    // Awake: re-sends are this thread's again (O3s, O3r).
    if (monitor_wake_at_.load(std::memory_order_relaxed) != 0) monitor_wake_at_.store(0, std::memory_order_relaxed);
    loose_wait_ = false;
    p_.parked_forever.store(false, std::memory_order_relaxed);
  }
  p_.park.cancel();
  rt.nr_parked.fetch_sub(1, std::memory_order_relaxed);
  if (got) {
    started_ = true;
    take(now_ns());
  }
  return got;
}

}  // namespace skyloft
