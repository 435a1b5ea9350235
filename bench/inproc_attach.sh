#!/usr/bin/env bash
# What tracing a program that runs with libleakwatch-preload.so costs it, measured inside one
# process: `leakwatch memleak -p` attaches and detaches again and again while the program
# runs, and the program's chunks of work are compared between the traced and the untraced
# windows.
#
#   bench/inproc_attach.sh BUILD_DIR
#
# Why one process: separate runs of bench_workload differ by several per cent from one
# process to the next (address layout, physical pages, the host's minute), which buried a
# 1% effect under 20 runs each (BENCHMARKS.md).  Here the same process, with the same heap,
# is measured alternately with and without the tracer, a few seconds apart.
#
# What is measured: the hooks' probes (5-byte NOPs the kernel turns into calls), the BPF
# programs behind them, and leakwatch's own activity on the other CPU.  Not measured: the
# library's wrappers, which run in both windows (see BENCHMARKS.md for their cost).
#
# The program (bench_workload CHUNK_ROUNDS CHUNKS, preloaded with R = 512 KiB) runs pinned to
# CPU 1, leakwatch and this script to CPU 0.  Windows: OFF_S untraced, then leakwatch attaches
# (its start-up is not counted), ON_S traced, leakwatch is stopped (SIGINT, final report).
# Chunks within MARGIN_S of a window's edge are not counted.  Per period (an ON window and
# the OFF windows before and after it), the ratio of the mean chunk CPU time ON to OFF; the
# median ratio with its 95% interval (order statistics) is the result.
#
# Knobs: PERIODS (20), ON_S (4), OFF_S (4), MARGIN_S (0.3), CHUNK_ROUNDS (1000 requests,
# ~10 ms), SAMPLE_BYTES (524288), LEAKWATCH_ARGS (extra flags for leakwatch memleak),
# RESULTS_DIR (bench/results).
set -euo pipefail

