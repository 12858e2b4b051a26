# crmq — `make run` runs the whole system with demo data, `make test` runs every test.
SHELL := /bin/bash
export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/crmq?sslmode=disable
export REDIS_URL ?= redis://127.0.0.1:6379/0
BIN := bin

.PHONY: run test build services vet bench bench-e2e clean

build:
	go build -o $(BIN)/ ./cmd/...

services:
	./deploy/dev/services.sh

run: services build
	./deploy/dev/run.sh

test: services
	./deploy/dev/chromium.sh
	gofmt -l . | (! grep .) || (echo "gofmt needed on the files above" && exit 1)
	go vet ./...
	go test -race -count=1 -timeout 15m ./...

bench: services build
	go test -run '^$$' -bench . -benchmem ./...

# API -> asynq -> worker -> Postgres latency against raw asynq, same Redis, same run.
ARGS ?= --defer-polls
bench-e2e: services build
	./deploy/dev/bench-e2e.sh $(ARGS)

clean:
	rm -rf $(BIN)
