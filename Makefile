# hwimage — two commands on a fresh Debian 12 machine, as root:
#   make demo   builds the default hardware image and boots it in QEMU (UEFI + Secure Boot)
#   make test   runs the unit tier and the integration tier (real tools, real QEMU boots)

SHELL := /bin/bash
OUT ?= out/demo
TEST_IMAGE_DIR ?= .cache/test-image
TEST_CLOUD_IMAGE_DIR ?= .cache/test-image-cloud
DEPLOY_ENV_DIR ?= .cache/deploy-env

.PHONY: setup setup-ironic demo test test-unit test-integration test-deploy test-4kn test-cycle test-images deploy-env bench typecheck lint format clean

setup:
	@scripts/setup.sh

# setup plus OpenStack Ironic and OpenIPMI for lab/ironic (docs/ironic.md): not needed by make test.
setup-ironic:
	@scripts/setup.sh --ironic

demo: setup
	@start=$$(date +%s); ./bin/hwimage build -o $(OUT) && \
	  echo "build took $$(( $$(date +%s) - start )) s" && \
	  start=$$(date +%s) && ./bin/hwimage boot $(OUT) --firmware uefi-sb && \
	  echo "boot (QEMU TCG, OVMF with Secure Boot, Microsoft keys) took $$(( $$(date +%s) - start )) s"

typecheck: setup
	node_modules/.bin/tsc --noEmit -p .

# The formatter and linter (Biome): `make lint` checks what `make format` would change and the lint rules.
lint: setup
	node_modules/.bin/biome ci .

format: setup
	node_modules/.bin/biome check --write .

test: setup typecheck lint
	$(MAKE) --no-print-directory test-unit
	$(MAKE) --no-print-directory test-integration

test-unit: setup
	shopt -s globstar nullglob; node --import tsx --test --test-concurrency=2 --test-reporter=spec src/**/*.test.ts

