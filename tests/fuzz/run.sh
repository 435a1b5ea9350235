#!/usr/bin/env bash
# Runs the fuzz targets of a LEAKWATCH_FUZZ build (make fuzz, make fuzz-smoke).
#
#   run.sh fuzz  BUILD_DIR SECONDS [TARGET...]   each target for SECONDS on its growing
#                                                corpus (BUILD_DIR/fuzz/corpus/T)
#   run.sh smoke BUILD_DIR SECONDS [TARGET...]   each target on its seeds and the saved
#                                                regression inputs, then SECONDS of fuzzing
#                                                from there (a throwaway corpus)
#
# Targets are named without the fuzz_ prefix (bcc_text, cfi, ...); all when none is given.
# FUZZ_JOBS targets run at once (default 1), under nice.  Each run appends one line to
# BUILD_DIR/fuzz/results.tsv:
#   date  mode  target  seconds  executions  corpus_files  new_units  peak_rss_mb  result
# and keeps its log in BUILD_DIR/fuzz/logs/.  A crash, leak, UB report or timeout leaves
# its input in BUILD_DIR/fuzz/artifacts/T/ and makes the script exit 1.
set -uo pipefail
mode=${1:?mode: fuzz or smoke} build=${2:?build dir} seconds=${3:?seconds}
shift 3
here=$(cd "$(dirname "$0")" && pwd)
fz=$build/fuzz
mkdir -p "$fz/logs" "$fz/artifacts" "$fz/corpus"
if (($# == 0)); then
  set -- $(cd "$fz" && ls fuzz_* | sed 's/^fuzz_//')
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$(command -v llvm-symbolizer-19 || command -v llvm-symbolizer)}

run_one() {
  local t=$1 bin=$fz/fuzz_$1 corpus log dirs=()
  [[ -x $bin ]] || { echo "fuzz: no target $t ($bin)" >&2; return 1; }
  if [[ $mode == smoke ]]; then
    corpus=$fz/smoke/$t
    rm -rf "$corpus"
  else
    corpus=$fz/corpus/$t
  fi
  mkdir -p "$corpus" "$fz/artifacts/$t"
  [[ -d $fz/seeds/$t ]] && dirs+=("$fz/seeds/$t")
  [[ -d $here/regressions/$t ]] && dirs+=("$here/regressions/$t")
  local extra=()
  [[ -f $here/dicts/$t.dict ]] && extra+=("-dict=$here/dicts/$t.dict")
  log=$fz/logs/$mode-$t.log
  local start=$SECONDS
  nice -n 10 "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$fz/artifacts/$t/" "${extra[@]}" \
    "$corpus" "${dirs[@]}" > "$log" 2>&1
  local rc=$? result=ok
  ((rc != 0)) && result="FAILED(rc=$rc)"
  local execs new rss files
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  new=$(sed -n 's/^stat::new_units_added: *//p' "$log" | tail -1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
  files=$(find "$corpus" "${dirs[@]}" -type f | wc -l)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$mode" "$t" \
    "$((SECONDS - start))" "${execs:-0}" "$files" "${new:-0}" "${rss:-0}" "$result" \
    >> "$fz/results.tsv"
  printf 'fuzz %-5s %-16s %4ss %10s execs %6s inputs  %s\n' "$mode" "$t" \
    "$((SECONDS - start))" "${execs:-0}" "$files" "$result"
  if [[ $result != ok ]]; then
    grep -m 20 -E "ERROR|SUMMARY|runtime error|Test unit written|==[0-9]+==" "$log" | sed 's/^/    /'
    return 1
  fi
}

jobs_max=${FUZZ_JOBS:-1}
marker=$fz/.failed.$$
rm -f "$marker"
for t in "$@"; do
  { run_one "$t" || touch "$marker"; } &
  while (($(jobs -rp | wc -l) >= jobs_max)); do wait -n; done
done
wait
[[ -e $marker ]] && { rm -f "$marker"; exit 1; }
exit 0
