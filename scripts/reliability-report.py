#!/usr/bin/env python3
"""Writes RELIABILITY.md from the results of the reliability runs.

Inputs (each optional; a missing one leaves its section saying how to produce it):
  build/reliability*.json       make reliability: the fault, load and hazard tests (gtest JSON)
  build/stress.json             make stress: their long versions (gtest JSON)
  build-fuzz/fuzz/results.tsv   make fuzz / make fuzz-smoke: one line per target run
  build-asan/asan-junit.xml     make test-asan: ctest's JUnit report
and, from the source tree, tests/fuzz/regressions/ (one file per fixed finding) and the
sanitizer suppression files.

  scripts/reliability-report.py [--root DIR] [--out FILE]
"""
import argparse
import collections
import datetime
import glob
import json
import os
import subprocess
import xml.etree.ElementTree as ET

# What each test does, in the words of the table.  Keys: gtest "Suite.Name".
CASES = {
    "Faults.SigkillOfMemleakLeavesTargetRunningAndNothingAttached":
        ("fault", "SIGKILL of `memleak -p` mid-trace (uprobes on a 2-thread busy target)",
         "target keeps running; every BPF program and link leakwatch held is gone"),
    "Faults.SigkillOfMemleakOnInProcessTargetLeavesItRunning":
        ("fault", "SIGKILL of `memleak -p` tracing a target that runs the preload library",
         "target keeps running at full speed with nobody reading its records; nothing left attached"),
    "Faults.SigkillOfGrowthLeavesTargetRunningAndNothingAttached":
        ("fault", "SIGKILL of `growth -p` mid-trace", "target keeps running; nothing left attached"),
    "Faults.AttachDetachCyclesGrowNothing":
        ("load", "`memleak -p` attached and detached 50 times to a busy target",
         "target's RSS, descriptors and mappings do not grow"),
    "Faults.AgentInvestigationCyclesGrowNothing":
        ("load", "the agent investigating one growing target 50 times in a row",
         "agent's RSS and descriptors do not grow; between investigations only layer 1's iterator is held (the same BPF objects throughout)"),
    "Faults.TargetForkingAndExecingInALoop":
        ("load", "target forking and exec'ing itself 50 times while traced",
         "every child exits 0; the parent's leak counted exactly"),
    "Faults.TargetDlopeningAndDlclosingAnAllocatingLibrary":
        ("load", "dlopen + allocate + dlclose of a library 200 times while traced",
         "leak counted exactly; its frame named when the library was mapped at a maps read (the "
         "fast loop unloads it first: left unknown), never given another object's name"),
    "Faults.SixteenThreadsFreeingAcrossThreadsExact":
        ("load", "16 threads freeing each other's blocks at full speed, exact mode (80,000 pairs)",
         "nothing outstanding but the known leak; any difference covered by a counted loss"),
    "Faults.TargetExitingDuringAReport":
        ("fault", "target with 2,000 leaking stacks exiting during a 0.3 s periodic report",
         "exit status 3 and a complete final report, every stack symbolized"),
    "Faults.PidReusedByANewProcess":
        ("fault", "traced process exits and a new one gets its pid at once (clone3 set_tid)",
         "trace ends with status 3; nothing of the newcomer counted"),
    "Faults.AllocatorRecursionDeeperThanTheUretprobeLimit":
        ("fault", "malloc re-entering itself 100 deep (kernel limit: 64 nested uretprobes), session and classic probes",
         "target survives; later allocations exact; deep ones counted once or lost-and-counted"),
    "AgentFaults.ReportsDirFullOrReadOnlyIsCountedAndSurvived":
        ("fault", "agent's reports_dir full (1 MiB tmpfs, ENOSPC), then read-only (EROFS)",
         "agent keeps running; index.json stays valid; each failure logged and counted in leakwatch_report_errors_total"),
    "AgentFaults.HundredTargetsTriggeringAtOnce":
        ("load", "the agent watching 100 growing processes that all trigger within seconds (20 s)",
         "max_concurrent holds; collection keeps pace; /metrics answers within 1 s"),
    "FieldHazards.GoProgramIsRefusedWithAClearMessage":
        ("hazard", "a Go program (built at test time with golang-go)",
         "refused with one line naming Go; nothing attached; program unharmed"),
    "FieldHazards.CgoProgramIsTracedInItsCCodeAndKeepsWorking":
        ("hazard", "a cgo program whose goroutines recurse 1,500 deep and call C that mallocs",
         "C leak counted exactly; warning that Go's heap is not seen; program exits 0"),
    "FieldHazards.SeccompAllowlistTargetSurvivesReturnProbes":
        ("hazard", "seccomp allowlist (uretprobe/uprobe syscalls not allowed, default kill), session and classic",
         "target survives; leak exact"),
    "FieldHazards.SeccompFilterDenyingTheUprobeSyscallsTargetSurvives":
        ("hazard", "seccomp filter killing on the uretprobe and uprobe syscalls",
         "target survives; leak exact"),
    "FieldHazards.SeccompTargetWithThePreloadLibrarySurvivesItsHookProbes":
        ("hazard", "seccomp-confined target running the preload library (NOP5 hook probes)",
         "target survives; leak exact"),
    "FieldHazards.LibrariesReplacedOnDiskWhileMapped":
        ("hazard", "allocator (jemalloc) and plugin replaced on disk while mapped (\"(deleted)\")",
         "probes land in the mapped jemalloc; leak named from the mapped plugin"),
    "FieldHazards.TargetInAnotherMountNamespaceWithASameNamedLibrary":
        ("hazard", "target in another mount namespace where the allocator and plugin paths name other files",
         "probes and symbols from the target's files, not leakwatch's"),
    "AllocatorPlanGo.StaticGoProgramIsRefusedWithAClearMessage":
        ("hazard", "allocator planning on a static Go executable", "refused, one line"),
    "AllocatorPlanGo.CgoProgramIsTracedInLibcWithAWarning":
        ("hazard", "allocator planning on a cgo executable", "libc's allocator probed, warning"),
    "AllocatorPlanGo.CAllocatorInsideAGoExecutableIsProbed":
        ("hazard", "a C allocator linked into a Go executable", "probed (C code runs on system stacks)"),
    "AllocatorPlanGo.GoFunctionsOfTheExecutableAreNeverProbed":
        ("hazard", "a Go-named allocation API asked for with --symbols-prefix", "never probed"),
    "AllocatorPlanGo.ExplicitGoObjectIsRefused":
        ("hazard", "-O naming a Go executable", "refused, one line"),
    "Stress.ThousandAttachDetachCycles":
        ("load", "`memleak -p` attached and detached 1,000 times to a busy target",
         "target's RSS, descriptors and mappings do not grow"),
    "Stress.ThousandAgentInvestigations":
        ("load", "the agent investigating one growing target 1,000 times in a row",
         "agent's RSS and descriptors do not grow; between investigations only layer 1's iterator is held (the same BPF objects throughout)"),
    "Stress.ForkExecThousandTimes":
        ("load", "target forking and exec'ing itself 1,000 times while traced", "children exit 0; leak exact"),
    "Stress.DlopenDlcloseTwoThousandTimes":
        ("load", "dlopen/dlclose of an allocating library 2,000 times while traced", "leak exact; frames unknown or right, never misnamed"),
    "Stress.SixteenThreadsMillionsOfCrossThreadFrees":
        ("load", "16 threads, 1.6 million cross-thread malloc/free pairs, exact mode",
         "nothing outstanding but the leak; differences covered by counted losses"),
    "Stress.HundredTargetsForFiveMinutes":
        ("load", "the agent watching 100 growing processes for 5 minutes",
         "max_concurrent holds; collection keeps pace; /metrics within 1 s"),
}

