// app_core.hpp - the runtime under a daemon: one core of the daemon's set as one application's processor
// sees it. The Single Binding Rule (on each core at most one worker of all applications is active) and
// the lcbe cross-application rule, decided on the cores themselves; skyloftd only admits and releases apps.
//
// Every app keeps one processor per core it is eligible for (the daemon's assignment). Per core the
// region's core table holds the owner word (the app whose worker may run there), one shared-futex wake
// word per app, the `wanted` mask (apps with work for the core) and the checker count `active`.
//
// The protocol of a core (worker W of app A on core c; "owner" = the core's owner word):
//   O1. W runs tasks only while owner == A, between checker_enter and checker_leave.
//   O2. Only the owner's worker changes the owner word (the daemon too, for an owner that is gone). To
//       hand over to B: checker_leave, publish owner = B (seq_cst), then post B's wake word and wake it.
//   O3. A worker that is not the owner sleeps on its own wake word. With work (a task of its own queued,
//       a kick, a due timer) it sets its bit in `wanted` and nudges the owner: posts the owner's wake word
//       (an idle owner parked there) and, if it may take the core (LC from a BE owner: at once; same class:
//       from the second nudge, a slice later; BE never from an LC owner), sends the owner's worker its
//       preemption signal with the owner's token (descriptor), again every retry period while it waits.
//   O3k. A kick (park.hpp W2) for an LC processor waiting for a core a BE app holds does the same from the
//       kicker's thread, once per wanting episode (the kicker that sets the `wanted` bit): the waiting
//       thread would otherwise first have to be scheduled on that very core, where the BE worker it is
//       about to interrupt runs and the kernel may let it finish its slice (core acquisition p99 was
//       ~330 us). The waiting thread's own nudges then start one retry period later. A kicker racing with
//       the handover can leave our bit set after take(): it costs at most one needless round trip.
//   O3s. That kick does not wake the waiting thread either: woken, it would run on that very core before
//       the owner's handler and delay it (acquisition p50 23 -> 14 us, p99 ~100 -> ~65 us here without
//       it); the handover wakes it (O2). Its re-sends still happen: an owner whose handler defers the
//       signal (O3d) wakes the wanters of the core, and the monitor wakes a thread whose kick went
//       unanswered for kLcRetry (wake_if_due: a signal that reached no handler). Not while the runtime
//       stops, nor without a monitor.
//   O3d. An owner whose preemption handler cannot act on another app's signal now (the task's PC is in
//       libc, or in a blocking system call) posts and wakes the wake words of the core's wanters, so
//       that they re-send it (revocation_deferred: async-signal-safe). A request that came within a
//       run's first quantum is not ignored as a stale tick (signal.cpp, preemption.cpp).
//   O3r. Re-sending: the nudge returns when to ask again (an LC wanter: every kLcRetry; one of the owner's
//       class: every slice). For the same class, the waiting thread sleeps until then with a timer slack
//       of kRetrySlack (a re-send may come ~5 ms late, with the kernel's next tick; an LC wanter's stays
//       precise, the core is due to it at once): a precise timed sleep made the
//       kernel program the timer hardware on arming and cancelling it, a VM exit each, ~3 us of a ~7 us
//       inter-app switch here. The thread's slack changes only when a timed sleep needs the other one
//       (set_timer_slack, kthread.hpp), and a task's blocking call restores the precise one (handoff.cpp):
//       two prctl calls per switch were ~0.1 us of a ~1.5 us switch on a faster machine. With a monitor
//       thread, the same-class sleep arms no timer at all: the monitor wakes the thread (wake_if_due, at
//       its period of at most 2 ms, within the slack). So an owner whose task never reaches a poll point
//       keeps a core it owes for up to a slice plus ~5 ms; one that does hands it over at its slice's end.
//   O4. The owner decides, at its poll point (kPollRevoke, set for good on every processor under a
//       daemon: the preemption signal passes it too) and in its idle loop:
//         - running tasks: an LC wanter takes the core from a BE owner at once; a wanter of the owner's
//           own class after the owner held the core for share_slice_us; a BE wanter never takes it from
//           an LC owner that has work;
//         - idle (nothing to pick or steal): any wanter, LC first, then round-robin after the owner's id.
//       Giving the core away while a task runs: the poll marks the processor `lending`; the gate policy
//       (app_gate.cpp) then makes tick() say "preempt" and pick_next()/balance() return nothing, so the
//       task is yielded back to the app's queue and the thread returns to its loop, which hands over (O2)
//       and waits as in O3, wanting the core back.
//   O5. Sleeping without losing a wake-up: the backend reads its wake word BEFORE it re-checks the
//       condition it sleeps on (not the owner: owner == A; the idle owner: another bit in `wanted`), and
//       every poster changes that condition BEFORE posting the word. Local kicks go through the ParkWord
//       (park.hpp P1-P3) and post the same word.
//   O6. Interrupting without a signal first. Every app's processor for a core raises and clears one word,
//       the core slot's `preempt`: the skyloft_preempt_word of whichever worker runs tasks there (only the
//       owner does, O1), so a stale raise costs the next owner one look at its poll point. An interrupt
//       (O3, O3k) raises that word before anything else; a task of the owner that reaches a preempt point
//       or enters the runtime sees it at once and its poll point decides (O4), with no signal (whose
//       delivery here is ~25 us at p50 and over 100 us at p99). A kicker (O3k) then watches the owner word
//       for kFlagGraceNs and sends the signal only if the core was not handed over by then (a task that
//       makes no preempt points, a thread off its CPU); re-sends (O3r) always signal. Not done from the
//       owner's own CPU: its thread is not running while the kicker runs there.
// A wanter id is trusted only if the control directory says registered and the core's eligible mask has
// it; any other bit is cleared. Every index read from the region goes through shm_layout.hpp's accessors.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "core/park.hpp"
#include "core/processor.hpp"
#include "multiapp/shm_layout.hpp"
#include "skyloft/config.hpp"

