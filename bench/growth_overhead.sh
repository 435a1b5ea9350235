#!/usr/bin/env bash
# Overhead of `leakwatch growth` on the programs it traces, against no tracer in the same run.
#
#   bench/growth_overhead.sh BUILD_DIR
#
# Programs, each timed inside itself after the start signal (bench/bench_start.h):
#   faults    bench/growth_faults.c: maps 64 MiB, touches every page, unmaps; FAULT_ROUNDS
#             times (the worst case: nothing but first-touch faults)
#   workload  bench/workload.cpp: a small C++ service's allocation pattern (strings, maps,
#             zlib), WORKLOAD_ROUNDS rounds; it faults rarely once warm
# Tracers, attached with -p to the already running program ("Tracing memory growth of pid"):
#   none            no tracer
#   growth          leakwatch growth -p PID (defaults: 1 in 16 fault stacks, fp walker, rss)
#   growth-kernel   the same with --stack-walker kernel
#   growth-norss    the same with --no-rss
#   growth-all      --sample-faults 1: every fault's stack
# Rounds are interleaved (every tracer and program once per round, the order rotated) and
# medians reported: the machine is shared and noisy.  Two clocks: wall (CLOCK_MONOTONIC) and
# process CPU time (the BPF programs run in the faulting thread and are counted there).
# The "paired" columns are the median over rounds of (run with tracer / run without - 1),
# both runs of a round taken minutes apart at most: steadier than a ratio of medians when
# the machine's speed drifts.
#
# Knobs: ROUNDS (7), FAULT_ROUNDS (5), WORKLOAD_ROUNDS (1500), PROGRAMS ("faults workload"),
# TRACERS (the five above).  Output: a markdown table on stdout.
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 BUILD_DIR" >&2; exit 1; }
BUILD_DIR=$1
ROUNDS=${ROUNDS:-7}
FAULT_ROUNDS=${FAULT_ROUNDS:-5}
WORKLOAD_ROUNDS=${WORKLOAD_ROUNDS:-1500}
PROGRAMS=${PROGRAMS:-"faults workload"}
TRACERS=${TRACERS:-"none growth growth-kernel growth-norss growth-all"}
LW=$BUILD_DIR/leakwatch
FAULTS=$BUILD_DIR/bench/bench_growth_faults
WORKLOAD=$BUILD_DIR/bench/bench_workload

die() { echo "bench: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "needs root"
for f in "$LW" "$FAULTS" "$WORKLOAD"; do [[ -x $f ]] || die "$f not built"; done

WORK=$(mktemp -d /tmp/growth-bench.XXXXXX)
prog_pid="" tracer_pid=""
cleanup() {
  [[ -n $tracer_pid ]] && kill "$tracer_pid" 2>/dev/null || true
  [[ -n $prog_pid ]] && kill "$prog_pid" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() {  # FILE PATTERN PID TIMEOUT
  local deadline=$((SECONDS + $4))
  while ! grep -q -- "$2" "$1" 2>/dev/null; do
    kill -0 "$3" 2>/dev/null || return 1
    ((SECONDS < deadline)) || return 1
    sleep 0.05
  done
}

run_one() {  # PROGRAM TRACER -> result_line
  local prog=$1 tracer=$2 pout=$WORK/p.out perr=$WORK/p.err tout=$WORK/t.out
  : >"$pout"; : >"$perr"; : >"$tout"
  case $prog in
    faults) BENCH_WAIT_SIGNAL=1 "$FAULTS" "$FAULT_ROUNDS" 64 >"$pout" 2>"$perr" & ;;
    workload) BENCH_WAIT_SIGNAL=1 "$WORKLOAD" "$WORKLOAD_ROUNDS" >"$pout" 2>"$perr" & ;;
  esac
  prog_pid=$!
  wait_for "$perr" ready "$prog_pid" 60 || die "$prog did not start: $(cat "$perr")"
  local -a lw=("$LW" growth -p "$prog_pid" 3600)
  case $tracer in
    none) tracer_pid="" ;;
    growth) "${lw[@]}" >"$tout" 2>&1 & tracer_pid=$! ;;
    growth-kernel) "${lw[@]}" --stack-walker kernel >"$tout" 2>&1 & tracer_pid=$! ;;
    growth-norss) "${lw[@]}" --no-rss >"$tout" 2>&1 & tracer_pid=$! ;;
    growth-all) "${lw[@]}" --sample-faults 1 >"$tout" 2>&1 & tracer_pid=$! ;;
    *) die "unknown tracer $tracer" ;;
  esac
  if [[ -n $tracer_pid ]]; then
    wait_for "$tout" "Tracing memory growth of pid" "$tracer_pid" 60 ||
      die "$tracer did not attach: $(tail -3 "$tout")"
  fi
  kill -USR1 "$prog_pid"
  wait "$prog_pid" || die "$prog failed under $tracer: $(cat "$perr")"
  prog_pid=""
  if [[ -n $tracer_pid ]]; then
    wait "$tracer_pid" 2>/dev/null || true  # it ends with its target (exit status 3)
    tracer_pid=""
  fi
  result_line=$(head -1 "$pout")
}

