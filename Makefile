# Doorward. `make test` is what CI runs; `make demo` shows a knock end to end.
GO      ?= go
BIN     ?= bin
FUZZTIME ?= 10s

.PHONY: all build test vet fuzz demo bench clean deps-test deps-demo deps-deb install uninstall deb deb-test

# Where `make install` puts things; DESTDIR is prepended to every path
# (staging, packaging). The unit goes where systemd looks for units of
# this prefix (/usr/local/lib/systemd/system is on its search path).
PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR  ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
MANDIR  ?= $(PREFIX)/share/man
DOCDIR  ?= $(PREFIX)/share/doc/doorward
UNITDIR ?= $(PREFIX)/lib/systemd/system

# The systemd unit (written with the daemon, examples/); installed when
# present, with its /usr/sbin/knockd rewritten to SBINDIR.
UNIT     = examples/doorward.service
EXAMPLES = $(sort $(wildcard examples/*.conf examples/*.nft))

all: build

# BUILDFLAGS: more go build flags (make deb strips: -trimpath -ldflags=-s).
build:
	CGO_ENABLED=0 $(GO) build $(BUILDFLAGS) -o $(BIN)/ ./cmd/...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

# Unit, replay and network-namespace tests (the latter need root), then a
# short run of every fuzz target.
test: deps-test vet
	CGO_ENABLED=0 $(GO) build ./...
	$(GO) test -count=1 -timeout 10m ./...
	$(MAKE) deb-test
	$(MAKE) fuzz

# The Debian packages each purpose needs, installed when missing (as root;
# as anyone else the apt-get line is printed and the target fails):
# scripts/deps.sh holds the lists, .ci/run uses the same script.
deps-test:
	bash scripts/deps.sh test deb
deps-demo:
	bash scripts/deps.sh demo
deps-deb:
	bash scripts/deps.sh deb

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
demo: deps-demo
	bash scripts/demo.sh $(if $(NFT),--nft)

# Side by side under 20 spoofed-source floods at the machine's max rate
# (trafgen where installed): SYNs at a knockd door, Debian's knockd and
# ours; random base64 at the fwknop SPA port, Debian's fwknopd and ours;
# each in throwaway network namespaces (docs/benchmark.md). Needs root;
# about 6 minutes. BENCHFLAGS are passed on, e.g.
# BENCHFLAGS="-f 5 -d 2 -o doorward -p fwknop".
bench:
	bash bench/flood.sh $(BENCHFLAGS)

# The binaries as `make build` makes them, the man pages, the unit and the
# example configs. Nothing is written under /etc: the configs are examples
# (DOCDIR/examples); `make deb` ships /etc/knockd.conf.
install: build
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
	  $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DOCDIR)/examples
	install -m 755 $(BIN)/knockd $(DESTDIR)$(SBINDIR)/knockd
	install -m 755 $(BIN)/knock $(DESTDIR)$(BINDIR)/knock
	install -m 644 docs/man/knock.1 $(DESTDIR)$(MANDIR)/man1/knock.1
	install -m 644 docs/man/knockd.conf.5 $(DESTDIR)$(MANDIR)/man5/knockd.conf.5
	install -m 644 docs/man/knockd.8 $(DESTDIR)$(MANDIR)/man8/knockd.8
	install -m 644 $(EXAMPLES) $(DESTDIR)$(DOCDIR)/examples/
	@if [ -f $(UNIT) ]; then \
	  echo "install $(UNIT) -> $(DESTDIR)$(UNITDIR)/doorward.service"; \
	  install -d $(DESTDIR)$(UNITDIR) && \
	  sed 's|/usr/sbin/knockd|$(SBINDIR)/knockd|g' $(UNIT) >$(DESTDIR)$(UNITDIR)/doorward.service && \
	  chmod 644 $(DESTDIR)$(UNITDIR)/doorward.service; \
	else echo "$(UNIT) not found: no systemd unit installed"; fi

# Removes exactly what install put there (same PREFIX and DESTDIR).
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/knockd $(DESTDIR)$(BINDIR)/knock \
	  $(DESTDIR)$(MANDIR)/man1/knock.1 $(DESTDIR)$(MANDIR)/man5/knockd.conf.5 \
	  $(DESTDIR)$(MANDIR)/man8/knockd.8 $(DESTDIR)$(UNITDIR)/doorward.service \
	  $(addprefix $(DESTDIR)$(DOCDIR)/examples/,$(notdir $(EXAMPLES)))
	rmdir $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR) 2>/dev/null || true

# The .deb (docs/packaging.md): `make install` into a staging tree with
# Debian's paths, then nfpm (pinned; built by go run, never linked into
# the binaries) packs it with the control data of scripts/debian/nfpm.yaml.
# The version is the newest entry of scripts/debian/changelog.
NFPM       = $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
DEB_STAGE  = $(BIN)/deb-root
DEB_VER   := $(shell awk 'NR==1 {print $$2}' scripts/debian/changelog | tr -d '()')
deb:
	rm -f $(BIN)/doorward_*.deb
	@test -f $(UNIT) || { echo "deb: $(UNIT) is missing; the package ships the unit"; exit 1; }
	rm -rf $(DEB_STAGE) && mkdir -p $(DEB_STAGE)
	$(MAKE) install DESTDIR=$(CURDIR)/$(DEB_STAGE) PREFIX=/usr UNITDIR=/lib/systemd/system \
	  BIN=$(BIN)/deb-bin BUILDFLAGS="-trimpath -ldflags=-s"
	gzip -9n $(DEB_STAGE)/usr/share/man/man*/*
	install -m 644 scripts/debian/copyright $(DEB_STAGE)/usr/share/doc/doorward/copyright
	gzip -9nc scripts/debian/changelog >$(DEB_STAGE)/usr/share/doc/doorward/changelog.Debian.gz
	install -D -m 644 scripts/debian/knockd.conf $(DEB_STAGE)/etc/knockd.conf
	install -D -m 644 scripts/debian/lintian-overrides $(DEB_STAGE)/usr/share/lintian/overrides/doorward
	DEB_STAGE=$(DEB_STAGE) DEB_VERSION=$(firstword $(subst -, ,$(DEB_VER))) \
	  DEB_RELEASE=$(lastword $(subst -, ,$(DEB_VER))) DEB_ARCH=$$($(GO) env GOARCH) \
	  $(NFPM) package --packager deb --config scripts/debian/nfpm.yaml --target $(BIN)/
	@ls -l $(BIN)/doorward_$(DEB_VER)_*.deb

# Builds the .deb and checks it: lintian (no errors), installed with dpkg
# into a throwaway root, its files against scripts/testdata/deb-files,
# an existing /etc/knockd.conf kept. Needs root (dpkg --root).
deb-test: deb
	bash scripts/deb-test.sh $(BIN)/doorward_$(DEB_VER)_*.deb

clean:
	rm -rf $(BIN)
