# Hookrun — the front door. `make help` lists the targets.
SHELL := /bin/bash
MODULES = $(shell go list -f '{{.Dir}}/...' -m)
BIN := bin
SERVICES := ingress dispatcher executor keys

.PHONY: help run test race build lint bench images compose-test fuzz clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

run: ## Run the whole system in one process (embedded NATS, no other service needed)
	@mkdir -p $(BIN)
	go build -o $(BIN)/hookrun ./cmd/hookrun
	@# exec: Ctrl-C reaches hookrun alone, which stops cleanly (go run made it exit 1)
	exec $(BIN)/hookrun dev

test: ## Run every test (unit, integration, end-to-end); needs Redis (REDIS_URL or 127.0.0.1:6379)
	go test -count=1 -timeout 9m $(MODULES)

race: ## Every test under the race detector (needs gcc; ~15 min on 2 cores; timing-bound tests may fail there, races print DATA RACE)
	CGO_ENABLED=1 go test -race -count=1 -timeout 25m $(MODULES)

build: ## Build static binaries of the four services and the CLI into bin/
	@mkdir -p $(BIN)
	@for s in $(SERVICES); do CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o $(BIN)/hookrun-$$s ./services/$$s/cmd/hookrun-$$s || exit 1; done
	CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=$$(git describe --always --dirty 2>/dev/null || echo dev)" -o $(BIN)/hookrun ./cmd/hookrun

lint: ## gofmt and go vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	go vet $(MODULES)

bench: build ## Load-test the real stack beside a bare Echo+JetStream baseline and print the ratios
	$(BIN)/hookrun bench

images: ## Build every image the compose file needs, offline
	bash scripts/images.sh

compose-test: ## Images, docker compose up, a signed delivery end to end, executor kill, Prometheus
	bash scripts/compose-test.sh

fuzz: ## Run every fuzz target briefly (FUZZTIME, default 5s each)
	bash scripts/fuzz.sh $${FUZZTIME:-5s}

clean: ## Remove build output
	rm -rf $(BIN)
