# msctl developer targets. CI runs `bash .ci/run`; `make test` is the same test suite.

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/msctl/msctl/internal/cli.version=$(VERSION)

.PHONY: build test lint bench images pact soak

## build: compile msctl into bin/msctl, static (runtimes run it in scratch images), stamped with the git version
build:
	CGO_ENABLED=0 go build -ldflags "$(LDFLAGS)" -o bin/msctl ./cmd/msctl

## test: every package, then the Pact contract tests (need libpact_ffi: `make pact`)
test:
	go test -v ./... -count=1 -timeout 45m
	@if [ -n "$$(find contracts -name '*.go' 2>/dev/null | head -n 1)" ]; then \
		echo "go test -v -tags contracts ./contracts/... -count=1"; \
		go test -v -tags contracts ./contracts/... -count=1; \
	fi

## lint: gofmt and go vet must be clean
lint:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...

## bench: every other benchmark with -benchmem, then the DESIGN.md §5 targets measured side by side, as one table
bench:
	go run ./bench/report -others

## soak: 10 000 orders through the local shop while every durability fault happens once; prints the figures
soak:
	MSCTL_SOAK_ORDERS=$${MSCTL_SOAK_ORDERS:-10000} go test -tags soak -count=1 -v -timeout 90m -run '^TestSoak$$' ./internal/e2e/

## images: build the offline stand-in infra images (postgres, nats, etcd)
images:
	bash .ci/images/build.sh

## pact: install the Pact FFI library pact-go links against
pact:
	bash .ci/install-pact.sh

.PHONY: k8s-up k8s-down

## k8s-up: build (once, cached in /var/cache/msctl/k8s) and start the single-node test cluster (root)
k8s-up:
	bash .ci/k8s/build.sh
	bash .ci/k8s/up.sh

## k8s-down: stop the test cluster and verify it left nothing behind (root)
k8s-down:
	bash .ci/k8s/down.sh