FUZZ_INPUTS = {
    "agent_config": "agent YAML configuration",
    "bcc_text": "BCC memleak / leakwatch text reports",
    "cfi": "ELF .eh_frame/.debug_frame, rows applied",
    "cgroup": "cgroup v2 files, /proc/PID/cgroup, mountinfo",
    "elf_dynamic": "ELF dynamic section, PT_INTERP, GOT relocations",
    "elf_symbols": "ELF symbols, probe placement, allocator planning",
    "html_report": "JSON rendered as the HTML report (growth reports of any shape, stored reports)",
    "kallsyms": "/proc/kallsyms",
    "ld_so_cache": "/etc/ld.so.cache",
    "meminfo": "/proc/meminfo",
    "proc_maps": "/proc/PID/maps",
    "proc_stat": "/proc/PID/stat",
    "proc_status": "/proc/PID/status",
    "psi": "PSI files",
    "report_index": "agent reports_dir/index.json",
    "report_json": "JSON reports (and their round trip)",
    "seccomp_filter": "seccomp BPF filters read from an injection target's threads",
    "smaps_rollup": "/proc/PID/smaps_rollup",
    "unwind_rules": "CFI rows and DWARF expressions (unwinder's interpreter)",
    "unwinder": "stack snapshot records through the DWARF unwinder",
}


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def gtest_cases(doc):
    """(suite.name, result, seconds, properties, failure text) for each test of a gtest JSON."""
    out = []
    for suite in (doc or {}).get("testsuites", []):
        for t in suite.get("testsuite", []):
            name = f"{suite['name']}.{t['name']}"
            props = {k: v for k, v in t.items() if k not in (
                "name", "file", "line", "status", "result", "timestamp", "time", "classname",
                "failures", "type_param", "value_param")}
            failures = t.get("failures", [])
            result = "FAILED" if failures else ("skipped" if t.get("result") == "SKIPPED" else "passed")
            seconds = float(str(t.get("time", "0s")).rstrip("s") or 0)
            text = failures[0]["failure"].splitlines()[0] if failures else ""
            out.append((name, result, seconds, props, text))
    return out


