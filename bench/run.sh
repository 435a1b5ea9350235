#!/usr/bin/env bash
# leakwatch benchmark: cost of tracing allocations, leakwatch vs BCC memleak's probe set.
#
#   bench/run.sh BUILD_DIR            (what `make bench` runs; needs root and bpftrace)
#
# Programs (bench/alloc_loop.c, bench/workload.cpp), each timed inside itself:
#   fixed     tight malloc(64)+free loop
#   mixed     malloc+free over mixed sizes with 64 live blocks
#   workload  containers, strings, parsing and zlib; a fixed amount of work
# Tracers, each attached with -p to the already running program; the program starts its
# clock only when run.sh sends SIGUSR1, after the tracer said it is attached:
#   none          no tracer
#   lw-exact      leakwatch memleak -p PID                      ("Attaching to pid ...")
#   lw-s1000      leakwatch memleak -p PID -s 1000
#   lw-bytes512k  leakwatch memleak -p PID --sample-bytes 512K
#   peer          bpftrace -p PID bench/bcc_memleak_probes.bt PID   (BEGIN prints READY)
# and in-process mode (issue 8), which needs the program started by leakwatch (-c), so the
# program is started by the tracer and gets SIGUSR1 once leakwatch said it is attached:
#   lw-inproc512k  leakwatch memleak --inprocess --sample-bytes 512K -c PROGRAM
#   lw-inproc64k   the same with R = 64 KiB
#   lw-inproc512k-dwarf  lw-inproc512k with DWARF stacks (what programs without frame
#                  pointers get from --unwind auto)
#   lw-inproc-s1000  leakwatch memleak -s 1000 -c PROGRAM (in-process, the default there)
#   lw-inproc-exact  leakwatch memleak --inprocess -c PROGRAM (every allocation hooked)
# and injection into the running program (issue 17), attached with -p like the first group:
#   lw-inject512k    leakwatch memleak -p PID --inject --sample-bytes 512K
#   lw-inject-s1000  leakwatch memleak -p PID --inject -s 1000
#   lw-inject-exact  leakwatch memleak -p PID --inject (every allocation hooked)
#   lw-inject512k-q, lw-inject-s1000-q   the same without -v (no cost sampling of the target)
#   (each run injects into a fresh program; the pause it sees is bench/inject.sh's business)
# and, for finding where the cost goes (not in the default list):
#   preload512k           no tracer: the program runs with libleakwatch-preload.so sampling
#                         at 512 KiB and nobody probing its hooks (the library's own cost)
#   lw-exact-classic, lw-s1000-classic      the same with --attach classic
#   lw-exact-fp           lw-exact with frame-pointer stacks (the peer's kind), where
#                         --unwind auto would copy stacks for DWARF unwinding
#   bt-malloc-entry       bpftrace: counter on malloc entry
#   bt-malloc-ret         bpftrace: counter on a uretprobe on malloc (entry trap + return)
#   bt-malloc-ret-ustack  the same keyed by the full user stack
#   bt-malloc-ret-ustack2 the same keyed by a 2-frame user stack
#   bt-free0              bpftrace: counter on free at +0 (its `test`, single-stepped)
#   lwb-exact, lwb-s1000, lwb-bytes512k     the same flags with another leakwatch binary,
#                         $LEAKWATCH_B, for A/B comparisons of a change in the same run
#
# Rounds are interleaved (every tracer and program once per round, the order rotated each
# round) and medians are reported, because the machine is shared and noisy.  Two clocks:
# wall (CLOCK_MONOTONIC) and process CPU time (uprobe handling runs in the traced thread and
# is counted there; waiting for a CPU is not).  The workload's per-pair figures divide by
# its allocation calls, counted once per run with bpftrace (bench/count_allocs.bt).
#
# Knobs (environment): ROUNDS (5), LOOP_N (20000 pairs), WORKLOAD_ROUNDS (1500),
# PROGRAMS ("fixed mixed workload"), TRACERS (the five above and the three lw-inproc ones but 64k), RESULTS_DIR (bench/results),
# PIN_CPU (unset: no pinning; N: every timed program runs on CPU N, the tracers on the
# others, so the runs compared are always on the same CPU; the vCPUs here differ by ~10%).
# Output: a markdown table on stdout, also written to RESULTS_DIR/latest.md, and every single
# measurement in RESULTS_DIR/raw-<time>.tsv.  With `none` among the tracers, a second table
# gives each tracer's CPU time over the untraced run of the same round (paired, so slow and
# fast minutes of the host cancel out): the median ratio and its 95% confidence interval
# (distribution-free, from the order statistics of the per-round ratios).
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 1
fi
BUILD_DIR=$1
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
ROUNDS=${ROUNDS:-5}
LOOP_N=${LOOP_N:-20000}
WORKLOAD_ROUNDS=${WORKLOAD_ROUNDS:-1500}
PROGRAMS=${PROGRAMS:-"fixed mixed workload"}
TRACERS=${TRACERS:-"none lw-exact lw-s1000 lw-bytes512k lw-inproc-exact lw-inproc-s1000 lw-inproc512k peer"}
RESULTS_DIR=${RESULTS_DIR:-$BENCH_DIR/results}
ATTACH_TIMEOUT=60   # seconds for a tracer to attach
RUN_TIMEOUT=300     # seconds for one timed run
PIN_CPU=${PIN_CPU:-}

