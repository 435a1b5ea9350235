#!/usr/bin/env bash
# `leakwatch memleak -p --inject`: what it costs, in one run.
#
#   bench/inject.sh BUILD_DIR
#
# 1. Per-pair cost and CPU on bench/run.sh's programs (the tight malloc/free loop and the
#    realistic workload), interleaved rounds, with the peers measured in the same run:
#    untraced, injected sampled (--sample-bytes 512K, -s 1000) and exact, plain attach
#    (uprobes, -s 1000 and exact), and bpftrace running BCC memleak's probe set.
# 2. The pause the process sees: bench_inject_pause (THREADS spinning threads that note the
#    longest gap between two looks at the clock, while allocating) is injected into
#    PAUSE_RUNS times, each time into a fresh process; the longest gap during the injection
#    is compared with the longest gap over an equal window without one (the scheduler's
#    share on this machine).  leakwatch's own figures (all threads stopped, the loading
#    thread) come from its -v line.
#
# Knobs: ROUNDS (5), PROGRAMS ("fixed workload"), PAUSE_RUNS (10), PAUSE_THREADS ("1 4 16"),
# RESULTS_DIR (bench/results).  Output: markdown on stdout and RESULTS_DIR/inject-latest.md.
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 BUILD_DIR" >&2; exit 1; }
BUILD_DIR=$(cd "$1" && pwd)
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
RESULTS_DIR=${RESULTS_DIR:-$BENCH_DIR/results}
PAUSE_RUNS=${PAUSE_RUNS:-10}
PAUSE_THREADS=${PAUSE_THREADS:-"1 4 16"}
LEAKWATCH=$BUILD_DIR/leakwatch
PAUSER=$BUILD_DIR/bench/bench_inject_pause
[[ $(id -u) -eq 0 ]] || { echo "inject.sh: needs root" >&2; exit 1; }
[[ -x $PAUSER ]] || { echo "inject.sh: $PAUSER not built" >&2; exit 1; }
mkdir -p "$RESULTS_DIR"
out=$RESULTS_DIR/inject-latest.md
WORK=$(mktemp -d /tmp/leakwatch-inject-bench.XXXXXX)
pid=""
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

# ---- 1. per-pair cost ----
TRACERS="none lw-inject512k lw-inject-s1000 lw-inject-exact lw-s1000 lw-exact peer" \
  PROGRAMS=${PROGRAMS:-"fixed workload"} ROUNDS=${ROUNDS:-5} RESULTS_DIR=$RESULTS_DIR \
  "$BENCH_DIR/run.sh" "$BUILD_DIR" >"$WORK/cost.md"

# ---- 2. pause ----
# gap THREADS INJECT(0|1): one run; prints "max_gap_us lw_all_ms lw_thread_ms".
gap() {
  local threads=$1 inject=$2
  coproc P { "$PAUSER" "$threads"; }
  pid=$P_PID
  read -r line <&"${P[0]}"  # ready
  sleep 1
  echo reset >&"${P[1]}"; read -r line <&"${P[0]}"
  local all="-" one="-"
  if ((inject)); then
    "$LEAKWATCH" memleak -p "$pid" --inject --sample-bytes 512K -v --duration 0.1 >/dev/null 2>"$WORK/lw.err" || true
    all=$(sed -n 's/.* threads paused \([0-9.]*\) ms.*/\1/p' "$WORK/lw.err" | head -1)
    one=$(sed -n 's/.*the loading thread \([0-9.]*\) ms.*/\1/p' "$WORK/lw.err" | head -1)
  else
    sleep 0.3
  fi
  echo report >&"${P[1]}"; read -r line <&"${P[0]}"
  echo quit >&"${P[1]}"
  wait "$pid" 2>/dev/null || true
  pid=""
  echo "${line#max_gap_us } ${all:--} ${one:--}"
}
median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print "-"; else print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
{
  cat "$WORK/cost.md"
  echo
  echo "### pause seen by the process (bench_inject_pause, $PAUSE_RUNS runs each, medians; max over runs in brackets)"
  echo
  echo "| threads | longest gap, no injection (ms) | longest gap, injection (ms) | leakwatch: all threads stopped (ms) | leakwatch: loading thread stopped (ms) |"
  echo "|---|---|---|---|---|"
  for t in $PAUSE_THREADS; do
    : >"$WORK/base"; : >"$WORK/inj"
    for ((i = 0; i < PAUSE_RUNS; i++)); do
      gap "$t" 0 >>"$WORK/base"
      gap "$t" 1 >>"$WORK/inj"
    done
    b=$(awk '{print $1/1000}' "$WORK/base" | median); bmax=$(awk '{print $1/1000}' "$WORK/base" | sort -n | tail -1)
    g=$(awk '{print $1/1000}' "$WORK/inj" | median); gmax=$(awk '{print $1/1000}' "$WORK/inj" | sort -n | tail -1)
    a=$(awk '{print $2}' "$WORK/inj" | median); o=$(awk '{print $3}' "$WORK/inj" | median)
    echo "| $t | $b [$bmax] | $g [$gmax] | $a | $o |"
  done
  echo
  echo "Kernel $(uname -r), $(nproc --all) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%Y-%m-%d %H:%M UTC')."
} | tee "$out"
