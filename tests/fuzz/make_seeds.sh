#!/usr/bin/env bash
# Builds the seed corpora of the fuzz targets into OUT/<target>/ (make fuzz, fuzz-smoke):
# copies of real inputs (tests/data, this machine's /proc and /etc/ld.so.cache), the seeds
# kept in tests/fuzz/seeds, and small ELF objects compiled here (so no binaries beyond
# tests/data/unwind's recorded one are committed).
#   make_seeds.sh OUT SOURCE_DIR CC
set -euo pipefail
out=$1 src=$2 cc=$3
fz=$src/tests/fuzz data=$src/tests/data
rm -rf "$out"
mkdir -p "$out"

seed() {  # seed TARGET NAME < content
  mkdir -p "$out/$1"
  cat > "$out/$1/$2"
}
copy() {  # copy TARGET FILE... (missing or unreadable files are skipped)
  local t=$1
  shift
  mkdir -p "$out/$t"
  for f in "$@"; do
    [[ -r $f ]] && cat "$f" > "$out/$t/$(basename "$f")" 2>/dev/null || true
  done
}
# Committed seeds.
for d in "$fz"/seeds/*/; do
  t=$(basename "$d")
  mkdir -p "$out/$t"
  cp "$d"* "$out/$t/"
done

# Text formats from the test data.
for f in "$data"/report/*.txt "$data"/report_cmd/*.txt; do
  # The first byte picks the sample rate: '0' -> 1 (exact), '3' -> 10.
  { printf 0; cat "$f"; } | seed bcc_text "r1_$(basename "$f")"
  { printf 3; cat "$f"; } | seed bcc_text "r10_$(basename "$f")"
done
copy report_json "$data"/report/*.json
copy html_report "$data"/report/*.json
copy proc_status "$data"/proc/status_*
copy proc_stat "$data"/proc/stat_*
copy smaps_rollup "$data"/proc/smaps_rollup_*
copy meminfo "$data"/proc/meminfo
copy psi "$data"/proc/pressure_memory "$data"/proc/cgroup_v2/memory.pressure*
copy proc_maps "$data"/unwind/maps
# cgroup: the first byte picks the file ('0' memory.stat .. '5' mountinfo).
cg=$data/proc/cgroup_v2
{ printf 0; cat "$cg/memory.stat"; } | seed cgroup 0_memory.stat
{ printf 1; cat "$cg/memory.events"; } | seed cgroup 1_memory.events
for f in "$cg"/memory.max*; do { printf 2; cat "$f"; } | seed cgroup "2_$(basename "$f")"; done
for f in "$cg"/memory.current*; do { printf 3; cat "$f"; } | seed cgroup "3_$(basename "$f")"; done
{ printf 4; cat "$data/proc/proc_cgroup_hybrid"; } | seed cgroup 4_proc_cgroup_hybrid_data
{ printf 5; cat "$data/proc/mountinfo_hybrid"; } | seed cgroup 5_mountinfo_hybrid_data

# This machine's files at build time.
live() {  # live TARGET FILE: the file as read now, under a name saying so
  [[ -r $2 ]] && cat "$2" 2>/dev/null | seed "$1" "live_$(echo "${2#/}" | tr / _)" || true
}
live proc_status /proc/self/status
live proc_stat /proc/self/stat
live smaps_rollup /proc/self/smaps_rollup
live meminfo /proc/meminfo
live psi /proc/pressure/memory
live psi /proc/pressure/io
live proc_maps /proc/self/maps
{ printf 4; cat /proc/self/cgroup; } | seed cgroup 4_self_cgroup
{ printf 5; cat /proc/self/mountinfo; } | seed cgroup 5_self_mountinfo
copy ld_so_cache /etc/ld.so.cache
if [[ -r /proc/kallsyms ]]; then
  head -n 300 /proc/kallsyms | seed kallsyms kallsyms_head
  grep -m 200 '\[' /proc/kallsyms | seed kallsyms kallsyms_modules || true
fi

# Snapshots recorded from a real process.
copy unwinder "$data"/unwind/*.snap

# ELF objects: compiled here, small.
elf=$out/.elf
mkdir -p "$elf"
"$cc" -shared -fPIC -O2 -fno-builtin -o "$elf/libseed.so" "$fz/seed_src/seed_alloc.c" \
  -Wl,-soname,libseed.so.1 -Wl,--enable-new-dtags -Wl,-rpath,/opt/seed/lib:'$ORIGIN' \
  -Wl,--version-script="$fz/seed_src/seed_alloc.map" -Wl,--no-as-needed -lm
"$cc" -shared -fPIC -O2 -fno-builtin -o "$elf/libseed_rpath.so" "$fz/seed_src/seed_alloc.c" \
  -Wl,--disable-new-dtags -Wl,-rpath,/opt/old \
  -Wl,--version-script="$fz/seed_src/seed_alloc.map"
"$cc" -O2 -o "$elf/seed_prog" "$fz/seed_src/seed_prog.c"
"$cc" -O0 -fno-omit-frame-pointer -o "$elf/seed_prog_fp" "$fz/seed_src/seed_prog.c"
# .debug_frame instead of .eh_frame.
"$cc" -O2 -g1 -fno-asynchronous-unwind-tables -fno-unwind-tables -o "$elf/seed_prog_debug_frame" \
  "$fz/seed_src/seed_prog.c"
strip -o "$elf/seed_prog_stripped" "$elf/seed_prog"
cp "$data/unwind/uw_chain_nofp" "$elf/"
for t in elf_symbols elf_dynamic cfi; do
  mkdir -p "$out/$t"
  cp "$elf"/* "$out/$t/"
done