def fmt_figure(v):
    try:
        x = float(v)
    except ValueError:
        return v
    if x.is_integer():
        return f"{int(x):,}"
    return f"{x:.3g}"


def figures_text(props):
    if not props:
        return ""
    return "; ".join(f"{k.replace('_', ' ')} {fmt_figure(v)}" for k, v in props.items())


def fuzz_section(root, lines):
    tsv = os.path.join(root, "build-fuzz/fuzz/results.tsv")
    reg_dir = os.path.join(root, "tests/fuzz/regressions")
    corpus_dir = os.path.join(root, "build-fuzz/fuzz/corpus")
    totals = collections.OrderedDict()
    for t in sorted(FUZZ_INPUTS):
        totals[t] = {"seconds": 0, "execs": 0, "smoke_runs": 0, "runs": 0, "last": "not run"}
    runs = 0
    first = last = None
    if os.path.exists(tsv):
        with open(tsv) as f:
            for row in f:
                parts = row.rstrip("\n").split("\t")
                if len(parts) < 9:
                    continue
                when, mode, target, secs, execs, files, _new, _rss, result = parts[:9]
                d = totals.setdefault(target, {"seconds": 0, "execs": 0, "smoke_runs": 0,
                                               "runs": 0, "last": "not run"})
                runs += 1
                first = first or when
                last = when
                if mode == "smoke":
                    d["smoke_runs"] += 1
                else:
                    d["runs"] += 1
                    d["seconds"] += int(secs)
                    d["execs"] += int(execs)
                d["last"] = result
    lines.append("## Fuzzing (bad inputs tried)\n")
    if runs == 0:
        lines.append("No fuzz results found: run `make fuzz` (`build-fuzz/fuzz/results.tsv`).\n")
        return
    lines.append(f"From `build-fuzz/fuzz/results.tsv`: {runs} target runs between {first} and "
                 f"{last} (libFuzzer, ASan+UBSan, clang-19; two targets at a time under `nice` "
                 "on the shared 2-core machine).  Runtime and executions are summed over the "
                 "`make fuzz` runs; the corpus is what `build-fuzz/fuzz/corpus/T` holds now; a "
                 "finding fixed is an input kept in `tests/fuzz/regressions/T` with a unit test "
                 "(`tests/unit/fuzz_regressions_test.cpp`).\n")
    lines.append("| target | input | fuzzed | executions | corpus | findings fixed | last run |")
    lines.append("|---|---|---:|---:|---:|---:|---|")
    for t, d in totals.items():
        corpus = os.path.join(corpus_dir, t)
        n_corpus = len(os.listdir(corpus)) if os.path.isdir(corpus) else 0
        reg = os.path.join(reg_dir, t)
        n_found = len([f for f in os.listdir(reg) if not f.startswith(".")]) if os.path.isdir(reg) else 0
        mins = d["seconds"] / 60
        lines.append(f"| `{t}` | {FUZZ_INPUTS.get(t, '')} | {mins:.1f} min | {d['execs']:,} | "
                     f"{n_corpus:,} | {n_found} | {d['last']} |")
    lines.append("")


