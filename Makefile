# crmq — `make run` runs the whole system with demo data, `make test` runs every test.
SHELL := /bin/bash
export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/crmq?sslmode=disable
export REDIS_URL ?= redis://127.0.0.1:6379/0
BIN := bin

.PHONY: run test build services vet bench bench-e2e bench-capacity clean

build:
	go build -o $(BIN)/ ./cmd/...

services:
	./deploy/dev/services.sh

run: services build
	./deploy/dev/run.sh

test: services
	gofmt -l . | (! grep .) || (echo "gofmt needed on the files above" && exit 1)
	go vet ./...
	go test -race -count=1 -timeout 15m ./...

bench: services build
	go test -run '^$$' -bench . -benchmem ./...

# API -> asynq -> worker -> Postgres latency against raw asynq, same Redis, same run.
ARGS ?= --defer-polls
bench-e2e: services build
	./deploy/dev/bench-e2e.sh $(ARGS)

# Steps the rate (250, 500, 750, 1,000, 1,500, 2,000/s): p99 beside raw
# asynq, CPU s and Postgres statements per job; then the enqueue rate.
CAPACITY_ARGS ?=
bench-capacity: services build
	./deploy/dev/bench-e2e.sh capacity $(CAPACITY_ARGS)

clean:
	rm -rf $(BIN)
