# The commands a newcomer uses. Each installs what it needs first.
#   make        build the release binary in build/
#   make demo   run the end-to-end demonstration (scripts/demo.sh)
#   make test   the release build (its warnings are errors too), then unit +
#               fuzz-regression + end-to-end tests under ASan/UBSan
#   make bench  issuance, peer-transport, publishing and OCSP benchmarks
#               against baselines
JOBS ?= $(shell nproc)
SAN_BUILD := build-asan
FUZZ_BUILD := build-fuzz

.PHONY: all deps test-deps demo test unit fuzz e2e bench clean

all: deps
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build -j $(JOBS)

deps:
	@scripts/deps.sh build

test-deps:
	@scripts/deps.sh test

demo: all
	scripts/demo.sh build/sallyport

test: test-deps all
	cmake -S . -B $(SAN_BUILD) -DCMAKE_BUILD_TYPE=Debug \
	    -DSP_SANITIZE=address,undefined -DSP_TEST_HOOKS=ON >/dev/null
	cmake --build $(SAN_BUILD) -j $(JOBS)
	cd $(SAN_BUILD) && ctest -L unit --output-on-failure -j $(JOBS)
	$(MAKE) fuzz
	$(MAKE) e2e

fuzz: test-deps
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug \
	    -DSP_FUZZ=ON -DSP_SANITIZE=address,undefined \
	    -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	cd $(FUZZ_BUILD) && ctest -L fuzz --output-on-failure -j $(JOBS)

e2e: test-deps
	cmake --build $(SAN_BUILD) -j $(JOBS)
	SALLYPORT_BIN=$(CURDIR)/$(SAN_BUILD)/sallyport \
	    /usr/bin/python3 -m pytest -q -x tests/e2e

bench: all
	@scripts/deps.sh bench
	build/bench/bench_issue
	/usr/bin/python3 bench/bench_peer.py build/sallyport
	/usr/bin/python3 bench/bench_publish.py build/sallyport
	/usr/bin/python3 bench/bench_ocsp.py build/sallyport

clean:
	rm -rf build $(SAN_BUILD) $(FUZZ_BUILD)
