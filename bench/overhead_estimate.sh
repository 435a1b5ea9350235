#!/usr/bin/env bash
# The overhead guard's estimate against the slowdown it estimates, on allocation-heavy
# programs: bench_alloc_work N WORK, malloc(64)+free pairs with WORK xorshift rounds
# between them (WORK=0: a tight loop, the worst case for uprobes; the default 200: about
# the ~250 ns per pair of a service doing 4 M pairs a second).
#
#   bench/overhead_estimate.sh BUILD_DIR          (needs root and bpftrace)
#
# Each round (rounds interleaved, medians reported; the machine is shared and noisy):
#   none        the loop untraced: CPU ns per pair (process CPU time around the timed loop)
#   lw-s1000    leakwatch memleak -p PID -s 1000 -v 1     (the agent's default sampling)
#   lw-exact    leakwatch memleak -p PID -v 1
#   peer        bpftrace -p PID, a counter on a uprobe on malloc (one trap per pair)
# The program warms up, waits for SIGUSR1 (sent once the tracer is attached), then times
# its loop.  Measured overhead = (traced CPU per pair - untraced CPU per pair) / untraced:
# the extra CPU per unit of work, as the guard defines it.  leakwatch's figures are the
# `overhead:` note of its last interval report (-v): the measured overhead (the target's CPU
# samples at the probes over those of its own work, probe/cost_sampler.h) and, beside it,
# the estimate from the trap cost measured at start (probe hits x trap cost + BPF run time,
# over the target's CPU time less that cost).  The peer's estimate is the calibration applied by hand: one entry trap
# (`leakwatch calibrate`: trap + minimal BPF program) per pair.
#
# Knobs: WORK (200), ROUNDS (3), UNTRACED_N (4000000 pairs), TRACED_N (300000 pairs), PEER_N (600000).
# Output: a markdown table on stdout and in RESULTS_DIR (bench/results)/overhead-latest.md.
set -euo pipefail

