# Smart-contract targets (include from the main Makefile: `include contracts.mk`).
#   make chain-deps       install the pinned solc-js and anvil from npm into contracts/node_modules
#   make contracts        install, then rebuild contracts/artifacts/CheckpointRegistry.json
#   make contracts-check  rebuild into a temporary file; fail if it differs from the committed one
#
# --ignore-scripts: the anvil binary comes from its per-platform optional dependency, so its
# postinstall (which may try to download) is not needed; do not add --omit=optional.

CONTRACTS_DIR      := contracts
CONTRACTS_ARTIFACT := $(CONTRACTS_DIR)/artifacts/CheckpointRegistry.json
CONTRACTS_STAMP    := $(CONTRACTS_DIR)/node_modules/.yima-installed
NPM                ?= npm
NODE               ?= node

.PHONY: chain-deps contracts contracts-check

chain-deps: $(CONTRACTS_STAMP)

$(CONTRACTS_STAMP): $(CONTRACTS_DIR)/package.json $(CONTRACTS_DIR)/package-lock.json
	cd $(CONTRACTS_DIR) && $(NPM) ci --ignore-scripts --no-audit --no-fund
	touch $@

contracts: chain-deps
	cd $(CONTRACTS_DIR) && $(NODE) build.mjs

contracts-check: chain-deps
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  (cd $(CONTRACTS_DIR) && $(NODE) build.mjs --out "$$tmp/CheckpointRegistry.json") && \
	  if diff -u $(CONTRACTS_ARTIFACT) "$$tmp/CheckpointRegistry.json" > "$$tmp/diff"; then \
	    echo "contracts-check: committed artifact is up to date"; \
	  else \
	    head -40 "$$tmp/diff"; \
	    echo "contracts-check: $(CONTRACTS_ARTIFACT) differs from a fresh build; run 'make contracts' and commit it" >&2; \
	    exit 1; \
	  fi
