# Thin entry points: `make demo` and `make test` (both install Debian packages first when missing).
BUILD ?= build
JOBS ?= $(shell nproc)
PACKAGES := build-essential cmake libboost-dev libzmq3-dev cppzmq-dev capnproto libcapnp-dev \
  librocksdb-dev libabsl-dev libgtest-dev libgmock-dev libbenchmark-dev libopenblas-dev \
  pkg-config ninja-build ccache python3 python3-torch python3-numpy python3-matplotlib python3-yaml fortunes iproute2 nlohmann-json3-dev \
  docker-compose

.PHONY: deps build test test-sanitize demo bench experiment clean

deps:
	@missing=$$(for p in $(PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing" $$missing; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	else echo "make deps: all Debian packages present"; fi

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600

# The unit and fuzz tests (by their labels) under AddressSanitizer + UBSan, built in build-asan/;
# leaks are errors too, and any UB report stops the test.
test-sanitize: deps
	cmake -S . -B build-asan -G Ninja -DSY_SANITIZE=address,undefined
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/sanitizer/lsan.supp:print_suppressions=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) --timeout 600 -L '^(unit|coordinator|runtime|transport|gpu|syctl|fuzz)$$'

demo: build
	orchestration/local/demo.sh $(BUILD)

bench: build
	@for b in $(BUILD)/bin/*_bench; do echo "== $$b"; $$b || exit 1; done

# `make experiment`: dense vs Switch-N, capacity factors, lb weights, wire dtypes; writes
# EXPERIMENTS.md and docs/experiments/*.png. Corpus: tinyshakespeare next to the repo when
# present, else the fortunes texts. EXPERIMENT_STEPS shortens it (about 40 minutes on 2 cores at 400).
EXPERIMENT_STEPS ?= 400
EXPERIMENT_DIR ?= $(BUILD)/experiment
EXPERIMENT_DATA ?= $(wildcard $(CURDIR)/../shared/data/tinyshakespeare.txt)
experiment: build
	/usr/bin/python3 tools/experiment/experiment.py --build=$(BUILD) --steps=$(EXPERIMENT_STEPS) \
	  --workdir=$(EXPERIMENT_DIR) --data="$(EXPERIMENT_DATA)"

clean:
	rm -rf $(BUILD)