namespace skyloft {

namespace multiapp {
class DaemonClient;
}

class AppCore;

// The application's membership of a daemon: one per runtime, created before the processors exist.
struct AppLink {
  std::unique_ptr<multiapp::DaemonClient> client;
  multiapp::CoreTable* table = nullptr;          // read-write
  const multiapp::ControlTable* control = nullptr;
  multiapp::AppDescriptor* self = nullptr;        // this app's descriptor (read-write)
  std::uint32_t id = 0;                           // app id
  std::uint32_t generation = 0;
  std::uint32_t me = 0;                           // our owner word (pack_owner(id, generation))
  bool lc = false;                                // class LC
  std::uint64_t slice_ns = 0;                     // Config::share_slice_us
  std::vector<int> cpus;                          // the cores to start processors on, in worker order
  std::vector<std::uint32_t> core_index;          // their managed-core indices (same order)
  std::vector<std::unique_ptr<AppCore>> cores;    // by worker index, filled by attach_app_cores()

  AppLink();
  ~AppLink();  // unregisters (the daemon hands our cores on)
};

// Registers with the daemon at Config::daemon and maps the region. Throws ConfigError (bad class, name,
// demand or slice; no daemon; no core granted).
std::unique_ptr<AppLink> join_daemon(const Config& config);
// Wraps the policy so that a processor giving its core away picks nothing (app_gate.cpp).
std::unique_ptr<Policy> make_app_gate(std::unique_ptr<Policy> inner, AppLink& link);
// Reports the app exiting and unregisters (idempotent; the destructor does it too). After the threads stop.
void leave_daemon(AppLink& link) noexcept;
// Gives every processor its AppCore (poll source, park backend, kPollRevoke). After io_start, before the
// processors run.
void attach_app_cores(RuntimeCore& rt, AppLink& link);

class AppCore final : public PollSource {
 public:
  AppCore(AppLink& link, Processor& p, std::uint32_t core_index);

  // ---- the processor's driving thread only ----
  bool owned() const noexcept { return owned_; }
  bool lending() const noexcept { return lending_; }
  bool gated() const noexcept { return !owned_ || lending_; }  // the gate policy picks nothing
  // A kernel thread attached to the processor (start, blocked-thread hand-off): it is the revocation
  // signal's target now.
  void attached(pid_t tid) noexcept;
  // Not the owner: sleeps until the core is ours (O3). `want`: ask for it now. `armed`: the caller already
  // did ParkWord::prepare (a kick since then means work). Returns false when the runtime stops.
  bool wait_for_core(bool want, bool armed) noexcept { return wait_core(want, armed, 0); }
  // Lending (the poll decided): hands the core over (O2) and waits to get it back, as wait_for_core(true,
  // false) but without the first nudge (O3): the new owner was just woken and owes the core back no sooner
  // than its slice (an LC app taking it from us: when it is idle).
  bool lend_and_wait() noexcept;
  // Owner: another app's worker asks for the core (one shared load).
  bool others_want() const noexcept;
  // Owner with nothing to run: hands the core to the best wanter (O4). False if no wanter is valid.
  bool hand_over_idle() noexcept;
  // The runtime stops: gives the core to a wanter, or leaves the owner word for the daemon to reassign.
  void leave() noexcept;
  // kPollRevoke (O4, running tasks).
  void poll(Processor& p, std::uint64_t now) noexcept override;

