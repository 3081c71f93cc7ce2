# bench/inprocess-layout.sh - sourced by bench/run-all and bench/run-rocksdb: the in-process layout of a
# configuration. It is the original's (its generator was the dispatcher's loop): the first allowed core is
# the generator's, the others run requests, in every configuration. Skyloft's generator is a poller on the
# runtime's polling thread (the sq dispatcher, or the ticker of the dispatcher/flag/hybrid mechanisms given
# that core with --dispatcher-core). Where the runtime has no polling thread (no preemption on a per-CPU
# policy, the timer mechanism) and for the Linux pool, it is a thread pinned to that core that spins until
# each arrival. Either way it is never late: a sleeping generator that shares the cores with busy server
# threads was late by up to milliseconds, and lateness counts in every latency (measured from the
# intended arrival).
# Skyloft's workers spin while idle instead of parking (--spin-us 1000000: a second), as the original's
# own their cores: a parked worker's core halts, and on the development VM waking a halted vCPU takes
# ~21 us with a tail of milliseconds (guest halt polling is off there), which even 4 us requests at 1% load
# showed (p99.9 0.2-17 ms on sq, fifo and the Linux pool alike). The Linux pool's threads block on a condition variable
# (their core halts); measured, that costs its p50 ~40 us and its tail as much.
# Sets: gen_core, req_cores (list), all_list (list), nreq (number of request cores). Defines:
#   inprocess_layout CONFIG MECHANISM   the server flags of CONFIG (linux*, sq-*, *-none, or a preemptive
#                                       per-CPU configuration using MECHANISM)
read -r -a layout_cores <<< "$(/usr/bin/python3 -c 'import os; print(" ".join(map(str, sorted(os.sched_getaffinity(0)))))')"
if [ "${#layout_cores[@]}" -lt 2 ]; then
  echo "$(basename "$0"): needs at least 2 cores (a generator core and a request core)" >&2
  exit 2
fi
gen_core=${layout_cores[0]}
req_cores=$(IFS=,; echo "${layout_cores[*]:1}")
all_list=$(IFS=,; echo "${layout_cores[*]}")
nreq=$(( ${#layout_cores[@]} - 1 ))

inprocess_layout() {
  local own_thread="--cores $req_cores --gen-core $gen_core --gen-wait spin"
  local poller="--cores $all_list --dispatcher-core $gen_core --generator poller"
  local spin="--spin-us 1000000"
  case "$1" in
    linux*) echo "$own_thread" ;;
    sq-*) echo "$poller $spin" ;;  # the dispatcher polls
    *-none) echo "$own_thread $spin" ;;  # a per-CPU policy without preemption has no polling thread
    *) case "$2" in dispatcher|flag|hybrid) echo "$poller $spin" ;;  # the ticker, given the core, polls
         *) echo "$own_thread $spin" ;; esac ;;
  esac
}