LEAKWATCH=$BUILD_DIR/leakwatch
ALLOC_LOOP=$BUILD_DIR/bench/bench_alloc_loop
WORKLOAD=$BUILD_DIR/bench/bench_workload
LIBC=/lib/x86_64-linux-gnu/libc.so.6

die() { echo "bench: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "needs root (uprobes)"
command -v bpftrace >/dev/null || die "bpftrace not found (Debian package bpftrace)"
for f in "$LEAKWATCH" "$ALLOC_LOOP" "$WORKLOAD"; do
  [[ -x $f ]] || die "$f not built (cmake --build $BUILD_DIR --target leakwatch bench_alloc_loop bench_workload)"
done
[[ -e $LIBC ]] || die "$LIBC not found"
# With PIN_CPU: the programs on that CPU, the tracers (and this script) on the others.
tracer_cpus=""
if [[ -n $PIN_CPU ]]; then
  command -v taskset >/dev/null || die "PIN_CPU needs taskset (util-linux)"
  ((PIN_CPU < $(nproc --all))) || die "PIN_CPU=$PIN_CPU: this machine has $(nproc --all) CPUs"
  tracer_cpus=$(seq 0 $(($(nproc --all) - 1)) | grep -vx "$PIN_CPU" | paste -sd,)
  [[ -n $tracer_cpus ]] || die "PIN_CPU needs a second CPU for the tracers"
  taskset -pc "$tracer_cpus" $$ >/dev/null
fi
# pin_program PID: moves a program that waits for its start signal onto PIN_CPU.
pin_program() {
  [[ -z $PIN_CPU ]] || taskset -pc "$PIN_CPU" "$1" >/dev/null
}

mkdir -p "$RESULTS_DIR"
WORK=$(mktemp -d /tmp/leakwatch-bench.XXXXXX)
prog_pid=""
tracer_pid=""
cleanup() {
  [[ -n $tracer_pid ]] && kill "$tracer_pid" 2>/dev/null || true
  [[ -n $prog_pid ]] && kill "$prog_pid" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

prog_cmd() {  # prints the command line of a program, one word per line
  case $1 in
    fixed) printf '%s\n' "$ALLOC_LOOP" fixed "$LOOP_N" 64 ;;
    mixed) printf '%s\n' "$ALLOC_LOOP" mixed "$LOOP_N" ;;
    workload) printf '%s\n' "$WORKLOAD" "$WORKLOAD_ROUNDS" ;;
    *) die "unknown program $1" ;;
  esac
}