def asan_section(root, lines):
    # make test-asan writes asan-junit.xml; a run split by label (ctest -L unit, -L e2e)
    # asan-junit-<label>.xml.  A test in several files counts as in the newest.
    paths = sorted(glob.glob(os.path.join(root, "build-asan/asan-junit*.xml")),
                   key=os.path.getmtime)
    lines.append("## Sanitizers\n")
    supp = []
    for name in ("lsan.supp", "ubsan.supp"):
        p = os.path.join(root, "tests/sanitizers", name)
        if os.path.exists(p):
            with open(p) as f:
                supp += [f"{name}: {l.strip()}" for l in f if l.strip() and not l.startswith("#")]
    if not paths:
        lines.append("No sanitizer results found: run `make test-asan` (`build-asan/asan-junit.xml`).\n")
        return
    status_of = {}
    for path in paths:
        for tc in ET.parse(path).iter("testcase"):
            name = tc.get("name", "")
            status = tc.get("status", "run")
            if tc.find("failure") is not None or status == "fail":
                status_of[name] = "failed"
            elif tc.find("skipped") is not None or status in ("notrun", "disabled"):
                status_of[name] = "skipped"
            else:
                status_of[name] = "passed"
    counts = collections.Counter()
    failed = []
    for name, status in sorted(status_of.items()):
        counts[(name.split(".")[0], status)] += 1
        if status == "failed":
            failed.append(name)
    path = paths[-1]
    when = datetime.datetime.fromtimestamp(os.path.getmtime(path)).strftime("%Y-%m-%d %H:%M")
    lines.append(f"`make test-asan` ({when}): leakwatch's code built with ASan+UBSan "
                 "(`-fno-sanitize-recover=all`), LeakSanitizer on at every leakwatch exit; the "
                 "end-to-end tests run the sanitized `leakwatch`.\n")
    lines.append("| tests | passed | failed | skipped |")
    lines.append("|---|---:|---:|---:|")
    for kind in sorted({k for k, _ in counts}):
        lines.append(f"| {kind} | {counts[(kind, 'passed')]} | {counts[(kind, 'failed')]} | "
                     f"{counts[(kind, 'skipped')]} |")
    lines.append("")
    if failed:
        lines.append("Failed: " + ", ".join(f"`{f}`" for f in failed) + "\n")
    lines.append(f"Suppressions: {len(supp)}" + ("" if not supp else ":"))
    for s in supp:
        lines.append(f"- `{s}`")
    lines.append("")


def cases_section(root, lines, doc, source, kinds, title):
    rows = [c for c in gtest_cases(doc) if CASES.get(c[0], ("", ""))[0] in kinds]
    lines.append(f"## {title}\n")
    if not rows:
        lines.append(f"No results found: run the command below ({source}).\n")
        return
    lines.append("| case | what is done | expected | result | figures |")
    lines.append("|---|---|---|---|---|")
    for name, result, seconds, props, text in rows:
        _, what, expected = CASES[name]
        res = result if result != "FAILED" else f"FAILED: {text}"
        lines.append(f"| `{name}` | {what} | {expected} | {res} ({seconds:.0f} s) | "
                     f"{figures_text(props)} |")
    lines.append("")


def http_line(root):
    """The HTTP hardening is tested by another part of the project: name its test if present."""
    e2e = os.path.join(root, "tests/e2e")
    for f in sorted(os.listdir(e2e)) if os.path.isdir(e2e) else []:
        if f.endswith("_test.cpp") and "http" in f:
            return f"HTTP endpoint (idle and slow clients, concurrent requests, limits): covered by tests/e2e/{f} (defects)."
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    root = args.root
    out = args.out or os.path.join(root, "RELIABILITY.md")
    rel = {"testsuites": []}
    for name in ("build/reliability.json", "build/reliability-unit.json"):
        doc = load_json(os.path.join(root, name))
        if doc:
            rel["testsuites"] += doc.get("testsuites", [])
    stress = load_json(os.path.join(root, "build/stress.json"))
    commit = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    lines = ["# Reliability", "",
             "What leakwatch is tested against beyond its functional tests: bad input (fuzzing),",
             "memory and undefined-behaviour errors (sanitizers), faults, load, and hazards met in",
             "the field.  This file is generated by `scripts/reliability-report.py` from the",
             f"results of the runs below (tree at {commit} when generated); do not edit by hand.", ""]
    fuzz_section(root, lines)
    asan_section(root, lines)
    cases_section(root, lines, rel, "make reliability", {"fault", "load"},
                  "Faults and load (make test slices)")
    cases_section(root, lines, stress, "make stress", {"load"}, "Load held (make stress)")
    cases_section(root, lines, rel, "make reliability", {"hazard"}, "Field hazards")
    http = http_line(root)
    if http:
        lines.append("## HTTP\n")
        lines.append(http + "\n")
    lines += ["## Reproduce", "",
              "    make fuzz FUZZ_SECONDS=600 FUZZ_JOBS=2   # every target 10 min (build-fuzz/)",
              "    make fuzz-smoke                          # seeds + regressions, 10 s each (CI)",
              "    make test-asan                           # unit + e2e under ASan+UBSan (build-asan/)",
              "    make reliability                         # fault/load/hazard tests, then this file",
              "    make stress                              # the long load tests (~1 h), then:",
              "    scripts/reliability-report.py",
              ""]
    with open(out, "w") as f:
        f.write("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