  // ---- other threads ----
  // The core's owner word names another app (a hint: it may change at once).
  bool lent() const noexcept { return slot_->owner.load(std::memory_order_relaxed) != link_.me; }
  // O3d, in the preemption handler of the driving thread: another app's request could not be acted on.
  void revocation_deferred() const noexcept;
  // The monitor (O3s, O3r): wakes the waiting thread if the time it was to be woken at has come.
  void wake_if_due(std::uint64_t now) noexcept;
  // Posts our wake word and wakes the thread sleeping on it (shutdown: a ParkWord left kNotified by a kick
  // that did not wake the thread, O3s, makes ParkWord::unpark a no-op).
  void wake_thread() noexcept;

 private:
  class Backend final : public ParkBackend {
   public:
    explicit Backend(AppCore& c) : c_(c) {}
    void wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected, std::uint64_t deadline_ns) noexcept override;
    void wake(const std::atomic<std::uint32_t>& word) noexcept override;

   private:
    AppCore& c_;
  };

  struct Choice {
    std::uint32_t owner;  // the owner word to publish
    bool lc;              // the chosen app is LC
  };
  std::optional<Choice> choose(bool idle, std::uint64_t now) noexcept;
  // O3; `next_nudge` 0: nudge at once (a first nudge), else the first re-send's time.
  bool wait_core(bool want, bool armed, std::uint64_t next_nudge) noexcept;
  std::uint64_t nudge(std::uint32_t owner, std::uint64_t now, bool first) noexcept;
  // The owner word's app if it is registered with that generation (ref filled), else null.
  const multiapp::AppEntry* live_owner(std::uint32_t owner, multiapp::OwnerRef& ref) const noexcept;
  // Posts app_id's wake word on this core for that generation and wakes its sleeper (any thread, and the
  // signal handler).
  void wake_app(std::uint32_t app_id, std::uint32_t generation) const noexcept;
  // Posts the owner's wake word, raises the core's preemption word (O6) and sends the owner's worker on
  // this core the preemption signal; with `grace`, only if the owner word still names that owner after
  // kFlagGraceNs (any thread).
  void interrupt_owner(std::uint32_t owner, const multiapp::OwnerRef& o, const multiapp::AppEntry& e,
                       bool grace) const noexcept;
  // O6: spins up to kFlagGraceNs for the owner word to move away from `owner`; false at once on the core
  // itself.
  bool handed_over_soon(std::uint32_t owner) const noexcept;
  // O3k, on the kicker's thread (any thread of this app).
  // Returns true if it interrupted the owner (this kicker set our `wanted` bit).
  bool kick_nudge() noexcept;
  void wake_by_monitor(std::uint64_t at) noexcept;
  void take(std::uint64_t now) noexcept;
  void give(std::uint32_t to, std::uint64_t now) noexcept;
  bool wake_condition() const noexcept;

  AppLink& link_;
  Processor& p_;
  const std::uint32_t index_;          // managed-core index
  const std::uint32_t bit_;            // 1 << app id
  multiapp::CoreSlot* const slot_;
  std::atomic<std::uint32_t>* const own_wake_;
  multiapp::AppCoreStats* const stats_;
  Backend backend_{*this};
  // Driving thread only. owned_ is also read by the backend's wait (the same thread).
  bool owned_ = false;
  bool lending_ = false;
  bool started_ = false;               // owned the core once
  Choice give_to_{};                   // whom to give the core to when lending
  std::uint64_t owned_since_ = 0;
  bool retry_slack_ = false;           // the last nudge's re-send may be late (O3r: same class only)
  bool loose_wait_ = false;            // the sleep in progress is such a re-send's (O3r)
  // When a kicker last interrupted the owner for us (O3k). Written by kickers, read by the waiting thread.
  std::atomic<std::uint64_t> kick_nudged_at_{0};
  // When the monitor must wake the waiting thread (0: never): a kick it slept through asks the owner again
  // then (O3s), or its own re-send is due (O3r). Kickers and the waiting thread (before it sleeps) lower
  // it (wake_by_monitor); the thread (awake again) and the monitor (waking it) clear it.
  std::atomic<std::uint64_t> monitor_wake_at_{0};
  // When the current wait for the core began (a kick before it belongs to an earlier wait). The waiting
  // thread writes, the monitor reads (through nudge).
  std::atomic<std::uint64_t> waiting_since_{0};

  friend void attach_app_cores(RuntimeCore& rt, AppLink& link);
};

}  // namespace skyloft