# bt_inline NAME PID: bpftrace one-liners for the cost breakdown (pid filter: see
# bcc_memleak_probes.bt).
bt_inline() {
  local ready='BEGIN { printf("READY\n"); }' f="/pid == $2/"
  case $1 in
    bt-malloc-entry) echo "$ready uprobe:$LIBC:malloc $f { @n = count(); }" ;;
    bt-malloc-ret) echo "$ready uretprobe:$LIBC:malloc $f { @n = count(); }" ;;
    bt-malloc-ret-ustack) echo "$ready uretprobe:$LIBC:malloc $f { @n[ustack] = count(); } END { clear(@n); }" ;;
    bt-malloc-ret-ustack2) echo "$ready uretprobe:$LIBC:malloc $f { @n[ustack(2)] = count(); } END { clear(@n); }" ;;
    bt-free0) echo "$ready uprobe:$LIBC:free $f { @n = count(); }" ;;
    *) die "unknown tracer $1" ;;
  esac
}

# wait_for FILE PATTERN PID TIMEOUT: until FILE contains PATTERN; fails if PID dies first.
wait_for() {
  local file=$1 pattern=$2 pid=$3 deadline=$((SECONDS + $4))
  while ! grep -q -- "$pattern" "$file" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || return 1
    ((SECONDS < deadline)) || return 1
    sleep 0.05
  done
}

# wait_exit PID TIMEOUT: waits for a child; kills it after TIMEOUT seconds.
wait_exit() {
  local pid=$1 deadline=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      kill -INT "$pid" 2>/dev/null || true
      sleep 2
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.05
  done
  wait "$pid" 2>/dev/null || true
}

# attach_pattern NAME: what the tracer prints once every probe is attached.
attach_pattern() {
  case $1 in
    lw*) echo "Attaching to pid" ;;
    *) echo "READY" ;;
  esac
}

# start_tracer NAME PID OUTFILE: starts the tracer in the background (sets tracer_pid).
start_tracer() {
  local name=$1 pid=$2 out=$3
  local -a lw=("$LEAKWATCH" memleak -p "$pid" -v)
  if [[ $name == lwb-* ]]; then
    [[ -n ${LEAKWATCH_B:-} && -x ${LEAKWATCH_B:-} ]] || die "$name needs LEAKWATCH_B=/path/to/leakwatch"
    lw[0]=$LEAKWATCH_B
    name=lw-${name#lwb-}
  fi
  case $name in
    none | preload512k) tracer_pid=""; return 0 ;;
    lw-exact) "${lw[@]}" 3600 >"$out" 2>&1 & ;;
    lw-s1000) "${lw[@]}" -s 1000 3600 >"$out" 2>&1 & ;;
    lw-bytes512k) "${lw[@]}" --sample-bytes 512K 3600 >"$out" 2>&1 & ;;
    lw-exact-fp) "${lw[@]}" --unwind fp 3600 >"$out" 2>&1 & ;;
    lw-exact-classic) "${lw[@]}" --attach classic 3600 >"$out" 2>&1 & ;;
    lw-s1000-classic) "${lw[@]}" --attach classic -s 1000 3600 >"$out" 2>&1 & ;;
    lw-inject512k) "${lw[@]}" --inject --sample-bytes 512K 3600 >"$out" 2>&1 & ;;
    lw-inject-s1000) "${lw[@]}" --inject -s 1000 3600 >"$out" 2>&1 & ;;
    lw-inject-exact) "${lw[@]}" --inject 3600 >"$out" 2>&1 & ;;
    # Without -v: no cost sampling (the guard's CPU-clock sample of the target) either.
    lw-inject512k-q) "$LEAKWATCH" memleak -p "$pid" --inject --sample-bytes 512K 3600 >"$out" 2>&1 & ;;
    lw-inject-s1000-q) "$LEAKWATCH" memleak -p "$pid" --inject -s 1000 3600 >"$out" 2>&1 & ;;
    peer) BPFTRACE_MAP_KEYS_MAX=1000000 bpftrace -p "$pid" "$BENCH_DIR/bcc_memleak_probes.bt" \
            "$pid" >"$out" 2>&1 & ;;
    count) bpftrace -p "$pid" "$BENCH_DIR/count_allocs.bt" "$pid" >"$out" 2>&1 & ;;
    bt-*) bpftrace -p "$pid" -e "$(bt_inline "$name" "$pid")" >"$out" 2>&1 & ;;
    *) die "unknown tracer $name" ;;
  esac
  tracer_pid=$!
}

