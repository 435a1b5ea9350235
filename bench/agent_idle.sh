#!/usr/bin/env bash
# The agent's own cost while it watches and nothing triggers: CPU time and resident memory
# of `leakwatch agent` with the default detection settings (a sample every 10 s, PSS/USS
# from smaps_rollup on) over SECONDS, for three sets of targets watched at the same time:
#   one     one sleeping process (a pid target)
#   n1000   1000 sleeping processes (a comm target; copies of sleep named lwidle)
#   all     every process on the host (all: true; the 1000 above included)
#
#   bench/agent_idle.sh BUILD_DIR [SECONDS]      (root; SECONDS defaults to 300)
#
# CPU is the sum of the agent's threads' run time from /proc/PID/task/*/schedstat (ns),
# read 15 s after start (so loading the configuration and the first samples are not
# counted) and at the end; memory is VmRSS and VmHWM at the end.  The HTTP endpoint is off.
set -euo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: $0 BUILD_DIR [SECONDS]" >&2
  exit 1
fi
LEAKWATCH=$1/leakwatch
SECONDS_RUN=${2:-300}
[[ -x $LEAKWATCH ]] || { echo "$LEAKWATCH not built" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || { echo "needs root (smaps_rollup of every process)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/leakwatch-agent-idle.XXXXXX)
sleepers=()
agents=()
cleanup() {
  for p in "${agents[@]}" "${sleepers[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cp "$(command -v sleep)" "$WORK/lwidle"
for _ in $(seq 1000); do
  "$WORK/lwidle" 100000 &
  sleepers+=($!)
done
sleep 100000 &
one=$!
sleepers+=("$one")

config() {  # config NAME TARGET-LINE
  cat > "$WORK/$1.yaml" <<EOF
listen: "off"
reports_dir: $WORK/reports-$1
targets:
  - $2
EOF
}
config one "pid: $one"
config n1000 "comm: lwidle"
config all "all: true"

cpu_ns() {  # run time of every thread of $1, ns
  local sum=0 t
  for t in /proc/"$1"/task/*/schedstat; do
    read -r run _ < "$t"
    sum=$((sum + run))
  done
  echo "$sum"
}

declare -A pid start
for name in one n1000 all; do
  "$LEAKWATCH" agent --config "$WORK/$name.yaml" 2> "$WORK/$name.log" &
  pid[$name]=$!
  agents+=($!)
done
sleep 15
for name in one n1000 all; do start[$name]=$(cpu_ns "${pid[$name]}"); done
echo "# $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg), $(ls -d /proc/[0-9]* | wc -l) processes, ${SECONDS_RUN} s"
sleep "$SECONDS_RUN"
printf '%-6s %10s %14s %10s %10s\n' targets watched "cpu ms/min" "VmRSS MiB" "VmHWM MiB"
for name in one n1000 all; do
  p=${pid[$name]}
  used=$(( $(cpu_ns "$p") - ${start[$name]} ))
  case $name in one) watched=1 ;; n1000) watched=1000 ;; all) watched=$(ls -d /proc/[0-9]* | wc -l) ;; esac
  rss=$(awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' /proc/"$p"/status)
  hwm=$(awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' /proc/"$p"/status)
  printf '%-6s %10s %14.2f %10s %10s\n' "$name" "$watched" \
    "$(echo "$used / 1000000 / ($SECONDS_RUN / 60)" | bc -l)" "$rss" "$hwm"
done
echo "# end $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
