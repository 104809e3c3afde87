# hwimage — two commands on a fresh Debian 12 machine, as root:
#   make demo   builds the default hardware image and boots it in QEMU (UEFI + Secure Boot)
#   make test   runs the unit tier and the integration tier (real tools, real QEMU boots)

SHELL := /bin/bash
OUT ?= out/demo
TEST_IMAGE_DIR ?= .cache/test-image

.PHONY: setup demo test test-unit test-integration test-image bench typecheck clean

setup:
	@scripts/setup.sh

demo: setup
	@start=$$(date +%s); ./bin/hwimage build -o $(OUT) && \
	  echo "build took $$(( $$(date +%s) - start )) s" && \
	  start=$$(date +%s) && ./bin/hwimage boot $(OUT) --firmware uefi-sb && \
	  echo "boot (QEMU TCG, OVMF with Secure Boot, Microsoft keys) took $$(( $$(date +%s) - start )) s"

typecheck: setup
	node_modules/.bin/tsc --noEmit -p .

test: setup typecheck
	$(MAKE) --no-print-directory test-unit
	$(MAKE) --no-print-directory test-integration

test-unit: setup
	shopt -s globstar nullglob; node --import tsx --test --test-reporter=spec src/**/*.test.ts

# One image per run, shared by every integration test (HWIMAGE_TEST_IMAGE_DIR).
# Set REUSE_TEST_IMAGE=1 to keep an image from an earlier run while developing.
test-image: setup
	@if [ "$(REUSE_TEST_IMAGE)" = 1 ] && [ -f $(TEST_IMAGE_DIR)/manifest.json ]; then \
	  echo "reusing $(TEST_IMAGE_DIR)"; \
	else rm -rf $(TEST_IMAGE_DIR); ./bin/hwimage build -o $(TEST_IMAGE_DIR); fi

test-integration: setup test-image
	shopt -s globstar nullglob; HWIMAGE_TEST_IMAGE_DIR=$(abspath $(TEST_IMAGE_DIR)) \
	  node --import tsx --test --test-concurrency=1 --test-reporter=spec tests/integration/*.test.ts

bench: setup
	node --import tsx bench/install-bench.ts

clean:
	rm -rf dist out .cache