# run_inproc PROGRAM TRACER: an in-process run: leakwatch starts the program (-c), which
# shares leakwatch's output file; the program's pid is the one leakwatch attached to.
run_inproc() {
  local prog=$1 tracer=$2
  local -a cmd lw=("$LEAKWATCH" memleak --inprocess -v)
  mapfile -t cmd < <(prog_cmd "$prog")
  case $tracer in
    lw-inproc512k) lw+=(--sample-bytes 512K) ;;
    lw-inproc64k) lw+=(--sample-bytes 64K) ;;
    lw-inproc512k-dwarf) lw+=(--sample-bytes 512K --unwind dwarf) ;;
    lw-inproc-s1000) lw+=(-s 1000) ;;
    lw-inproc-exact) ;;
    *) die "unknown tracer $tracer" ;;
  esac
  local tout=$WORK/tracer.out
  : >"$tout"
  BENCH_WAIT_SIGNAL=1 "${lw[@]}" -c "${cmd[*]}" 3600 >"$tout" 2>&1 &
  tracer_pid=$!
  if ! wait_for "$tout" '^ready' "$tracer_pid" "$ATTACH_TIMEOUT"; then
    die "$tracer did not start $prog: $(tail -3 "$tout")"
  fi
  local pid
  pid=$(sed -n 's/^Attaching to pid \([0-9]*\).*/\1/p' "$tout" | head -1)
  [[ -n $pid ]] || die "$tracer: no pid in its output: $(tail -3 "$tout")"
  pin_program "$pid"
  kill -USR1 "$pid"
  wait_exit "$tracer_pid" "$RUN_TIMEOUT"
  tracer_pid=""
  cp "$tout" "$RESULTS_DIR/last-$prog-$tracer.log"
  result_line=$(grep -m1 'total_ns=' "$tout" || true)
  [[ -n $result_line ]] || die "$prog under $tracer printed nothing: $(tail -5 "$tout")"
}

# run_one PROGRAM TRACER: one timed run; sets result_line to the program's output line.
# Runs in the main shell (not in $(...)) so that cleanup can reach the processes it started.
run_one() {
  local prog=$1 tracer=$2
  if [[ $tracer == lw-inproc* ]]; then
    run_inproc "$prog" "$tracer"
    return
  fi
  local -a cmd
  mapfile -t cmd < <(prog_cmd "$prog")
  local pout=$WORK/prog.out perr=$WORK/prog.err tout=$WORK/tracer.out
  : >"$pout"; : >"$perr"; : >"$tout"
  local -a env=(BENCH_WAIT_SIGNAL=1)
  [[ $tracer == preload512k ]] &&
    env+=(LD_PRELOAD="$(cd "$BUILD_DIR" && pwd)/libleakwatch-preload.so" LEAKWATCH_SAMPLE_BYTES=524288)
  env "${env[@]}" "${cmd[@]}" >"$pout" 2>"$perr" &
  prog_pid=$!
  wait_for "$perr" ready "$prog_pid" 60 || die "$prog did not get ready: $(cat "$perr")"
  start_tracer "$tracer" "$prog_pid" "$tout"
  if [[ -n $tracer_pid ]]; then
    if ! wait_for "$tout" "$(attach_pattern "$tracer")" "$tracer_pid" "$ATTACH_TIMEOUT"; then
      kill "$prog_pid" 2>/dev/null || true
      die "$tracer did not attach to $prog: $(tail -3 "$tout")"
    fi
  fi
  pin_program "$prog_pid"
  kill -USR1 "$prog_pid"
  wait_exit "$prog_pid" "$RUN_TIMEOUT"
  prog_pid=""
  if [[ -n $tracer_pid ]]; then
    # leakwatch -p ends by itself when its target exits; bpftrace is told to stop.
    case $tracer in lw*) ;; *) kill -INT "$tracer_pid" 2>/dev/null || true ;; esac
    wait_exit "$tracer_pid" 60
    tracer_pid=""
    cp "$tout" "$RESULTS_DIR/last-$prog-$tracer.log"
  fi
  result_line=$(head -1 "$pout")
  [[ -n $result_line ]] || die "$prog under $tracer printed nothing: $(cat "$perr")"
}

