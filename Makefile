# leakwatch — top-level entry points.  See README.md.
#   make deps   install the Debian packages the build and tests need (if missing)
#   make build  configure and build (binary: build/leakwatch)
#   make demo   deps + build + trace the bundled leaky demo program
#   make test   deps + build + the whole test suite (unit, real-BPF, end-to-end)
#   make bench  deps + build + benchmarks (results go to bench/results/)
#   make stress-inject  200 inject-and-trace cycles against busy programs (--inject)

BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)

.PHONY: all deps build demo test bench stress-inject clean

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

stress-inject: build
	@cd $(BUILD_DIR) && LEAKWATCH_STRESS_CYCLES=$${LEAKWATCH_STRESS_CYCLES:-200} \
	  tests/e2e_tests --gtest_filter='MemleakInjectStress.*'

clean:
	rm -rf $(BUILD_DIR)
