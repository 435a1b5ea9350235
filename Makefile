# leakwatch — top-level entry points.  See README.md.
#   make deps   install the Debian packages the build and tests need (if missing)
#   make build  configure and build (binary: build/leakwatch)
#   make demo   deps + build + trace the bundled leaky demo program
#   make test   deps + build + the whole test suite (unit, real-BPF, end-to-end)
#   make bench  deps + build + benchmarks (results go to bench/results/)
#   make test-asan   the unit and end-to-end tests with leakwatch built with ASan+UBSan
#                    (build-asan/; BPF programs, fixtures and the preload library as usual)
#   make fuzz        every libFuzzer target for FUZZ_SECONDS (default 60) on its growing
#                    corpus (build-fuzz/, clang; FUZZ_TARGETS="cfi kallsyms" for a few,
#                    FUZZ_JOBS=2 for two at once)
#   make fuzz-smoke  every fuzz target on its seeds and saved regression inputs, then
#                    FUZZ_SMOKE_SECONDS (default 10) of fuzzing (for CI)
#   make reliability the fault, load and hazard tests, then RELIABILITY.md from every result
#   make stress      the long fault and load tests (tests/stress)
#   make stress-inject  200 inject-and-trace cycles against busy programs (--inject)

BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
ASAN_BUILD_DIR ?= build-asan
FUZZ_BUILD_DIR ?= build-fuzz
# Debian 12's clang 14 cannot compile the code base (its libstdc++ 12 <expected> needs
# clang 16+); clang-19 is the newest in bookworm.
FUZZ_CC ?= clang-19
FUZZ_CXX ?= clang++-19
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 10
FUZZ_TARGETS ?=

.PHONY: all deps build demo test bench clean test-asan fuzz fuzz-smoke fuzz-build stress reliability \
  stress-inject

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DLEAKWATCH_WERROR=ON >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)

demo: build
	@scripts/demo.sh $(BUILD_DIR)

test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 600

bench: build
	@bench/run.sh $(BUILD_DIR)

# The sanitizer runtimes' settings for the tests (tests/sanitizers/README.md): leaks of
# leakwatch's own processes are reported at exit and fail the test.
ASAN_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=0 \
  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/sanitizers/lsan.supp:print_suppressions=0 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:suppressions=$(CURDIR)/tests/sanitizers/ubsan.supp

test-asan: deps
	@cmake -S . -B $(ASAN_BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLEAKWATCH_WERROR=ON \
	  -DLEAKWATCH_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD_DIR) -j $(JOBS)
	@cd $(ASAN_BUILD_DIR) && $(ASAN_ENV) ctest --output-on-failure -j $(JOBS) --timeout 900 \
	  -L 'unit|e2e' --output-junit asan-junit.xml $(ASAN_CTEST_ARGS)

# The fault, load and field-hazard tests with their figures, then RELIABILITY.md from them
# and from whatever make fuzz, make test-asan and make stress left behind.
RELIABILITY_FILTER = Faults.*:AgentFaults.*:FieldHazards.*
reliability: build
	@$(BUILD_DIR)/tests/e2e_tests --gtest_filter='$(RELIABILITY_FILTER)' \
	  --gtest_output=json:$(BUILD_DIR)/reliability.json
	@$(BUILD_DIR)/tests/unit_tests --gtest_filter='AllocatorPlanGo.*' \
	  --gtest_output=json:$(BUILD_DIR)/reliability-unit.json >/dev/null
	@scripts/reliability-report.py

# The long fault and load tests (about 1 h on 2 cores); the figures land in
# $(BUILD_DIR)/stress.json for scripts/reliability-report.py.
stress: build
	@$(BUILD_DIR)/tests/stress_tests --gtest_output=json:$(BUILD_DIR)/stress.json $(STRESS_ARGS)

fuzz-build: deps
	@cmake -S . -B $(FUZZ_BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLEAKWATCH_TESTS=OFF \
	  -DLEAKWATCH_FUZZ=ON -DCMAKE_C_COMPILER=$(FUZZ_CC) -DCMAKE_CXX_COMPILER=$(FUZZ_CXX) >/dev/null
	@cmake --build $(FUZZ_BUILD_DIR) -j $(JOBS) --target fuzz_all

fuzz: fuzz-build
	@tests/fuzz/run.sh fuzz $(FUZZ_BUILD_DIR) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-smoke: fuzz-build
	@tests/fuzz/run.sh smoke $(FUZZ_BUILD_DIR) $(FUZZ_SMOKE_SECONDS) $(FUZZ_TARGETS)

stress-inject: build
	@cd $(BUILD_DIR) && LEAKWATCH_STRESS_CYCLES=$${LEAKWATCH_STRESS_CYCLES:-200} \
	  tests/e2e_tests --gtest_filter='MemleakInjectStress.*'

clean:
	rm -rf $(BUILD_DIR) $(ASAN_BUILD_DIR) $(FUZZ_BUILD_DIR)