# ---- allocation calls of the workload (for its per-pair figures) ----
workload_allocs=0
if [[ " $PROGRAMS " == *" workload "* ]]; then
  run_one workload count
  workload_allocs=$(awk '/^@alloc_calls:/ {print $2}' "$RESULTS_DIR/last-workload-count.log")
  [[ -n $workload_allocs && $workload_allocs -gt 0 ]] || die "could not count the workload's allocations"
  echo "workload: $workload_allocs allocation calls in $WORKLOAD_ROUNDS rounds" \
       "($(awk '/^@new_calls:/ {print $2}' "$RESULTS_DIR/last-workload-count.log") via operator new," \
       "$(awk '/^@free_calls:/ {print $2}' "$RESULTS_DIR/last-workload-count.log") free calls)" >&2
fi

# ---- interleaved rounds ----
stamp=$(date +%Y%m%d-%H%M%S)
raw=$RESULTS_DIR/raw-$stamp.tsv
printf 'round\tprogram\ttracer\twall_ns\tcpu_ns\tpairs\n' >"$raw"
read -r -a tracers <<<"$TRACERS"
read -r -a programs <<<"$PROGRAMS"
nt=${#tracers[@]}
start=$SECONDS
for ((r = 1; r <= ROUNDS; r++)); do
  for prog in "${programs[@]}"; do
    for ((i = 0; i < nt; i++)); do
      tracer=${tracers[$(((i + r) % nt))]}
      run_one "$prog" "$tracer"
      line=$result_line
      case $prog in
        workload)
          wall=$(sed -n 's/.*total_ns=\([0-9]*\).*/\1/p' <<<"$line")
          cpu=$(sed -n 's/.*cpu_ns=\([0-9]*\).*/\1/p' <<<"$line")
          pairs=$workload_allocs ;;
        *)
          wall=$(sed -n 's/.*total_ns=\([0-9]*\).*/\1/p' <<<"$line")
          cpu=$(sed -n 's/.*cpu_ns=\([0-9]*\).*/\1/p' <<<"$line")
          pairs=$(sed -n 's/.*pairs=\([0-9]*\).*/\1/p' <<<"$line") ;;
      esac
      printf '%d\t%s\t%s\t%s\t%s\t%s\n' "$r" "$prog" "$tracer" "$wall" "$cpu" "$pairs" >>"$raw"
      sleep 0.3
    done
  done
  echo "bench: round $r/$ROUNDS done ($((SECONDS - start)) s)" >&2
done

