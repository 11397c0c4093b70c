# Latch — developer entry points. `make` (or `make help`) lists the targets.
#
# Every target that needs a tool installs it at a pinned version (see the
# versions block below); nothing is fetched at an unpinned "latest".

SHELL       := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS   += --no-print-directory

# --- pinned tool versions ----------------------------------------------------
# golangci-lint is built from source with the local Go toolchain (no prebuilt
# download). v2.15.0 is the newest v2 release and builds with Go 1.26.
GOLANGCI_LINT_VERSION := v2.15.0

# --- settings ----------------------------------------------------------------
GO      ?= go
MODULE  := github.com/latchid/latch
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X $(MODULE)/cmd/latch/internal/cli.version=$(VERSION)

# Tools go to $GOBIN when it is set (CI points it at a folder that outlives
# the clone), else to ./bin (gitignored).
GOBIN         := $(or $(GOBIN),$(CURDIR)/bin)
GOLANGCI_LINT := $(GOBIN)/golangci-lint

BIN_DIR    := bin
BENCH_DIR  := $(BIN_DIR)/bench
PLUGIN_DIR := $(BIN_DIR)/plugins
DATA_DIR   ?= ./data

# SQLite (mattn/go-sqlite3) and the race detector both need cgo.
export CGO_ENABLED := 1

.PHONY: help
help: ## list the targets
	@echo "usage: make <target>"
	@echo
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_.-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build ./bin/latch (version stamped from git describe)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN_DIR)/latch ./cmd/latch

.PHONY: run
run: build ## build, then serve http://127.0.0.1:8080 with SQLite in ./data
	@mkdir -p $(DATA_DIR)
	./$(BIN_DIR)/latch serve --data $(DATA_DIR)

.PHONY: test
test: ## go vet, then every test with the race detector
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m ./...

.PHONY: conformance
conformance: ## run the conformance suites (layout rules, plugin ABI kit, protocols)
	$(GO) test -count=1 ./conformance/...

.PHONY: vet
vet: ## go vet ./...
	$(GO) vet ./...

.PHONY: tools
tools: ## install the pinned golangci-lint into $GOBIN or ./bin (skipped when present)
	@if [ -x "$(GOLANGCI_LINT)" ] && "$(GOLANGCI_LINT)" version 2>/dev/null | grep -Fq "$(GOLANGCI_LINT_VERSION:v%=%)"; then \
		echo "golangci-lint $(GOLANGCI_LINT_VERSION) already in $(GOBIN)"; \
	else \
		echo "installing golangci-lint $(GOLANGCI_LINT_VERSION) into $(GOBIN) (builds from source, takes a few minutes once)"; \
		mkdir -p "$(GOBIN)"; \
		GOBIN="$(GOBIN)" $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION); \
	fi

.PHONY: lint
lint: tools ## run golangci-lint (config in .golangci.yml)
	$(GOLANGCI_LINT) run ./...

# Go files to format: everything tracked or new, minus testdata (fixtures may
# be deliberately malformed) and build output.
GO_FILES = $(shell find . -name '*.go' -not -path './.git/*' -not -path './$(BIN_DIR)/*' -not -path '*/testdata/*')

.PHONY: format
format: ## gofmt -s -w every Go file
	@files='$(GO_FILES)'; if [ -n "$$files" ]; then gofmt -s -w $$files; fi

.PHONY: generate
generate: ## go generate ./...
	$(GO) generate ./...

.PHONY: tidy
tidy: ## go mod tidy
	$(GO) mod tidy

.PHONY: check
check: ## format + go mod tidy, fail on a dirty tree; then vet and lint
	@$(MAKE) format
	@$(MAKE) tidy
	@if [ -n "$$(git status --porcelain)" ]; then \
		echo "check: the tree is dirty after format and go mod tidy (commit or fix these):"; \
		git status --porcelain; \
		git --no-pager diff --stat; \
		exit 1; \
	fi
	@$(MAKE) vet
	@$(MAKE) lint

.PHONY: verify
verify: check ## same as check

.PHONY: bench
bench: ## Go benchmarks into ./bin/bench/go.txt, then the load run (.ci/bench-load) if present
	@mkdir -p $(BENCH_DIR)
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./... | tee $(BENCH_DIR)/go.txt
	@if [ -f .ci/bench-load ]; then \
		BENCH_OUT="$(CURDIR)/$(BENCH_DIR)" bash .ci/bench-load; \
	else \
		echo "bench: no .ci/bench-load yet, skipping the load run"; \
	fi

.PHONY: plugins
plugins: ## build every plugins/*/ main package to ./bin/plugins/<name>.wasm (wasip1), and the native builds
	@mkdir -p $(PLUGIN_DIR)
	@built=0; \
	for dir in plugins/*/; do \
		[ -d "$$dir" ] || continue; \
		name=$$(basename "$$dir"); \
		pkg=$$(GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 $(GO) list -f '{{.Name}}' "./$$dir" 2>/dev/null || true); \
		[ "$$pkg" = main ] || continue; \
		echo "plugins: $$dir -> $(PLUGIN_DIR)/$$name.wasm"; \
		GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 $(GO) build -buildmode=c-shared -o "$(PLUGIN_DIR)/$$name.wasm" "./$$dir"; \
		built=$$((built + 1)); \
	done; \
	if [ "$$built" -eq 0 ]; then echo "plugins: no plugins/*/ main package yet, nothing to build"; \
	else echo "plugins: built $$built module(s) in $(PLUGIN_DIR)"; fi
	@# Native (go-plugin) builds of the plugins that have one.
	$(GO) build -o $(PLUGIN_DIR)/ipallow ./plugins/ipallow
	@# The ipallow bundle: its WASM module and its native binary for this platform (unsigned; sign it with latch bundle sign).
	$(GO) run ./cmd/latch plugin pack -m plugins/ipallow/latch-bundle.yaml --wasm $(PLUGIN_DIR)/ipallow.wasm \
		--native $(PLUGIN_DIR)/ipallow -o $(PLUGIN_DIR)/ipallow-1.0.0.bundle.tar.gz

.PHONY: clean
clean: ## remove build output (./bin, coverage files); keeps ./data
	rm -rf $(BIN_DIR) coverage.out coverage.txt coverage.html cover.out