field() { grep -o "$2=[0-9.]*" <<<"$1" | cut -d= -f2; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

declare -A wall cpu round_wall round_cpu
read -ra tracers <<<"$TRACERS"
n=${#tracers[@]}
for ((r = 0; r < ROUNDS; r++)); do
  for prog in $PROGRAMS; do
    for ((i = 0; i < n; i++)); do
      t=${tracers[$(((i + r) % n))]}
      run_one "$prog" "$t"
      wall[$prog,$t]+="$(field "$result_line" total_ns) "
      cpu[$prog,$t]+="$(field "$result_line" cpu_ns) "
      round_wall[$prog,$t,$r]=$(field "$result_line" total_ns)
      round_cpu[$prog,$t,$r]=$(field "$result_line" cpu_ns)
      echo "round $r $prog $t: $result_line" >&2
    done
  done
done

# paired PROG TRACER ARRAY -> median over rounds of ARRAY[tracer]/ARRAY[none] - 1, in %
paired() {
  local -n a=$3
  for ((r = 0; r < ROUNDS; r++)); do
    awk -v x="${a[$1,$2,$r]}" -v b="${a[$1,none,$r]}" 'BEGIN { printf "%.4f\n", 100 * (x / b - 1) }'
  done | median
}

echo "| program | tracer | wall ms (median) | cpu ms (median) | wall overhead | cpu overhead | wall paired | cpu paired |"
echo "|---|---|---|---|---|---|---|---|"
for prog in $PROGRAMS; do
  base_w=$(tr ' ' '\n' <<<"${wall[$prog,none]}" | grep -v '^$' | median)
  base_c=$(tr ' ' '\n' <<<"${cpu[$prog,none]}" | grep -v '^$' | median)
  for t in "${tracers[@]}"; do
    w=$(tr ' ' '\n' <<<"${wall[$prog,$t]}" | grep -v '^$' | median)
    c=$(tr ' ' '\n' <<<"${cpu[$prog,$t]}" | grep -v '^$' | median)
    pw=$(paired "$prog" "$t" round_wall)
    pc=$(paired "$prog" "$t" round_cpu)
    awk -v p="$prog" -v t="$t" -v w="$w" -v c="$c" -v bw="$base_w" -v bc="$base_c" \
        -v pw="$pw" -v pc="$pc" \
      'BEGIN { printf "| %s | %s | %.1f | %.1f | %+.1f%% | %+.1f%% | %+.1f%% | %+.1f%% |\n",
               p, t, w/1e6, c/1e6, 100*(w-bw)/bw, 100*(c-bc)/bc, pw, pc }'
  done
done
