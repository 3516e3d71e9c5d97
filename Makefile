# dbtwin — see README.md. Every target works on a fresh checkout with Go and
# the PostgreSQL server binaries installed (scripts/install-postgres.sh).

GO        ?= go
BIN       ?= bin/dbtwin
PKGS      ?= ./...
# Integration tests start real PostgreSQL clusters; -p 2 matches the 2-core CI box.
TESTFLAGS ?= -p 2 -timeout 15m
BENCH_SCALE ?= 10

.PHONY: all build test test-short demo bench bench-go bench-clone bench-mask bench-replay lint fmt fuzz clean

all: build

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/dbtwin

## test: every test, against real PostgreSQL clusters the tests start themselves
test:
	$(GO) test $(TESTFLAGS) $(PKGS)

## demo: the whole pipeline on the built-in fixtures in an embedded sandbox
demo: build
	$(BIN) demo

## bench: micro benchmarks, then the clone comparison against pg_dump/pg_restore, then masking's cost
bench: bench-go bench-clone bench-mask bench-replay

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

## bench-clone: ~1 GB fixture; dbtwin clone vs pg_dump -Fd -j2 + pg_restore -j2 vs pg_dump | psql; template copy vs cp of the same files
bench-clone: build
	$(GO) run ./internal/benchclone --dbtwin $(BIN) --scale $(BENCH_SCALE)

## bench-mask: ~300 MB fixture; masked clone vs unmasked clone (ratio), per-transform values/s and allocations
BENCH_MASK_SCALE ?= 3
bench-mask:
	$(GO) run ./internal/benchmask --scale $(BENCH_MASK_SCALE)

## bench-replay: pgbench workloads replayed by dbtwin (results hashed) and by pgreplay, statements/s and the ratio
bench-replay:
	@command -v pgreplay >/dev/null || { echo "bench-replay needs pgreplay: apt-get install pgreplay"; exit 2; }
	$(GO) run ./internal/benchreplay

## fuzz: every fuzz test in turn, FUZZTIME each (go test -fuzz takes one target at a time)
FUZZTIME ?= 20s
fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
	  for n in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
	    echo "== $$(dirname $$f) $$n"; \
	    $(GO) test -run '^$$' -fuzz "^$$n\$$" -fuzztime $(FUZZTIME) ./$$(dirname $$f); \
	  done; \
	done

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt: run make fmt'; exit 1; }
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
	-$(BIN) gc 2>/dev/null || true