# Images built once per run and shared by every integration test: the default
# (server kernel) and a cloud-kernel image for the lab's expected failures.
# REUSE_TEST_IMAGE=1 keeps images from an earlier run while developing.
test-images: setup
	@for pair in "$(TEST_IMAGE_DIR):" "$(TEST_CLOUD_IMAGE_DIR):tests/integration/cloud-spec.yaml"; do \
	  dir=$${pair%%:*}; spec=$${pair#*:}; \
	  if [ "$(REUSE_TEST_IMAGE)" = 1 ] && [ -f $$dir/manifest.json ]; then echo "reusing $$dir"; continue; fi; \
	  rm -rf $$dir && ./bin/hwimage build $$spec -o $$dir || exit 1; \
	done

# The network deploy environment (kernel + initramfs running hwimage), like test-images:
# REUSE_TEST_IMAGE=1 keeps one from an earlier run.
deploy-env: setup
	@if [ "$(REUSE_TEST_IMAGE)" = 1 ] && [ -f $(DEPLOY_ENV_DIR)/manifest.json ]; then echo "reusing $(DEPLOY_ENV_DIR)"; \
	else rm -rf $(DEPLOY_ENV_DIR) && ./bin/hwimage build-deploy -o $(DEPLOY_ENV_DIR) --no-measure; fi

test-integration: setup test-images deploy-env
	shopt -s globstar nullglob; HWIMAGE_TEST_IMAGE_DIR=$(abspath $(TEST_IMAGE_DIR)) \
	  HWIMAGE_TEST_CLOUD_IMAGE_DIR=$(abspath $(TEST_CLOUD_IMAGE_DIR)) \
	  HWIMAGE_DEPLOY_ENV_DIR=$(abspath $(DEPLOY_ENV_DIR)) \
	  node --import tsx --test --test-concurrency=1 --test-reporter=spec tests/integration/*.test.ts

# The network deploy's longer matrix under QEMU (faults; a real network with dnsmasq): not in `make test`.
test-deploy: setup test-images deploy-env
	HWIMAGE_TEST_IMAGE_DIR=$(abspath $(TEST_IMAGE_DIR)) HWIMAGE_TEST_CLOUD_IMAGE_DIR=$(abspath $(TEST_CLOUD_IMAGE_DIR)) \
	  HWIMAGE_DEPLOY_ENV_DIR=$(abspath $(DEPLOY_ENV_DIR)) \
	  node --import tsx --test --test-concurrency=1 --test-reporter=spec tests/deploy/*.test.ts

# OpenStack Ironic (Debian 12's 21.4, lab/ironic/) deploys the test image into a QEMU machine
# through its ipmi driver (OpenIPMI's ipmi_sim) with hwimage's deploy environment as its agent,
# then the same machine with a stock-IPA config drive, then a wrong checksum (tests/ironic/,
# docs/ironic.md; ~25 min of QEMU). Installs Ironic's ~220 packages first. Not in `make test`.
.PHONY: test-ironic
test-ironic: setup-ironic test-images deploy-env
	HWIMAGE_TEST_IMAGE_DIR=$(abspath $(TEST_IMAGE_DIR)) HWIMAGE_DEPLOY_ENV_DIR=$(abspath $(DEPLOY_ENV_DIR)) \
	  node --import tsx --test --test-concurrency=1 --test-reporter=spec tests/ironic/*.test.ts

# The built image installed onto a 4Kn disk and booted under OVMF Secure Boot (one boot, ~1.5 min):
# out of `make test` to keep it under its 40-minute budget.
test-4kn: setup test-images
	HWIMAGE_TEST_IMAGE_DIR=$(abspath $(TEST_IMAGE_DIR)) \
	  node --import tsx --test --test-concurrency=1 --test-reporter=spec tests/4kn/*.test.ts

# Faults under load (tests/load/): hwimage serve killed with SIGKILL under 32 downloads and
# 100 simulated deploy agents, then started again; slow and hostile clients are in the unit
# tier (src/serve/hostile-clients.test.ts). No QEMU; ~40 s. Not in `make test`.
.PHONY: test-load
test-load: setup
	node --import tsx --test --test-concurrency=1 --test-reporter=spec tests/load/*.test.ts

# The dashboard's browser test (tests/integration/dashboard.test.ts, chromium in `make test`) in
# Firefox (firefox-esr through puppeteer-core, WebDriver BiDi); ~15 s once the test images exist. Not in `make test`.
.PHONY: test-firefox
test-firefox: setup test-images
	HWIMAGE_BROWSER=firefox HWIMAGE_TEST_IMAGE_DIR=$(abspath $(TEST_IMAGE_DIR)) \
	  node --import tsx --test --test-concurrency=1 --test-reporter=spec tests/integration/dashboard.test.ts

# hwimage convert on the cloud-kernel test image: the conversion, the lab (input and output on
# 10 cells each), an input without boot code (2 boots), an upgrade boot with a reboot (~40 min of
# QEMU), and the server flavor's kernel reinstalled in a chroot of the test image (~1 min): out of `make test`.
.PHONY: test-convert
test-convert: setup test-images
	node_modules/.bin/tsc -p tsconfig.build.json
	HWIMAGE_TEST_IMAGE_DIR=$(abspath $(TEST_IMAGE_DIR)) HWIMAGE_TEST_CLOUD_IMAGE_DIR=$(abspath $(TEST_CLOUD_IMAGE_DIR)) \
	  node --import tsx --test --test-concurrency=1 --test-reporter=spec tests/convert/*.test.ts

# The build cycle with a changed spec (the default spec plus a package: a build, a publish, a
# CHANGELOG); the no-change cycle and the reproducibility check are in `make test`.
test-cycle: setup test-images
	HWIMAGE_TEST_IMAGE_DIR=$(abspath $(TEST_IMAGE_DIR)) \
	  node --import tsx --test --test-concurrency=1 --test-reporter=spec tests/cycle/*.test.ts

# The default image (the test image, built here when missing) unless HWIMAGE_BENCH_IMAGE_DIR names another.
bench: setup
	@if [ -z "$$HWIMAGE_BENCH_IMAGE_DIR" ] && [ ! -f $(TEST_IMAGE_DIR)/manifest.json ]; then ./bin/hwimage build -o $(TEST_IMAGE_DIR); fi
	HWIMAGE_BENCH_IMAGE_DIR=$${HWIMAGE_BENCH_IMAGE_DIR:-$(abspath $(TEST_IMAGE_DIR))} node --import tsx bench/install-bench.ts

# hwimage serve at fleet scale (docs/benchmarks.md, "serve at load"): 32 and 128 clients downloading
# the default image from serve and from nginx (paired rounds), then 1,000 simulated deploy agents.
# Not in `make test`; ~3 min on an idle machine.
.PHONY: bench-serve
bench-serve: setup
	@if [ -z "$$HWIMAGE_BENCH_IMAGE_DIR" ] && [ ! -f $(TEST_IMAGE_DIR)/manifest.json ]; then ./bin/hwimage build -o $(TEST_IMAGE_DIR); fi
	HWIMAGE_BENCH_IMAGE_DIR=$${HWIMAGE_BENCH_IMAGE_DIR:-$(abspath $(TEST_IMAGE_DIR))} node --import tsx bench/serve-bench.ts

# squid (lab/squid/squid.conf) as a caching reverse proxy in front of serve: installs through it,
# the second from its cache, a resumed request (docs/deploy.md "At fleet scale"); 30-50 s, not in make test.
.PHONY: test-cache
test-cache: setup test-images
	HWIMAGE_TEST_IMAGE_DIR=$(abspath $(TEST_IMAGE_DIR)) \
	  node --import tsx --test --test-concurrency=1 --test-reporter=spec tests/cache/*.test.ts

clean:
	rm -rf dist out .cache
