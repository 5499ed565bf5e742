# Argon: the two commands are `make run` and `make test` (both install what is missing first).
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
DATA_DIR ?= $(CURDIR)/.argon

.PHONY: deps build run test unit integration compat fuzz asan tsan bench format clean

# The compatibility tests need Node.js and npm, the fuzz targets clang; only test targets install them.
test compat fuzz format: export ARGON_TEST_DEPS = 1

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) >/dev/null
	@cmake --build $(BUILD_DIR)

run: build
	@DATA_DIR=$(DATA_DIR) scripts/run.sh

test: build
	@scripts/test.sh

unit: build
	@cd $(BUILD_DIR) && ctest -L unit --output-on-failure

integration: build
	@cd $(BUILD_DIR) && ctest -L integration --output-on-failure

compat: build
	@cd $(BUILD_DIR) && ctest -L compat --output-on-failure

fuzz: deps
	@scripts/fuzz.sh

asan: build
	@scripts/sanitize.sh address

tsan: build
	@scripts/sanitize.sh thread

format: deps
	@scripts/format.sh

bench: build
	@$(BUILD_DIR)/bin/argon_bench_branch
	@$(BUILD_DIR)/bin/argon_bench_snapshot
	@$(BUILD_DIR)/bin/argon_bench_restore
	@$(BUILD_DIR)/bin/argon_bench_proxy
	@$(BUILD_DIR)/bin/argon_bench_history

clean:
	rm -rf $(BUILD_DIR)
