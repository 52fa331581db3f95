# Doorward. `make test` is what CI runs; `make demo` shows a knock end to end.
GO      ?= go
BIN     ?= bin
FUZZTIME ?= 10s

.PHONY: all build test vet fuzz demo bench clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -o $(BIN)/ ./cmd/...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

# Unit, replay and network-namespace tests (the latter need root), then a
# short run of every fuzz target.
test: vet
	CGO_ENABLED=0 $(GO) build ./...
	$(GO) test -count=1 -timeout 10m ./...
	$(MAKE) fuzz

# Each fuzz target for FUZZTIME (go test -fuzz takes one target at a time).
# A run that ends in "context deadline exceeded" without a failing input is
# the fuzz engine's own timing on a loaded machine, not a finding: it is run
# once more; a failing input always fails the build.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/func //'); do \
	    echo "fuzz $$pkg $$f"; \
	    out=$$(mktemp); \
	    $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg >$$out 2>&1 || \
	    { grep -q 'context deadline exceeded' $$out && ! grep -q 'Failing input written' $$out && \
	      echo "  (go's fuzz engine missed its own deadline, no failing input: once more)" && \
	      $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg >$$out 2>&1; } || \
	    { cat $$out; rm -f $$out; exit 1; }; \
	    rm -f $$out; \
	  done; \
	done

# A throwaway pair of network namespaces: DROP firewall, a service, our
# knockd, a knock, the service open, then closed again. Needs root.
# NFT=1: the same knock with the native nftables backend (Nft_Set doors,
# examples/nftables-sets.nft) instead of iptables commands.
demo:
	bash scripts/demo.sh $(if $(NFT),--nft)

# Side by side under 20 spoofed-source SYN floods at the machine's max rate
# (trafgen where installed): Debian's knockd and ours, each in throwaway
# network namespaces (docs/benchmark.md). Needs root; about 3 minutes.
# BENCHFLAGS are passed on, e.g. BENCHFLAGS="-f 5 -d 2 -o doorward".
bench:
	bash bench/flood.sh $(BENCHFLAGS)

clean:
	rm -rf $(BIN)