# ---- table ----
{
  echo "Rounds: $ROUNDS (interleaved), medians.  fixed/mixed: $LOOP_N pairs per run;" \
       "workload: $WORKLOAD_ROUNDS rounds = $workload_allocs allocation calls per run."
  echo "Kernel $(uname -r), $(nproc --all) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC')."
  awk -F'\t' -v tracer_order="$TRACERS" -v program_order="$PROGRAMS" '
    function median(key,   n, i, j, t, a) {
      n = split(vals[key], a, " ")
      for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j+1] = a[j]; a[j+1] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    function lo(key,   n, a, i, m) { n = split(vals[key], a, " "); m = a[1]; for (i = 2; i <= n; i++) if (a[i] < m) m = a[i]; return m }
    function hi(key,   n, a, i, m) { n = split(vals[key], a, " "); m = a[1]; for (i = 2; i <= n; i++) if (a[i] > m) m = a[i]; return m }
    function target(t) { return t ~ /^lw-(inproc-)?exact$/ ? "<= 0.40" : t ~ /^lw-(inproc-)?s1000$/ ? "<= 0.20" : t ~ /^lw-inproc512k$/ ? "<= 10 ns (loop), <= 1% (workload)" : t ~ /^lw-inject(512k|-s1000)(-q)?$/ ? "<= 20 ns (loop), <= 1% (workload)" : "" }
    NR > 1 {
      w = $4 / $6; c = $5 / $6
      vals[$2 SUBSEP $3 SUBSEP "w"] = vals[$2 SUBSEP $3 SUBSEP "w"] " " w
      vals[$2 SUBSEP $3 SUBSEP "c"] = vals[$2 SUBSEP $3 SUBSEP "c"] " " c
    }
    END {
      nt = split(tracer_order, tr, " "); np = split(program_order, pr, " ")
      for (p = 1; p <= np; p++) {
        prog = pr[p]
        printf "\n### %s\n\n", prog
        print "| tracer | wall ns/pair | CPU ns/pair (min-max) | added wall | added CPU | ratio to peer (wall) | ratio to peer (CPU) | target |"
        print "|---|---:|---:|---:|---:|---:|---:|---|"
        bw = median(prog SUBSEP "none" SUBSEP "w"); bc = median(prog SUBSEP "none" SUBSEP "c")
        have_peer = (prog SUBSEP "peer" SUBSEP "w") in vals
        if (have_peer) { pw = median(prog SUBSEP "peer" SUBSEP "w") - bw; pc = median(prog SUBSEP "peer" SUBSEP "c") - bc }
        for (t = 1; t <= nt; t++) {
          k = prog SUBSEP tr[t]
          if (!((k SUBSEP "w") in vals)) continue
          mw = median(k SUBSEP "w"); mc = median(k SUBSEP "c")
          aw = tr[t] == "none" ? "" : sprintf("%.0f", mw - bw)
          ac = tr[t] == "none" ? "" : sprintf("%.0f", mc - bc)
          rw = rc = ""
          if (have_peer && tr[t] != "none" && tr[t] != "peer" && pw > 0 && pc > 0) {
            rw = sprintf("%.2f", (mw - bw) / pw); rc = sprintf("%.2f", (mc - bc) / pc)
          }
          printf "| %s | %.0f | %.0f (%.0f-%.0f) | %s | %s | %s | %s | %s |\n", tr[t], mw, mc,
                 lo(k SUBSEP "c"), hi(k SUBSEP "c"), aw, ac, rw, rc, target(tr[t])
        }
      }
    }' "$raw"
  # Paired by round: each tracer's CPU time over the untraced run of the same round.
  awk -F'\t' -v tracer_order="$TRACERS" -v program_order="$PROGRAMS" '
    function sort(a, n,   i, j, t) {
      for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j+1] = a[j]; a[j+1] = t }
    }
    # Rank k of the lower 95% bound of a median of n values: the largest k with
    # P(Binomial(n, 1/2) <= k - 1) <= 0.025; 0 when n is too small for one.
    function ci_rank(n,   k, p, cdf) {
      p = 0.5 ^ n; cdf = p; k = 0
      while (cdf <= 0.025) { k++; p = p * (n - k + 1) / k; cdf += p }
      return k
    }
    NR > 1 { cpu[$1 SUBSEP $2 SUBSEP $3] = $5; rounds[$1] = 1 }
    END {
      nt = split(tracer_order, tr, " "); np = split(program_order, pr, " ")
      for (t = 1; t <= nt; t++) if (tr[t] == "none") have_none = 1
      if (!have_none) exit
      print "\n### CPU time over the untraced run of the same round (paired)\n"
      print "| program | tracer | rounds | median ratio | 95% CI | per-round min-max |"
      print "|---|---|---:|---:|---|---|"
      for (p = 1; p <= np; p++) for (t = 1; t <= nt; t++) {
        if (tr[t] == "none") continue
        n = 0; delete a
        for (r in rounds) {
          b = cpu[r SUBSEP pr[p] SUBSEP "none"]; x = cpu[r SUBSEP pr[p] SUBSEP tr[t]]
          if (b > 0 && x > 0) a[++n] = x / b
        }
        if (n == 0) continue
        sort(a, n)
        med = n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        k = ci_rank(n)
        ci = k > 0 ? sprintf("%.4f - %.4f", a[k], a[n - k + 1]) : "(too few rounds)"
        printf "| %s | %s | %d | %.4f | %s | %.4f - %.4f |\n", pr[p], tr[t], n, med, ci, a[1], a[n]
      }
    }' "$raw"
} | tee "$RESULTS_DIR/latest.md"
echo "bench: raw measurements in $raw ($((SECONDS - start)) s)" >&2
