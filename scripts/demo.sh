#!/usr/bin/env bash
# make demo: trace the bundled leaky program with leakwatch memleak and print its report.
set -euo pipefail
build=${1:-build}
if [[ $(id -u) -ne 0 ]]; then
  echo "leakwatch demo: needs root (BPF); run: sudo make demo" >&2
  exit 1
fi
cat <<'TXT'
== leakwatch demo ==========================================================
examples/leaky_demo.cpp handles "requests" for 6 seconds: every 4th request leaks its
Session (new Session + a 1 KiB vector buffer), a 64-entry cache stays bounded, and a
4 KiB temporary buffer is freed each time.  leakwatch starts it with its probes already
attached (-c), reports every 2 seconds, and prints the final report when it exits.
Each stack ends with a verdict: leak (keeps growing), cache (levels off), transient.
=============================================================================
TXT
exec "$build/leakwatch" memleak -c "$build/leaky-demo 6" -T 5 2
