# Thin wrapper over CMake. `make run` and `make test` do all the set-up on
# a fresh Debian 12 machine (packages via deploy/deps.sh).
BUILD ?= build
SANBUILD ?= build-san
TSANBUILD ?= build-tsan
BENCHBUILD ?= build-bench
JOBS ?= $(shell nproc)
DEMO ?= demo
CMAKE_FLAGS ?=

.PHONY: all deps build run test test-fast test-san test-tsan bench soak fuzz format format-check clean demo

all: build

deps:
	bash deploy/deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLAYERD_WERROR=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	bash tests/fixtures/mkdemo.sh $(DEMO)

run: demo
	@for id in base app patch snap-top; do \
		echo "== layerd entries --store dir:$(DEMO) $$id"; \
		$(BUILD)/layerd entries --store dir:$(DEMO) $$id || exit 1; \
	done
	bash deploy/run-demo.sh $(BUILD)/layerd $(DEMO)

# The suite of a sanitizer build: ASan + UBSan, or ThreadSanitizer (the
# two cannot share a build).
define san_suite
	cmake -S . -B $(1) -DCMAKE_BUILD_TYPE=Debug -DLAYERD_WERROR=ON -D$(2)=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(1) -j $(JOBS)
	LAYERD_SANITIZED=1 bash tests/run.sh $(1)
endef

# The whole suite, then again under ASan + UBSan, then under TSan.
test: build
	bash tests/run.sh $(BUILD)
	$(call san_suite,$(SANBUILD),LAYERD_SANITIZE)
	$(call san_suite,$(TSANBUILD),LAYERD_TSAN)

test-fast: build
	bash tests/run.sh $(BUILD)

test-san: deps
	$(call san_suite,$(SANBUILD),LAYERD_SANITIZE)

test-tsan: deps
	$(call san_suite,$(TSANBUILD),LAYERD_TSAN)

bench:
	bash deploy/deps.sh --bench
	cmake -S . -B $(BENCHBUILD) -DCMAKE_BUILD_TYPE=Release -DLAYERD_TESTS=OFF >/dev/null
	cmake --build $(BENCHBUILD) -j $(JOBS)
	bash tests/bench/run.sh $(BENCHBUILD)/layerd

# Ten minutes (SOAK_SECONDS, after a SOAK_WARMUP of five) of mixed, slow
# and hostile clients at 64-way concurrency (SOAK_CLIENTS) against servers
# built with ASan + UBSan, and release-build servers beside them; not
# part of `make test` (tests/security/soak.sh).
soak: build
	cmake -S . -B $(SANBUILD) -DCMAKE_BUILD_TYPE=Debug -DLAYERD_WERROR=ON -DLAYERD_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(SANBUILD) -j $(JOBS) --target layerd
	bash tests/security/soak.sh $(SANBUILD)/layerd $(BUILD)/layerd

fuzz: deps
	CC=clang cmake -S . -B build-fuzz -DLAYERD_FUZZ=ON >/dev/null
	cmake --build build-fuzz -j $(JOBS)
	bash tests/fuzz/run.sh build-fuzz

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	bash tests/lint/format.sh

clean:
	rm -rf $(BUILD) $(SANBUILD) $(TSANBUILD) $(BENCHBUILD) build-fuzz
	bash -c '. tests/fixtures/engines.sh && engines_umount_below "$$PWD/build-fixtures"'
	rm -rf build-fixtures
