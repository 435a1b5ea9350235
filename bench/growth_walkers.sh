#!/usr/bin/env bash
# Cost of `leakwatch growth`'s page-fault program per fault of the traced process, from the
# kernel's BPF run statistics, for each way of capturing the user stack:
#
#   bench/growth_walkers.sh BUILD_DIR
#
# Configurations (every fault sampled, so each run captures a stack):
#   filter   a traced process that does not fault (`sleep`): every run is another process's
#            fault, rejected by the pid filter -> the cost every other process pays
#   count    bench_growth_faults, --sample-faults 1000000000: filter + counter + draw
#   fp       bench_growth_faults, --sample-faults 1 --unwind fp --stack-walker fp (leakwatch's
#            walk)
#   kernel   bench_growth_faults, --sample-faults 1 --unwind fp --stack-walker kernel
#            (bpf_get_stackid)
#   dwarf    bench_growth_faults, --sample-faults 1 --unwind dwarf (a copy of the top of the
#            user stack, at most --snapshot-size, sent with the event)
# The program runs for every fault on the machine (the tracepoint is global), so the cost
# per traced fault is (runs x ns/run - other runs x filter ns/run) / traced faults.
#
# kernel.bpf_stats_enabled is set to 1 for the duration (it adds two clock reads to every
# BPF program run on the machine) and restored on exit.  Rounds are interleaved; medians.
# Knobs: ROUNDS (5), MIB (64), FAULT_ROUNDS (2).
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 BUILD_DIR" >&2; exit 1; }
BUILD_DIR=$1
ROUNDS=${ROUNDS:-5}
MIB=${MIB:-64}
FAULT_ROUNDS=${FAULT_ROUNDS:-2}
LW=$BUILD_DIR/leakwatch
FAULTS=$BUILD_DIR/bench/bench_growth_faults
[[ $(id -u) -eq 0 ]] || { echo "needs root" >&2; exit 1; }
[[ -x $LW && -x $FAULTS ]] || { echo "build leakwatch and bench_growth_faults first" >&2; exit 1; }

old_stats=$(sysctl -n kernel.bpf_stats_enabled)
trap 'sysctl -qw kernel.bpf_stats_enabled=$old_stats' EXIT
sysctl -qw kernel.bpf_stats_enabled=1

# run CONFIG -> prints "runs ns_per_run traced_faults"
run() {
  local out
  case $1 in
    filter) out=$("$LW" growth -c "sleep 2" --sample-faults 1 -v 2>&1) ;;
    count) out=$("$LW" growth -c "$FAULTS $FAULT_ROUNDS $MIB" --sample-faults 1000000000 -v 2>&1) ;;
    fp | kernel) out=$("$LW" growth -c "$FAULTS $FAULT_ROUNDS $MIB" --sample-faults 1 \
                         --unwind fp --stack-walker "$1" -v 2>&1) ;;
    dwarf) out=$("$LW" growth -c "$FAULTS $FAULT_ROUNDS $MIB" --sample-faults 1 \
                   --unwind dwarf -v 2>&1) ;;
  esac
  local stats faults
  stats=$(grep -o 'lw_gr_fault [0-9]* runs [0-9]* ns/run' <<<"$out" | tail -1)
  faults=$(grep -o '^faults: [0-9]*' <<<"$out" | tail -1 | awk '{print $2}')
  echo "$(awk '{print $2, $4}' <<<"$stats") ${faults:-0}"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

declare -A filter_ns cost
configs="filter count fp kernel dwarf"
for ((r = 0; r < ROUNDS; r++)); do
  for c in $configs; do
    read -r runs ns traced < <(run "$c")
    if [[ $c == filter ]]; then
      filter_ns[$r]=$ns
      echo "round $r filter: $runs runs, $ns ns/run" >&2
    else
      f=${filter_ns[$r]}
      per=$(awk -v R="$runs" -v N="$ns" -v F="$traced" -v C="$f" \
            'BEGIN { if (F > 0) printf "%.0f", (R*N - (R-F)*C) / F; else print "nan" }')
      cost[$c]+="$per "
      echo "round $r $c: $runs runs, $ns ns/run, $traced traced faults -> $per ns per traced fault" >&2
    fi
  done
done

echo "| configuration | ns per traced fault (median of $ROUNDS) |"
echo "|---|---|"
echo "| pid filter (other processes' faults) | $(printf '%s\n' "${filter_ns[@]}" | median) |"
for c in count fp kernel dwarf; do
  echo "| $c | $(tr ' ' '\n' <<<"${cost[$c]}" | grep -v '^$' | median) |"
done