[[ $# -eq 1 ]] || { echo "usage: $0 BUILD_DIR" >&2; exit 1; }
BUILD_DIR=$1
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
ROUNDS=${ROUNDS:-3}
UNTRACED_N=${UNTRACED_N:-4000000}
TRACED_N=${TRACED_N:-300000}
PEER_N=${PEER_N:-600000}
RESULTS_DIR=${RESULTS_DIR:-$BENCH_DIR/results}
LEAKWATCH=$BUILD_DIR/leakwatch
LOOP=$BUILD_DIR/bench/bench_alloc_work
WORK_ROUNDS=${WORK:-200}
LIBC=/lib/x86_64-linux-gnu/libc.so.6

die() { echo "bench: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "needs root (uprobes)"
command -v bpftrace >/dev/null || die "bpftrace not found (Debian package bpftrace)"
for f in "$LEAKWATCH" "$LOOP"; do
  [[ -x $f ]] || die "$f not built (cmake --build $BUILD_DIR --target leakwatch bench_alloc_work)"
done

mkdir -p "$RESULTS_DIR"
WORK=$(mktemp -d /tmp/leakwatch-overhead.XXXXXX)
prog_pid=""
tracer_pid=""
cleanup() {
  [[ -n $tracer_pid ]] && kill "$tracer_pid" 2>/dev/null || true
  [[ -n $prog_pid ]] && kill "$prog_pid" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for FILE PATTERN PID: until FILE contains PATTERN; fails if PID dies first.
wait_for() {
  local deadline=$((SECONDS + 60))
  until grep -q "$2" "$1" 2>/dev/null; do
    kill -0 "$3" 2>/dev/null || die "tracer exited before it was ready: $(tail -3 "$1" "${1%.out}.err" 2>/dev/null)"
    ((SECONDS < deadline)) || die "tracer not ready after 60 s"
    sleep 0.05
  done
}

# cpu_per_pair FILE: the program's CPU ns per pair.
cpu_per_pair() { sed -n 's/.*cpu_ns_per_pair=\([0-9.]*\).*/\1/p' "$1"; }

# traced NAME N: runs the loop under tracer NAME; prints "cpu_ns_per_pair estimate%".
traced() {
  local name=$1 n=$2 out=$WORK/$1.out err=$WORK/$1.err prog=$WORK/$1.prog
  # Busy while the tracer attaches, as a service is: leakwatch samples it before its probes.
  BENCH_BUSY_UNTIL_SIGNAL=1 "$LOOP" "$n" "$WORK_ROUNDS" >"$prog" &
  prog_pid=$!
  case $name in
    lw-s1000) "$LEAKWATCH" memleak -p "$prog_pid" -s 1000 -v 1 >"$out" 2>"$err" & ;;
    lw-exact) "$LEAKWATCH" memleak -p "$prog_pid" -v 1 >"$out" 2>"$err" & ;;
    peer) bpftrace -p "$prog_pid" -e "BEGIN { printf(\"READY\\n\"); }
          uprobe:$LIBC:malloc /pid == $prog_pid/ { @n = count(); }" >"$out" 2>"$err" & ;;
  esac
  tracer_pid=$!
  if [[ $name == peer ]]; then wait_for "$out" READY "$tracer_pid"; else wait_for "$out" "Attaching to pid" "$tracer_pid"; fi
  kill -USR1 "$prog_pid"
  wait "$prog_pid" || die "$name: the program failed"
  prog_pid=""
  # leakwatch ends by itself when its target exits; bpftrace is stopped.
  if [[ $name == peer ]]; then kill -INT "$tracer_pid"; fi
  wait "$tracer_pid" || true
  tracer_pid=""
  local est="- -"
  if [[ $name != peer ]]; then
    # the last note: "measured overhead X% ... (estimated from the trap cost, ...: Y%)",
    # or without a cost sampler "estimated overhead Y% ..."
    local note meas calib
    note=$(grep 'note: overhead: ' "$out" | tail -1)
    [[ -n $note ]] || die "$name: no overhead note in its output (see $out)"
    meas=$(sed -nE 's/.*measured overhead ([0-9.]+)%.*/\1/p' <<<"$note")
    if [[ -n $meas ]]; then
      calib=$(sed -nE 's/.*estimated from the trap cost, .*: ([0-9.]+)%\)$/\1/p' <<<"$note")
    else
      calib=$(sed -nE 's/.*estimated overhead ([0-9.]+)%.*/\1/p' <<<"$note")
    fi
    est="${meas:--} ${calib:--}"
    cp "$out" "$RESULTS_DIR/overhead-$name.txt"
  fi
  echo "$(cpu_per_pair "$prog") $est"
}

echo "calibrating..." >&2
"$LEAKWATCH" calibrate | tee "$WORK/calibration.txt" >&2
# The peer's prediction: an emulated entry trap and a minimal program per pair.
peer_ns=$(awk '/emulated entry/ { t = $(NF-3) } /BPF program \(minimal\)/ { b = $(NF-5) }
               END { print t + b }' "$WORK/calibration.txt")

TSV=$WORK/rows.tsv
: >"$TSV"
for ((r = 1; r <= ROUNDS; r++)); do
  echo "round $r/$ROUNDS" >&2
  "$LOOP" "$UNTRACED_N" "$WORK_ROUNDS" >"$WORK/none.prog"
  base=$(cpu_per_pair "$WORK/none.prog")
  for name in lw-s1000 lw-exact peer; do
    n=$TRACED_N
    [[ $name == peer ]] && n=$PEER_N
    read -r cpu meas calib < <(traced "$name" "$n")
    if [[ $name == peer ]]; then
      # the calibration's prediction: one entry trap and a minimal program per pair
      calib=$(awk -v p="$peer_ns" -v b="$base" 'BEGIN { printf "%.1f", 100 * p / b }')
    fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$base" "$cpu" "$meas" "$calib" >>"$TSV"
    echo "  $name: untraced $base ns/pair, traced $cpu ns/pair, measured by leakwatch $meas%, estimated from the trap cost $calib%" >&2
  done
done

python3 - "$TSV" "$WORK/calibration.txt" "$WORK_ROUNDS" <<'EOF' | tee "$RESULTS_DIR/overhead-latest.md"
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
print("```")
print(f"WORK={sys.argv[3]}")
print(open(sys.argv[2]).read().rstrip())
print("```")
print()
print("| tracer | untraced CPU ns/pair | traced CPU ns/pair | real overhead | leakwatch's measured overhead: median, / real (range) | estimated from the trap cost: median, / real (range) |")
print("|---|---|---|---|---|---|")
for name in ["lw-s1000", "lw-exact", "peer"]:
    mine = [r for r in rows if r[0] == name]
    if not mine:
        continue
    med = lambda f: statistics.median(f(r) for r in mine)
    real = lambda r: 100 * (float(r[2]) - float(r[1])) / float(r[1])
    base, cpu, measured = med(lambda r: float(r[1])), med(lambda r: float(r[2])), med(real)
    def column(i):
        if any(r[i] == "-" for r in mine):
            return "-"
        ratios = sorted(float(r[i]) / real(r) for r in mine)
        return f"{med(lambda r: float(r[i])):.0f}%, {statistics.median(ratios):.2f} ({ratios[0]:.2f}-{ratios[-1]:.2f})"
    label = {"lw-s1000": "leakwatch memleak -p -s 1000", "lw-exact": "leakwatch memleak -p (exact)",
             "peer": "bpftrace uprobe on malloc (calibration x 1 trap/pair)"}[name]
    print(f"| {label} | {base:.1f} | {cpu:.0f} | {measured:.0f}% | {column(3)} | {column(4)} |")
print()
print(f"medians of {len(rows) // 3} interleaved rounds; ratios to the real overhead: median (range)")
EOF