[[ $# -eq 1 ]] || { echo "usage: $0 BUILD_DIR" >&2; exit 1; }
BUILD_DIR=$(cd "$1" && pwd)
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
PERIODS=${PERIODS:-20}
ON_S=${ON_S:-4}
OFF_S=${OFF_S:-4}
MARGIN_S=${MARGIN_S:-0.3}
CHUNK_ROUNDS=${CHUNK_ROUNDS:-1000}
SAMPLE_BYTES=${SAMPLE_BYTES:-524288}
LEAKWATCH_ARGS=${LEAKWATCH_ARGS:-}
RESULTS_DIR=${RESULTS_DIR:-$BENCH_DIR/results}
LEAKWATCH=$BUILD_DIR/leakwatch
WORKLOAD=$BUILD_DIR/bench/bench_workload
LIBRARY=$BUILD_DIR/libleakwatch-preload.so

die() { echo "inproc_attach: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "needs root (uprobes)"
for f in "$LEAKWATCH" "$WORKLOAD" "$LIBRARY"; do [[ -e $f ]] || die "$f not built"; done
(($(nproc --all) >= 2)) || die "needs two CPUs (the program on one, leakwatch on the other)"
command -v taskset >/dev/null || die "needs taskset (util-linux)"

mkdir -p "$RESULTS_DIR"
WORK=$(mktemp -d /tmp/leakwatch-inproc-attach.XXXXXX)
prog_pid="" lw_pid=""
cleanup() {
  [[ -n $lw_pid ]] && kill "$lw_pid" 2>/dev/null || true
  [[ -n $prog_pid ]] && kill "$prog_pid" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

taskset -pc 0 $$ >/dev/null
now_ns() { date +%s%N; }
windows=$WORK/windows   # "on|off START_NS END_NS" per window
: >"$windows"

# Enough chunks for the whole run; the program is stopped when the periods are done.
seconds=$(awk -v p="$PERIODS" -v on="$ON_S" -v off="$OFF_S" 'BEGIN { print int(p * (on + off + 3) + off + 30) }')
chunks=$((seconds * 200))
LD_PRELOAD=$LIBRARY LEAKWATCH_SAMPLE_BYTES=$SAMPLE_BYTES \
  taskset -c 1 "$WORKLOAD" "$CHUNK_ROUNDS" "$chunks" >"$WORK/chunks" 2>"$WORK/prog.err" &
prog_pid=$!
for _ in $(seq 100); do grep -q ready "$WORK/prog.err" && break; sleep 0.05; done
grep -q ready "$WORK/prog.err" || die "bench_workload did not start: $(cat "$WORK/prog.err")"

start=$SECONDS
off_start=$(now_ns)
for ((p = 1; p <= PERIODS; p++)); do
  sleep "$OFF_S"
  echo "off $off_start $(now_ns)" >>"$windows"
  # shellcheck disable=SC2086
  "$LEAKWATCH" memleak -p "$prog_pid" -v $LEAKWATCH_ARGS 3600 >"$WORK/lw.out" 2>&1 &
  lw_pid=$!
  for _ in $(seq 600); do grep -q "^Attaching to pid" "$WORK/lw.out" && break; sleep 0.05; done
  grep -q "^Attaching to pid" "$WORK/lw.out" || die "leakwatch did not attach: $(tail -3 "$WORK/lw.out")"
  on_start=$(now_ns)
  sleep "$ON_S"
  echo "on $on_start $(now_ns)" >>"$windows"
  kill -INT "$lw_pid"
  wait "$lw_pid" || true
  lw_pid=""
  off_start=$(now_ns)
  echo "inproc_attach: period $p/$PERIODS done ($((SECONDS - start)) s)" >&2
done
sleep "$OFF_S"
echo "off $off_start $(now_ns)" >>"$windows"
kill "$prog_pid" 2>/dev/null || true
wait "$prog_pid" 2>/dev/null || true
prog_pid=""
cp "$WORK/lw.out" "$RESULTS_DIR/last-inproc-attach-leakwatch.log"
grep -q "in-process" "$WORK/lw.out" || die "leakwatch did not trace in-process: $(tail -5 "$WORK/lw.out")"

stamp=$(date +%Y%m%d-%H%M%S)
cp "$WORK/chunks" "$RESULTS_DIR/inproc-attach-chunks-$stamp.txt"
cp "$windows" "$RESULTS_DIR/inproc-attach-windows-$stamp.txt"
{
  echo "Kernel $(uname -r), $(nproc --all) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC')."
  echo "bench_workload $CHUNK_ROUNDS-request chunks, LEAKWATCH_SAMPLE_BYTES=$SAMPLE_BYTES;" \
       "$PERIODS periods of ${OFF_S} s untraced / ${ON_S} s with leakwatch memleak -p $LEAKWATCH_ARGS"
  echo "(samples in the last window: $(grep -o '[0-9]* sampled allocations' "$WORK/lw.out" | tail -1))."
  awk -v margin="$MARGIN_S" '
    function sort(a, n,   i, j, t) {
      for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j+1] = a[j]; a[j+1] = t }
    }
    function ci_rank(n,   k, p, cdf) {
      p = 0.5 ^ n; cdf = p; k = 0
      while (cdf <= 0.025) { k++; p = p * (n - k + 1) / k; cdf += p }
      return k
    }
    FNR == NR { kind[++nw] = $1; ws[nw] = $2 + margin * 1e9; we[nw] = $3 - margin * 1e9; next }
    /^chunk=/ {
      split($2, a, "="); s = a[2]; split($3, b, "="); e = b[2]; split($4, c, "="); cpu = c[2]
      for (w = 1; w <= nw; w++)
        if (s >= ws[w] && e <= we[w]) { sum[w] += cpu; cnt[w]++; break }
    }
    END {
      n = 0
      for (w = 2; w < nw; w++) {
        if (kind[w] != "on" || !cnt[w] || !cnt[w-1] || !cnt[w+1]) continue
        off = (sum[w-1] / cnt[w-1] + sum[w+1] / cnt[w+1]) / 2
        r[++n] = (sum[w] / cnt[w]) / off
        on_chunks += cnt[w]; on_cpu += sum[w]
      }
      for (w = 1; w <= nw; w++) if (kind[w] == "off") { off_chunks += cnt[w]; off_cpu += sum[w] }
      if (n == 0) { print "no complete period"; exit 1 }
      sort(r, n)
      med = n % 2 ? r[(n + 1) / 2] : (r[n / 2] + r[n / 2 + 1]) / 2
      k = ci_rank(n)
      printf "\n| | chunks | mean CPU per chunk (ms) |\n|---|---:|---:|\n"
      printf "| untraced windows | %d | %.3f |\n", off_chunks, off_cpu / off_chunks / 1e6
      printf "| traced windows | %d | %.3f |\n", on_chunks, on_cpu / on_chunks / 1e6
      printf "\nPer period, traced over untraced: median %+.2f%%", (med - 1) * 100
      if (k > 0) printf ", 95%% CI %+.2f%% .. %+.2f%%", (r[k] - 1) * 100, (r[n - k + 1] - 1) * 100
      printf " (%d periods, min %+.2f%%, max %+.2f%%)\n", n, (r[1] - 1) * 100, (r[n] - 1) * 100
    }' "$windows" "$WORK/chunks"
} | tee "$RESULTS_DIR/inproc-attach-latest.md"
