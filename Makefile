# Everyday targets. The README's two commands (go run ./cmd/sentinel demo,
# go test ./...) need none of this; CI runs .ci/run.

VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: build test bench lint

build:
	go build -ldflags "-X main.version=$(VERSION)" -o sentinel ./cmd/sentinel

test:
	go test ./...

bench:
	go test -run XXX -bench . -benchmem ./detector ./dicomio/... ./internal/phantom

lint:
	test -z "$$(gofmt -l .)" || { gofmt -l .; exit 1; }
	go vet ./...
	staticcheck ./...
