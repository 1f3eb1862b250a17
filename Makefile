# impact-syncer — run `make help` for the targets.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# The project's own local ClickHouse (scripts/clickhouse.sh), not a system one.
CH_PORT ?= 19000
export CLICKHOUSE_ADDR ?= 127.0.0.1:$(CH_PORT)
FUZZTIME ?= 10s
# staticcheck at a pinned version, installed into bin/tools by `make lint` (so CI gets it too).
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(CURDIR)/bin/tools/staticcheck-$(STATICCHECK_VERSION)

.PHONY: help build test test-unit test-faults test-cluster cluster cluster-stop fuzz demo run bench lint rules clickhouse clickhouse-stop screenshot clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

build: ## build bin/syncer and bin/impactsim (static, version-stamped)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/syncer ./cmd/syncer
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/impactsim ./cmd/impactsim

clickhouse: ## install (apt-get, if missing) and start the local ClickHouse on 127.0.0.1:$(CH_PORT)
	scripts/clickhouse.sh start
	scripts/clickhouse.sh wait

clickhouse-stop: ## stop the local ClickHouse
	scripts/clickhouse.sh stop

test: clickhouse lint rules ## every test, integration tests against the real ClickHouse included (what CI runs)
	scripts/zookeeper.sh install # the fleet tests start their own ZooKeeper; install it once, before tests run in parallel
	set -o pipefail; $(GO) test -race -count=1 -timeout 40m -v ./... 2>&1 | scripts/testsummary.sh
	$(MAKE) fuzz FUZZTIME=$(FUZZTIME)

test-faults: clickhouse ## the fault-injection suite alone (docs/reliability.md); FAULT_SEED=<seed> repeats the kill -9 points
	@log=$$(mktemp); $(GO) test -race -count=1 -timeout 20m -run 'TestIntegrationFault' -v ./cmd/syncer 2>&1 | tee $$log | scripts/testsummary.sh; status=$${PIPESTATUS[0]}; \
	awk '/fault counts:/ { sub(/.*fault counts: /, ""); s += $$1; k += $$3; r += $$6; w += $$9 } \
	  END { printf "fault suite totals: %d scenarios, %d kill points, %d rows compared, %d watermarks checked\n", s, k, r, w }' $$log; \
	rm -f $$log; exit $$status

test-cluster: clickhouse ## the cluster suite alone (docs/deployment.md): ZooKeeper + two ClickHouse servers (TLS on one) from scripts/cluster.sh
	$(GO) test -race -count=1 -timeout 20m -run 'TestIntegrationCluster|TestRender|TestExplainConnect|TestConfigClickHouse' -v ./cmd/syncer ./internal/load 2>&1 | scripts/testsummary.sh

cluster: ## start the local cluster of scripts/cluster.sh (ZooKeeper, two ClickHouse servers on 19101/19102, TLS on 19141) and print its variables
	scripts/cluster.sh start
	@scripts/cluster.sh env

cluster-stop: ## stop the local cluster
	scripts/cluster.sh stop

test-unit: ## tests that need no ClickHouse (integration tests skip)
	CLICKHOUSE_ADDR=127.0.0.1:1 $(GO) test -count=1 ./...

fuzz: ## run each fuzz target for FUZZTIME (default 10s; e.g. make fuzz FUZZTIME=5m)
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	    out=$$(mktemp); \
	    if ! $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$pkg >$$out 2>&1; then \
	      if grep -q 'Failing input written to' $$out; then cat $$out; rm -f $$out; exit 1; fi; \
	      echo "fuzz $$f: the fuzzing engine stopped without a failing input (a busy machine); once more:"; tail -n 8 $$out; \
	      $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$pkg >$$out 2>&1 || { cat $$out; rm -f $$out; exit 1; }; \
	    fi; rm -f $$out; \
	  done; \
	done

demo: build clickhouse ## the main job end to end: simulator + local ClickHouse, migrate, add demo accounts, sync, show the data
	scripts/demo.sh

run: build clickhouse ## the long-lived worker against real impact.com, configured from .env
	@test -f .env || { echo "make run: create .env first (cp config.example.env .env, then edit)"; exit 2; }
	set -a; . ./.env; set +a; ./bin/syncer migrate && exec ./bin/syncer run

bench: build clickhouse ## benchmarks against the simulator and local ClickHouse (not part of make test)
	scripts/bench.sh

screenshot: build clickhouse ## the status page in headless Chromium: simulator + worker on the local ClickHouse, / saved as docs/status-page.png
	scripts/screenshot.sh status-page docs/status-page.png

rules: ## check and unit-test the Prometheus alerting rules (deploy/prometheus) with promtool
	scripts/rules.sh

lint: $(STATICCHECK) ## gofmt, go mod tidy (no diff), go vet, staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }
	$(GO) vet ./...
	$(STATICCHECK) ./...

$(STATICCHECK):
	GOBIN=$(CURDIR)/bin/tools $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(CURDIR)/bin/tools/staticcheck $@

clean: ## remove build output (the local ClickHouse data stays; see clickhouse-stop)
	rm -rf bin .demo
